package testutil

import (
	"os/exec"
	"syscall"
)

// dieWithParent kills the child if the test binary dies without running its cleanups (a
// crash or a timeout panic), so no Envoy or tollgate outlives the test run.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
