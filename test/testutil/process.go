package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LogTailLines is how many log lines a failed test gets per process.
const LogTailLines = 200

// stopGrace is how long Stop waits after SIGTERM before it kills.
const stopGrace = 5 * time.Second

// Process is a child process started by StartProcess. Its stdout and stderr
// go to one log file in the test's temporary directory.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // set before done is closed
	stop    sync.Once
}

// StartProcess starts cmd with stdout and stderr captured in a log file
// (name.log in t.TempDir()). The process is stopped in t.Cleanup, and if the
// test failed the last LogTailLines lines of its log are written with t.Log.
// cmd must not have been started and must not set Stdout or Stderr.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	if cmd.Stdout != nil || cmd.Stderr != nil {
		t.Fatalf("testutil: StartProcess(%s): cmd.Stdout/Stderr must be nil", name)
	}
	logPath := filepath.Join(t.TempDir(), safeName(name)+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	// An *os.File is handed to the child as is: no copying goroutine, so Wait
	// does not hang on grandchildren that inherit the descriptor.
	cmd.Stdout, cmd.Stderr = f, f
	dieWithParent(cmd)
	err = cmd.Start()
	f.Close() // the child has its own copy
	if err != nil {
		t.Fatalf("testutil: start %s: %v", name, err)
	}
	p := &Process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- last %d lines of %s (%s) ---\n%s", LogTailLines, name, logPath, tailLines(p.Logs(), LogTailLines))
		}
	})
	return p
}

// Logs returns everything the process wrote to stdout and stderr so far.
func (p *Process) Logs() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "testutil: " + err.Error()
	}
	return string(b)
}

// LogPath returns the path of the log file.
func (p *Process) LogPath() string { return p.logPath }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns the exit error (nil for exit status 0). Call it after Done.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return errors.New("testutil: " + p.name + " is still running")
	}
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM, waits up to 5 s, then kills. It returns once the process
// has exited. Calling it again does nothing.
func (p *Process) Stop() {
	p.stop.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	<-p.done
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "(no output)"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// safeName makes name usable as a file name.
func safeName(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
	if name == "" || name == "." || name == ".." {
		return "process"
	}
	return name
}
