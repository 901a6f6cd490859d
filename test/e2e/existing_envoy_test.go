package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// Host names of the existing-Envoy example: the application's clients use any host, LLM
// clients the one in the tollgate virtual host's domains.
const (
	appHost = "app.example.com"
	llmHost = "llm.example.com"
)

// appServer stands in for the application an existing Envoy already serves.
type appServer struct {
	mu   sync.Mutex
	seen []string // method and path of every request
	srv  *http.Server
}

func startApp(t *testing.T) (*appServer, int) {
	t.Helper()
	a := &appServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		a.mu.Lock()
		a.seen = append(a.seen, r.Method+" "+r.URL.Path)
		a.mu.Unlock()
		w.Header().Set("content-type", "text/plain")
		_, _ = io.WriteString(w, "from the app")
	})}
	go func() { _ = a.srv.Serve(ln) }()
	t.Cleanup(func() { _ = a.srv.Close() })
	return a, ln.Addr().(*net.TCPAddr).Port
}

func (a *appServer) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// startProvider serves the mock LLM over TLS with a certificate for api.openai.com from a CA
// of its own, so Envoy's provider cluster checks SNI and SAN as it would against OpenAI. It
// returns the port and the CA file.
func startProvider(t *testing.T, s *stack) (int, string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, devtls.Write(dir, []string{"api.openai.com"}, time.Now()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: s.gate, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ServeTLS(ln, filepath.Join(dir, devtls.CertFile), filepath.Join(dir, devtls.KeyFile)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, filepath.Join(dir, devtls.CAFile)
}

// withOpenAIViaMock turns the optional openai provider on with the mock's OpenAI key, so its
// requests go out through the openai route and cluster of the example.
func withOpenAIViaMock(t *testing.T) func(string) string {
	return func(cfg string) string {
		return replaceOnce(t, cfg, "    credential: env:OPENAI_API_KEY\n    optional: true", "    credential: file:../.dev/mock-openai-key")
	}
}

var extprocListenRE = regexp.MustCompile(`extproc: 127\.0\.0\.1:(\d+)`)

// TestExistingEnvoy runs examples/existing-envoy: before.yaml is an Envoy serving one
// application, after.yaml the same with the documented Tollgate block (issue 15 item 3). With
// Tollgate added, the application's routes still reach the application and never reach
// Tollgate, even for an LLM path on the application's host, and an LLM request on the LLM host
// reaches the provider over TLS with the provider key only.
func TestExistingEnvoy(t *testing.T) {
	s := startStack(t, stackOptions{edit: withOpenAIViaMock(t)})
	m := extprocListenRE.FindStringSubmatch(readFile(t, s.cfg))
	require.NotNil(t, m, "tollgate's ext_proc address")
	extprocPort, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	app, appPort := startApp(t)
	providerPort, providerCA := startProvider(t, s)
	envoyBin := testutil.EnvoyBinary(t)
	tlsDir := filepath.Join(s.dir, ".dev", "tls")
	dir := filepath.Join(s.root, "examples", "existing-envoy")

	// start runs one of the example bootstraps on fresh ports and returns its base URL.
	start := func(t *testing.T, file string, extra ...testutil.Rewrite) (*testutil.Process, string) {
		listener := testutil.FreePort(t)
		rewrites := append([]testutil.Rewrite{
			testutil.SocketRewrite("0.0.0.0", 8443, listener),
			testutil.SocketRewrite("127.0.0.1", 9901, testutil.FreePort(t)),
			testutil.SocketRewrite("127.0.0.1", 8080, appPort),
			{Old: "/etc/envoy/tls/server.crt", New: filepath.Join(tlsDir, devtls.CertFile)},
			{Old: "/etc/envoy/tls/server.key", New: filepath.Join(tlsDir, devtls.KeyFile)},
		}, extra...)
		cfg := testutil.RenderBootstrap(t, filepath.Join(dir, file), rewrites...)
		return testutil.StartEnvoy(t, envoyBin, cfg), "https://localhost:" + strconv.Itoa(listener)
	}
	// send makes one request with the given Host header.
	send := func(t *testing.T, base, host, method, path, body string, hdr ...string) result {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		require.NoError(t, err)
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return result{resp.StatusCode, resp.Header, b}
	}
	const appUA = "existing-envoy-app-client" // tollgate logs the user-agent of every stream it sees
	llm := []string{"authorization", "Bearer " + s.keys["demo"], "content-type", "application/json"}
	chat := chatBody("openai/gpt-4o-mini", false)

	t.Run("before: the application answers every request", func(t *testing.T) {
		envoy, base := start(t, "before.yaml")
		defer envoy.Stop()
		r := send(t, base, appHost, "GET", "/hello", "", "user-agent", appUA)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "from the app", string(r.body))
	})

	t.Run("after: the application's routes never reach Tollgate, LLM requests do", func(t *testing.T) {
		envoy, base := start(t, "after.yaml",
			testutil.SocketRewrite("127.0.0.1", 50051, extprocPort),
			testutil.SocketRewrite("api.openai.com", 443, providerPort),
			testutil.Rewrite{Old: "/etc/ssl/certs/ca-certificates.crt", New: providerCA})
		s.mock.Reset()
		before := len(app.requests())

		r := send(t, base, appHost, "GET", "/hello", "", "user-agent", appUA)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Equal(t, "from the app", string(r.body))
		// An LLM path with a virtual key on the application's host is the application's.
		r = send(t, base, appHost, "POST", "/v1/chat/completions", chat, append(llm, "user-agent", appUA)...)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Equal(t, "from the app", string(r.body))
		require.Equal(t, []string{"GET /hello", "POST /v1/chat/completions"}, app.requests()[before:])

		r = send(t, base, llmHost, "POST", "/v1/chat/completions", chat, append(llm, "user-agent", "existing-envoy-llm-client")...)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		var completion struct {
			Model string `json:"model"`
		}
		require.NoError(t, json.Unmarshal(r.body, &completion), "%s", r.body)
		require.Equal(t, "gpt-4o-mini", completion.Model, "the provider's answer")
		up := s.mock.Requests()
		require.Len(t, up, 1, "one request reached the provider")
		require.Equal(t, "Bearer "+s.openAIKey, up[0].Header.Get("authorization"), "the provider key, not the virtual key")
		for _, h := range []string{"x-tollgate-upstream", "x-envoy-external-address", "x-forwarded-proto"} {
			require.Empty(t, up[0].Header.Values(h), "%s never reaches the provider", h)
		}
		require.Equal(t, []string{"GET /hello", "POST /v1/chat/completions"}, app.requests()[before:], "the LLM request did not reach the app")

		r = send(t, base, llmHost, "POST", "/v1/chat/completions", chat, "content-type", "application/json")
		requireJSONError(t, r, http.StatusUnauthorized)

		// Tollgate saw the LLM requests and nothing of the application's.
		require.Eventually(t, func() bool { return strings.Contains(s.logs(), "existing-envoy-llm-client") },
			10*time.Second, 50*time.Millisecond, "tollgate logged the LLM request")
		require.NotContains(t, s.logs(), appUA, "an application request reached Tollgate")

		// The application's own Envoy errors are not rewritten into Tollgate's JSON.
		require.NoError(t, app.srv.Close())
		r = send(t, base, appHost, "GET", "/hello", "")
		require.Equal(t, http.StatusServiceUnavailable, r.status)
		require.False(t, testutil.IsJSONContentType(r.header.Get("content-type")), "content-type %q: %s", r.header.Get("content-type"), r.body)
		require.NotContains(t, string(r.body), "upstream_unavailable")

		// Envoy's access log: which route served what.
		require.Eventually(t, func() bool {
			logs := envoy.Logs()
			return strings.Contains(logs, `"authority":"`+llmHost+`"`) && strings.Count(logs, `"route":"app_root"`) >= 3
		}, 10*time.Second, 50*time.Millisecond, "access log lines")
		for _, line := range strings.Split(envoy.Logs(), "\n") {
			var e struct {
				Authority string `json:"authority"`
				Route     string `json:"route"`
				Status    int    `json:"status"`
			}
			if json.Unmarshal([]byte(line), &e) != nil || e.Authority == "" {
				continue
			}
			if e.Authority == appHost {
				require.Equal(t, "app_root", e.Route, line)
			} else if e.Status == http.StatusOK {
				require.Equal(t, "openai", e.Route, line)
			}
		}
	})
}
