package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTrialRefusesBusyPorts runs examples/trial.sh (copied into a scratch tree, so the
// repository's .dev is not touched) while one of the trial's ports is taken, as by a `make
// run` that is still running: it must refuse with a clear message before it starts anything,
// prints the banner or truncates the running trial's logs.
func TestTrialRefusesBusyPorts(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found")
	}
	root := t.TempDir()
	script, err := os.ReadFile(filepath.Join("..", "..", "examples", "trial.sh"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "examples"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "examples", "trial.sh"), script, 0o755))

	// The running trial's logs.
	logs := filepath.Join(root, ".dev", "logs")
	require.NoError(t, os.MkdirAll(logs, 0o700))
	before := map[string]string{}
	for _, name := range []string{"mockllm.log", "tollgate.log", "envoy.log"} {
		before[name] = "the running trial's " + name + "\n"
		require.NoError(t, os.WriteFile(filepath.Join(logs, name), []byte(before[name]), 0o600))
	}
	// Stand-ins for tollgate and envoy that record being started.
	called := filepath.Join(root, "called")
	fake := filepath.Join(root, "fake.sh")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\" >> "+called+"\n"), 0o755))

	// Hold the admin port, as the first trial's tollgate does. If something else already
	// listens there, the port is taken all the same.
	if l, err := net.Listen("tcp", "127.0.0.1:9090"); err == nil {
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	} else if c, derr := net.Dial("tcp", "127.0.0.1:9090"); derr == nil {
		c.Close()
	} else {
		t.Skipf("port 9090 is bound but not accepting connections: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, filepath.Join(root, "examples", "trial.sh"))
	cmd.Env = append(os.Environ(), "BIN="+fake, "ENVOY_BIN="+fake)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "the script fails: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, stderr.String(), "already in use")
	require.Contains(t, stderr.String(), "9090 (tollgate-admin)")
	require.Contains(t, stderr.String(), "make run")
	require.NotContains(t, stdout.String(), "local trial is up", "no banner")
	require.NotContains(t, stdout.String()+stderr.String(), "a component exited")
	for name, want := range before {
		got, err := os.ReadFile(filepath.Join(logs, name))
		require.NoError(t, err)
		require.Equal(t, want, string(got), "%s was not truncated", name)
	}
	_, err = os.Stat(called)
	require.True(t, errors.Is(err, os.ErrNotExist), "nothing was started")
}
