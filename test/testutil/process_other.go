//go:build !linux

package testutil

import "os/exec"

// dieWithParent is Linux-only (Pdeathsig); elsewhere cleanups stop children.
func dieWithParent(*exec.Cmd) {}
