// Package testutil holds helpers for tests that run real processes: Envoy,
// the Tollgate binary, mock upstreams. It finds the repository, picks free
// loopback ports, renders envoy/envoy.yaml for a test, starts processes with
// their logs captured (and dumped when the test fails), and polls for
// readiness. It depends on the standard library only.
package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory (a package directory under go test) that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRepoRoot()
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return root
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// binds port 0, reads the port and closes the listener. Another process can
// take the port before the caller binds it; tests accept that small race.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatalf("testutil: free port: %v", err)
	}
	return ports[0]
}

// freePorts returns n distinct free ports. All listeners stay open until every
// port is known, so the kernel cannot hand out the same port twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// isCI reports whether the tests run in CI, where a missing tool is a failure
// rather than a reason to skip.
func isCI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	return strings.EqualFold(v, "true") || v == "1"
}

// skipOrFail skips the test locally and fails it in CI (env CI=true).
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if isCI() {
		t.Fatalf("%s (CI=true: missing tools are failures)", msg)
	}
	t.Skip(msg)
}
