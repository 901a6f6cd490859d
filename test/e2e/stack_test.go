// Package e2e runs Tollgate behind a real Envoy 1.40 with TLS, in front of the mock LLM.
// Envoy is found by test/testutil (ENVOY_BIN, PATH); without it the tests skip locally and
// fail with CI=true.
package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/mockllm"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// stack is one running trial: mock, tollgate and Envoy, as `make run` starts them, on
// random loopback ports.
type stack struct {
	root, dir, bin, cfg, keyFile string
	ca                           string // dev CA certificate file
	base                         string // https://localhost:PORT
	admin                        string // tollgate admin http://127.0.0.1:PORT
	client                       *http.Client
	mock                         *mockllm.Server
	gate                         *flushGate
	tollgate, envoy              *testutil.Process
	tollgates                    []*testutil.Process // every replica; tollgate is the first
	cfgs, admins                 []string            // per replica
	openAIKey, anthropicKey      string
	keys                         map[string]string // demo, disabled, expired, ...
	extra                        map[string]string // more values that must never leak (KEKs, sealed values)
	ports                        testutil.EnvoyPorts
}

var tokenRE = regexp.MustCompile(keys.TokenPattern)

// stackOptions vary the trial: edits to examples/config.yaml and the number of tollgate
// replicas behind Envoy (they share the key file, the pepper and, when configured, a ledger).
type stackOptions struct {
	edit      func(cfg string) string
	tollgates int
	// envoy edits the rendered Envoy bootstrap (its path) before Envoy starts.
	envoy func(t *testing.T, cfg string)
}

func startStack(t *testing.T, opts ...stackOptions) *stack {
	t.Helper()
	var o stackOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.tollgates == 0 {
		o.tollgates = 1
	}
	envoyBin := testutil.EnvoyBinary(t)
	s := &stack{root: testutil.RepoRoot(t), dir: t.TempDir(), keys: map[string]string{}, extra: map[string]string{}}

	// The tollgate binary, built as users build it.
	s.bin = filepath.Join(s.dir, "tollgate")
	build := exec.Command("go", "build", "-o", s.bin, "./cmd/tollgate")
	build.Dir = s.root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	// Local-trial state (certs, pepper, mock provider keys, demo key), as `make run` makes it.
	dev := filepath.Join(s.dir, ".dev")
	s.run(t, "dev", "init", "--dir", dev)
	s.keyFile = filepath.Join(dev, "keys.yaml")
	s.keys["demo"] = strings.TrimSpace(readFile(t, filepath.Join(dev, "demo-key")))
	s.openAIKey = strings.TrimSpace(readFile(t, filepath.Join(dev, "mock-openai-key")))
	s.anthropicKey = strings.TrimSpace(readFile(t, filepath.Join(dev, "mock-anthropic-key")))

	ports := testutil.FreeEnvoyPorts(t)
	s.ports = ports
	// examples/config.yaml, with test ports, debug logging (the leak test then covers the
	// most verbose output) and the key file in the temp dir. Replica i > 0 gets its own file
	// with its own ports.
	base := readFile(t, filepath.Join(s.root, "examples", "config.yaml"))
	base = replaceOnce(t, base, "level: info", "level: debug")
	base = replaceOnce(t, base, "reload_interval: 1s", "reload_interval: 200ms")
	if o.edit != nil {
		base = o.edit(base)
	}
	require.NoError(t, os.MkdirAll(filepath.Join(s.dir, "examples"), 0o755))
	extprocPorts := []int{ports.ExtProc}
	for i := range o.tollgates {
		if i > 0 {
			extprocPorts = append(extprocPorts, testutil.FreePort(t))
		}
		admin := testutil.FreePort(t)
		s.admins = append(s.admins, "http://127.0.0.1:"+strconv.Itoa(admin))
		cfg := replaceOnce(t, base, "extproc: 127.0.0.1:50051", "extproc: 127.0.0.1:"+strconv.Itoa(extprocPorts[i]))
		cfg = replaceOnce(t, cfg, "admin: 127.0.0.1:9090", "admin: 127.0.0.1:"+strconv.Itoa(admin))
		name := "config.yaml"
		if i > 0 {
			name = "config-" + strconv.Itoa(i) + ".yaml"
		}
		path := filepath.Join(s.dir, "examples", name)
		require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
		s.cfgs = append(s.cfgs, path)
	}
	s.cfg, s.admin = s.cfgs[0], s.admins[0]

	// A disabled key and an expired key, minted with the CLI.
	s.keys["disabled"] = s.newKey(t, "--name", "disabled")
	kf := readFile(t, s.keyFile)
	require.NoError(t, os.WriteFile(s.keyFile, []byte(kf+"    disabled: true\n"), 0o600))
	s.keys["expired"] = s.newKey(t, "--name", "expired", "--expires", "2020-01-01")
	s.keys["research"] = s.newKey(t, "--name", "research", "--team", "research")
	s.keys["raw"] = s.newKey(t, "--name", "raw", "--team", "raw") // no guardrails

	// The mock LLM, in-process so the test sees exactly what reached the upstream.
	s.mock = mockllm.New(mockllm.Options{OpenAIKey: s.openAIKey, AnthropicKey: s.anthropicKey, Record: true, Chunks: 6})
	s.gate = newFlushGate(s.mock)
	lis, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports.Mock))
	require.NoError(t, err)
	hs := &http.Server{Handler: s.gate, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	t.Cleanup(func() { _ = hs.Close() })

	for i, cfg := range s.cfgs {
		cmd := exec.Command(s.bin, "serve", "--config", cfg)
		cmd.Env = cleanEnv()
		p := testutil.StartProcess(t, "tollgate-"+strconv.Itoa(i), cmd)
		s.tollgates = append(s.tollgates, p)
		testutil.WaitHTTP(t, s.admins[i]+"/readyz", 20*time.Second)
	}
	s.tollgate = s.tollgates[0]

	envoyCfg := testutil.RenderEnvoyConfig(t, filepath.Join(s.root, "envoy", "envoy.yaml"), ports, filepath.Join(dev, "tls"))
	if len(extprocPorts) > 1 {
		addExtProcEndpoints(t, envoyCfg, extprocPorts)
	}
	if o.envoy != nil {
		o.envoy(t, envoyCfg)
	}
	s.envoy = testutil.StartEnvoy(t, envoyBin, envoyCfg)
	s.base = "https://localhost:" + strconv.Itoa(ports.Listener)
	s.ca = filepath.Join(dev, "tls", "ca.crt")
	s.client = testutil.TLSClient(s.ca)
	return s
}

