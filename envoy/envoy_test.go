package envoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// devTLS writes throwaway certificates; envoy --mode validate loads them.
func devTLS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, devtls.Write(dir, nil, time.Now()))
	return dir
}

func validate(t *testing.T, bin, cfg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--mode", "validate", "--log-level", "warn", "-c", cfg)
	cmd.Dir = t.TempDir() // relative paths must not resolve against the developer's checkout
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "envoy --mode validate -c %s:\n%s", cfg, out)
	require.Contains(t, string(out), "OK", "%s", out)
}

// TestValidate runs `envoy --mode validate` on every *.yaml in this
// directory, with the .dev/tls/ certificate paths pointed at fresh files.
func TestValidate(t *testing.T) {
	bin := testutil.EnvoyBinary(t)
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	tlsDir := devTLS(t)
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			cfg := filepath.Join(t.TempDir(), filepath.Base(f))
			rendered := strings.ReplaceAll(string(src), ".dev/tls/", filepath.ToSlash(tlsDir)+"/")
			require.NoError(t, os.WriteFile(cfg, []byte(rendered), 0o600))
			validate(t, bin, cfg)
		})
	}
	t.Run("rendered envoy.yaml", func(t *testing.T) {
		cfg := testutil.RenderEnvoyConfig(t, "", testutil.FreeEnvoyPorts(t), tlsDir)
		validate(t, bin, cfg)
	})
}

// yamlLine is one line of YAML without comments: its indentation and its text.
type yamlLine struct {
	indent int
	text   string
}

// yamlLines returns the non-empty lines of text with comments (whole-line and trailing " #")
// removed.
func yamlLines(text string) []yamlLine {
	var out []yamlLine
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		out = append(out, yamlLine{indent: len(line) - len(strings.TrimLeft(line, " ")), text: trimmed})
	}
	return out
}

// yamlItems splits lines into the items at their smallest indentation: a list entry or a key
// with everything under it. A key's list entries may sit at the key's own indentation
// ("key:\n- a"), as envoy.yaml writes them.
func yamlItems(lines []yamlLine) [][]yamlLine {
	if len(lines) == 0 {
		return nil
	}
	base := lines[0].indent
	for _, l := range lines {
		base = min(base, l.indent)
	}
	var out [][]yamlLine
	for _, l := range lines {
		if l.indent == base {
			head := len(out) > 0 && !strings.HasPrefix(out[len(out)-1][0].text, "- ") && strings.HasSuffix(out[len(out)-1][0].text, ":")
			if !(head && strings.HasPrefix(l.text, "- ")) {
				out = append(out, nil)
			}
		}
		if len(out) == 0 {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], l)
	}
	return out
}

// containsItem reports whether item occurs in hay as a whole: the same lines in a row, shifted
// by one indentation, and followed by nothing that would still belong to it.
func containsItem(hay, item []yamlLine) bool {
	for i := 0; i+len(item) <= len(hay); i++ {
		shift := hay[i].indent - item[0].indent
		match := true
		for k, l := range item {
			if hay[i+k].text != l.text || hay[i+k].indent-l.indent != shift {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		if j := i + len(item); j == len(hay) || hay[j].indent <= hay[i].indent {
			return true
		}
	}
	return false
}

// exampleOnly are README lines that only make sense in an existing Envoy: envoy.yaml serves
// every host name.
var exampleOnly = map[string]bool{`domains: ["llm.example.com", "llm.example.com:*"]`: true}

// TestReadmeSnippets keeps the YAML in README.md identical to the validated envoy.yaml: every
// top-level item of every yaml block (a filter, a mapper list, a cluster) occurs in envoy.yaml
// as a whole, field for field. The tollgate virtual host is compared key by key and route by
// route, because envoy.yaml's has more routes and serves every host name.
func TestReadmeSnippets(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	cfg, err := os.ReadFile("envoy.yaml")
	require.NoError(t, err)
	hay := yamlLines(string(cfg))
	blocks := strings.Split(string(readme), "```yaml\n")[1:]
	require.NotEmpty(t, blocks, "README.md has yaml snippets")
	checked := 0
	for _, b := range blocks {
		b, _, ok := strings.Cut(b, "```")
		require.True(t, ok, "unterminated yaml block")
		// Fragments of one block go to different places: split them first.
		parts := []string{b}
		if frags, err := splitFragments(b); err == nil {
			parts = parts[:0]
			for _, f := range frags {
				parts = append(parts, strings.Join(f.lines, "\n"))
			}
		}
		var items [][]yamlLine
		for _, p := range parts {
			items = append(items, yamlItems(yamlLines(p))...)
		}
		for _, item := range items {
			if item[0].text != "- name: tollgate" {
				require.True(t, containsItem(hay, item), "README.md item not found as a whole in envoy.yaml:\n%s", itemText(item))
				checked++
				continue
			}
			for _, field := range yamlItems(item[1:]) {
				switch {
				case exampleOnly[field[0].text] && len(field) == 1:
				case field[0].text == "routes:":
					for _, route := range yamlItems(field[1:]) {
						require.True(t, containsItem(hay, route), "README.md route not found in envoy.yaml:\n%s", itemText(route))
						checked++
					}
				default:
					require.True(t, containsItem(hay, field), "README.md virtual host field not found in envoy.yaml:\n%s", itemText(field))
					checked++
				}
			}
		}
	}
	require.GreaterOrEqual(t, checked, 10)
}

func itemText(item []yamlLine) string {
	var b strings.Builder
	for _, l := range item {
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat(" ", l.indent), l.text)
	}
	return b.String()
}

func TestContainsItem(t *testing.T) {
	hay := yamlLines("a:\n  b:\n  - x: 1\n    y: 2\n  - z: 3\n  c: 4 # note\n")
	tests := []struct {
		name, item string
		want       bool
	}{
		{"list entry", "- x: 1\n  y: 2\n", true},
		{"key with its list", "b:\n- x: 1\n  y: 2\n- z: 3\n", true},
		{"comments ignored", "# c\nc: 4\n", true},
		{"entry missing a field", "- x: 1\n", false},
		{"field changed", "- x: 1\n  y: 3\n", false},
		{"indentation changed", "- x: 1\n   y: 2\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items := yamlItems(yamlLines(tc.item))
			require.Len(t, items, 1)
			require.Equal(t, tc.want, containsItem(hay, items[0]))
		})
	}
}