// addExtProcEndpoints puts every replica's port into the rendered ext_proc_grpc cluster, so
// Envoy spreads streams over them.
func addExtProcEndpoints(t *testing.T, path string, ports []int) {
	t.Helper()
	endpoint := func(port int) string {
		return "        - endpoint:\n            address:\n              socket_address: { address: 127.0.0.1, port_value: " + strconv.Itoa(port) + " }\n"
	}
	cfg := readFile(t, path)
	var all strings.Builder
	for _, p := range ports {
		all.WriteString(endpoint(p))
	}
	cfg = replaceOnce(t, cfg, endpoint(ports[0]), all.String())
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
}

// logs is every replica's log.
func (s *stack) logs() string {
	var b strings.Builder
	for _, p := range s.tollgates {
		b.WriteString(p.Logs())
	}
	return b.String()
}

// run runs the tollgate CLI and returns its stdout.
func (s *stack) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	require.NoError(t, err, "tollgate %v", args)
	return string(out)
}

// newKey mints a key for team platform (unless overridden) into the key file.
func (s *stack) newKey(t *testing.T, args ...string) string {
	t.Helper()
	base := []string{"keys", "new", "--config", s.cfg, "--team", "platform", "--append", s.keyFile}
	out := s.run(t, append(base, args...)...)
	k := tokenRE.FindString(out)
	require.NotEmpty(t, k, out)
	s.waitKeys(t)
	return k
}

// waitKeys waits until every running replica has loaded every key in the key file.
func (s *stack) waitKeys(t *testing.T) {
	t.Helper()
	if len(s.tollgates) == 0 {
		return // not started yet: they load the file at start
	}
	want := `"keys":` + strconv.Itoa(strings.Count(readFile(t, s.keyFile), "- id: "))
	for _, admin := range s.admins {
		require.Eventually(t, func() bool {
			resp, err := http.Get(admin + "/readyz")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(b), want)
		}, 10*time.Second, 50*time.Millisecond, "%s never loaded %s", admin, want)
	}
}