// startMock serves a stand-in for the mock LLM on port and counts the requests that reach it.
func startMock(t *testing.T, port int) *atomic.Int32 {
	t.Helper()
	var hits atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	require.NoError(t, err)
	mock := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("content-type", "application/json")
		io.WriteString(w, `{"reached":"mock"}`)
	}), ReadHeaderTimeout: 5 * time.Second}
	go mock.Serve(ln)
	t.Cleanup(func() { mock.Close() })
	return &hits
}

// doRequest sends one request and returns the response with its whole body. The response
// must arrive over proto.
func doRequest(t *testing.T, c *http.Client, proto, method, url, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, proto, resp.Proto)
	return resp, b
}

// accessLog is the subset of envoy.yaml's JSON access log the test reads.
type accessLog struct {
	Method  string `json:"method"`
	Path    string `json:"path"`
	Status  int    `json:"status"`
	Route   string `json:"route"`
	Details string `json:"response_code_details"`
}

// TestFailClosedWithoutExtProc starts the real bootstrap with nothing on the
// ext_proc port. Envoy must still start and answer /healthz; every other
// request must fail closed with a JSON 503, and a client-supplied
// x-tollgate-upstream must neither pick a route nor reach the mock upstream.
// Nothing secret may appear in Envoy's output.
func TestFailClosedWithoutExtProc(t *testing.T) {
	bin := testutil.EnvoyBinary(t)
	tlsDir := devTLS(t)
	ports := testutil.FreeEnvoyPorts(t)

	mockHits := startMock(t, ports.Mock)

	cfg := testutil.RenderEnvoyConfig(t, "", ports, tlsDir)
	envoy := testutil.StartEnvoy(t, bin, cfg)

	base := "https://127.0.0.1:" + strconv.Itoa(ports.Listener)
	ca := filepath.Join(tlsDir, devtls.CAFile)
	secrets := []string{"sk-virtual-SECRET1", "sk-ant-SECRET2", "azure-SECRET3", "session-SECRET4", "query-SECRET5"}

	clients := []struct {
		name   string
		client *http.Client
		proto  string
	}{
		{"h2", testutil.TLSClient(ca), "HTTP/2.0"},
		{"http1", testutil.TLSClientHTTP1(ca), "HTTP/1.1"},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			do := func(method, path, body string, hdr map[string]string) (*http.Response, []byte) {
				t.Helper()
				return doRequest(t, c.client, c.proto, method, base+path, body, hdr)
			}

			// /healthz is answered by Envoy with ext_proc disabled on the route.
			resp, body := do(http.MethodGet, "/healthz", "", map[string]string{"x-tollgate-upstream": "mock"})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "ok", string(body))

			spoofed := map[string]string{
				"x-tollgate-upstream": "mock",
				"x-tollgate-anything": "1",
				"authorization":       "Bearer " + secrets[0],
				"x-api-key":           secrets[1],
				"api-key":             secrets[2],
				"cookie":              "session=" + secrets[3],
				"content-type":        "application/json",
			}
			for _, r := range []struct{ method, path, body string }{
				{http.MethodPost, "/v1/chat/completions?api-key=" + secrets[4], `{"model":"gpt-4o-mini","messages":[]}`},
				{http.MethodGet, "/v1/models", ""},
			} {
				resp, body := do(r.method, r.path, r.body, spoofed)
				require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "fail closed: %s", body)
				require.True(t, testutil.IsJSONContentType(resp.Header.Get("content-type")), resp.Header.Get("content-type"))
				var eb testutil.ErrorBody
				require.NoError(t, json.Unmarshal(body, &eb), "%s", body)
				require.Equal(t, "gateway_unavailable", eb.Error.Code)
				require.Equal(t, "gateway_error", eb.Error.Type)
			}
		})
	}
	require.Zero(t, mockHits.Load(), "no request may reach the mock upstream without ext_proc")

	// The access log (stdout, flushed every 100 ms) must show that the first
	// route match ignored the spoofed header: the catch-all, not "mock".
	var entries []accessLog
	require.Eventually(t, func() bool {
		entries = entries[:0]
		for _, line := range strings.Split(envoy.Logs(), "\n") {
			var e accessLog
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &e) == nil && e.Method != "" {
				entries = append(entries, e)
			}
		}
		return len(entries) >= 6
	}, 10*time.Second, 50*time.Millisecond, "access log lines")
	for _, e := range entries {
		require.NotContains(t, e.Path, "?", "query strings are not logged")
		switch e.Path {
		case "/healthz":
			require.Equal(t, "healthz", e.Route)
			require.Equal(t, http.StatusOK, e.Status)
		default:
			require.Equal(t, "no_upstream_selected", e.Route, "client x-tollgate-upstream must be stripped before routing")
			require.Equal(t, http.StatusServiceUnavailable, e.Status)
			require.True(t, strings.HasPrefix(e.Details, "ext_proc_error"), e.Details)
		}
	}
	logs := envoy.Logs()
	for _, s := range secrets {
		require.NotContains(t, logs, s, "secret in Envoy output")
	}
}