// secrets lists what must never appear in logs, audit events or metrics.
func (s *stack) secrets() map[string]string {
	out := map[string]string{"openai provider key": s.openAIKey, "anthropic provider key": s.anthropicKey, "prompt": promptMarker}
	for name, k := range s.keys {
		out["virtual key "+name] = k
		out["virtual key secret "+name] = k[17:]
	}
	for name, v := range s.extra {
		out[name] = v
	}
	return out
}

// cleanEnv drops real provider keys from the environment so optional providers stay off.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OPENAI_API_KEY=") || strings.HasPrefix(kv, "ANTHROPIC_API_KEY=") || strings.HasPrefix(kv, "AZURE_OPENAI_API_KEY=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(s, old), "expected exactly one %q", old)
	return strings.Replace(s, old, new, 1)
}

// flushGate sits in front of the mock, records the exact bytes of each response, and can
// hold a streamed response after its Nth flush until released, which proves that earlier
// chunks reached the client while the upstream was still streaming.
type flushGate struct {
	next http.Handler

	mu      sync.Mutex
	split   bool          // write each flushed piece in two halves with a flush between
	holdAll bool          // keep holding every response until released
	holdAt  int           // hold after this many flushes (0: never)
	release chan struct{} // closed to let the held response go on
	last    []byte        // bytes of the last response
	held    int           // responses that were held
}

func newFlushGate(next http.Handler) *flushGate { return &flushGate{next: next} }

// Hold arms the gate for the next response: it stops after that many flushes that sent
// bytes, until release is called.
func (g *flushGate) Hold(afterFlushes int) (release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holdAt = afterFlushes
	g.release = make(chan struct{})
	ch := g.release
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// SplitWrites makes every write go out in two flushed halves, so one SSE event reaches
// Envoy (and ext_proc) as two chunks.
func (g *flushGate) SplitWrites(on bool) {
	g.mu.Lock()
	g.split = on
	g.mu.Unlock()
}

// HoldAll holds every response after that many flushes that sent bytes, until release.
func (g *flushGate) HoldAll(afterFlushes int) func() {
	release := g.Hold(afterFlushes)
	g.mu.Lock()
	g.holdAll = true
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.holdAll, g.holdAt = false, 0
		g.mu.Unlock()
		release()
	}
}

// Held reports how many responses were held so far.
func (g *flushGate) Held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}

// Last returns the bytes the upstream wrote in its last response.
func (g *flushGate) Last() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]byte(nil), g.last...)
}

func (g *flushGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	holdAt, release, split := g.holdAt, g.release, g.split
	if !g.holdAll {
		g.holdAt = 0
	}
	g.mu.Unlock()
	cw := &captureWriter{ResponseWriter: w, holdAt: holdAt, release: release, ctx: r.Context(), split: split,
		onHold: func() { g.mu.Lock(); g.held++; g.mu.Unlock() }}
	g.next.ServeHTTP(cw, r)
	g.mu.Lock()
	g.last = cw.buf
	g.mu.Unlock()
}

type captureWriter struct {
	http.ResponseWriter
	buf     []byte
	flushes int // flushes that sent new bytes
	flushed int // len(buf) at the last flush
	holdAt  int
	release chan struct{}
	ctx     context.Context
	onHold  func()
	split   bool
}

func (c *captureWriter) Write(b []byte) (int, error) {
	c.buf = append(c.buf, b...)
	if c.split && len(b) > 1 {
		n, err := c.ResponseWriter.Write(b[:len(b)/2])
		if err != nil {
			return n, err
		}
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(5 * time.Millisecond) // let the first half travel on its own
		m, err := c.ResponseWriter.Write(b[len(b)/2:])
		return n + m, err
	}
	return c.ResponseWriter.Write(b)
}

func (c *captureWriter) Flush() {
	hold := false
	if len(c.buf) > c.flushed {
		c.flushed = len(c.buf)
		c.flushes++
		if hold = c.holdAt > 0 && c.flushes == c.holdAt; hold {
			c.onHold() // counted before the bytes leave, so the client can never see them first
		}
	}
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	if hold {
		select {
		case <-c.release:
		case <-c.ctx.Done():
		}
	}
}

// sseEvents reads SSE events (blank-line terminated) from r, one at a time.
type sseEvents struct{ r *bufio.Reader }

func (e sseEvents) next() (string, error) {
	var b strings.Builder
	for {
		line, err := e.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\n" || line == "\r\n" {
			return b.String(), nil
		}
	}
}
