package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// The acceptance test of fallback across providers (issue 13, item 2) on the real stack: the
// Tollgate binary and envoy/envoy.yaml as shipped. Target A is a provider that fails (an
// in-test server behind its own cluster, mock_llm_a, a copy of envoy.yaml's mock_llm); target B
// is the mock LLM (mock-openai). Prices differ, so the charge tells which target was billed.
const (
	fbModel = "fallback-model"
	fbTeam  = "fallback"
	fbAKey  = "sk-provider-a-fallback-0001"
	// B's price: 3 and 4 USD per million input and output tokens, i.e. 3 and 4 micro-dollars
	// per token. A's is 1 and 2.
	fbBIn, fbBOut = 3, 4
)

// failingProvider is target A: it records each request, then answers it as its mode says.
type failingProvider struct {
	port int
	mu   sync.Mutex
	mode providerMode
	reqs []providerRequest
}

func startFailingProvider(t *testing.T) *failingProvider {
	t.Helper()
	p := &failingProvider{mode: answer429}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

func (p *failingProvider) answer(m providerMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.reqs = m, nil
}

func (p *failingProvider) requests() []providerRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]providerRequest(nil), p.reqs...)
}

func (p *failingProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.reqs = append(p.reqs, providerRequest{Header: r.Header.Clone(), Host: r.Host, Path: r.URL.Path, Body: body})
	mode := p.mode
	p.mu.Unlock()
	w.Header().Set("content-type", "application/json")
	switch mode {
	case answer429:
		w.Header().Set("retry-after", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"message":"rate limited by A","type":"rate_limit_error"}}`)
	case answer503:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"message":"A is overloaded","type":"server_error"}}`)
	default: // answerReset: the whole request read, then a TCP RST before any response byte
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// fallbackConfig edits examples/config.yaml: provider mock-a on cluster mock_llm_a (A), and
// fallback-model: A first, then mock-openai (B, the mock), for team fallback.
func fallbackConfig(keyFile string) func(string) string {
	return func(cfg string) string {
		cfg = strings.Replace(cfg, "providers:\n", "providers:\n  - name: mock-a\n    type: openai-compatible\n    route: mock\n"+
			"    cluster: mock_llm_a\n    credential: file:"+keyFile+"\n", 1)
		cfg = strings.Replace(cfg, "models:\n", "models:\n  - name: "+fbModel+"\n    provider: mock-a\n    upstream_model: mock-a-model\n"+
			"    pricing: {input: \"1\", output: \"2\"}\n    fallback:\n      - provider: mock-openai\n        upstream_model: mock-b-model\n"+
			"        pricing: {input: \"3\", output: \"4\"}\n", 1)
		return strings.Replace(cfg, "teams:\n", "teams:\n  - name: "+fbTeam+"\n    limits:\n      usd_lifetime: \"10\"\n", 1)
	}
}

// addClusterA appends cluster mock_llm_a to the rendered envoy.yaml: envoy.yaml's mock_llm
// (with Tollgate's upstream filter chain) on A's port.
func addClusterA(port int) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		cfg := readFile(t, path)
		start := strings.Index(cfg, "  - name: mock_llm\n")
		end := strings.Index(cfg, "  # --- Local OpenAI-compatible server")
		require.True(t, start > 0 && end > start)
		block := cfg[start:end]
		block = replaceOnce(t, block, "  - name: mock_llm\n", "  - name: mock_llm_a\n")
		block = replaceOnce(t, block, "cluster_name: mock_llm\n", "cluster_name: mock_llm_a\n")
		i := strings.Index(block, "port_value: ")
		j := strings.Index(block[i:], " }")
		block = block[:i] + "port_value: " + strconv.Itoa(port) + block[i+j:]
		require.NoError(t, os.WriteFile(path, []byte(strings.TrimRight(cfg, "\n")+"\n\n"+block), 0o600))
	}
}

// auditEvent is the part of an audit event this test reads.
type auditEvent struct {
	Model    string `json:"model_requested"`
	Provider string `json:"provider"`
	Served   string `json:"model_served"`
	Status   int    `json:"status"`
	Cost     int64  `json:"cost_usd_micros"`
	Rule     string `json:"settle_rule"`
	Tokens   struct {
		Input  int64 `json:"input"`
		Output int64 `json:"output"`
	} `json:"tokens"`
	Attempts []struct {
		N        int    `json:"n"`
		Provider string `json:"provider"`
		Model    string `json:"model"`
		Status   int    `json:"status"`
		Outcome  string `json:"outcome"`
	} `json:"attempts"`
}

// TestFallbackAcrossProviders: target A answers 429, then 503, then resets the connection
// mid-request; target B succeeds. Each time the client sees one success, B's; the spend is
// B's own usage priced for B; the audit event lists both attempts; B never receives A's key
// or the virtual key, A never receives B's; nothing of it reaches a log.
func TestFallbackAcrossProviders(t *testing.T) {
	a := startFailingProvider(t)
	keyDir := t.TempDir()
	keyFile := filepath.Join(keyDir, "mock-a-key")
	require.NoError(t, os.WriteFile(keyFile, []byte(fbAKey+"\n"), 0o600))
	s := startStack(t, stackOptions{edit: fallbackConfig(keyFile), envoy: addClusterA(a.port)})
	s.extra["provider A key"] = fbAKey
	key := s.newKey(t, "--name", "fb", "--team", fbTeam)
	s.keys["fb"] = key

	scenarios := []struct {
		name    string
		mode    providerMode
		stream  bool
		aStatus int    // A's status in the audit event; 0 for the reset
		aOut    string // A's outcome
	}{
		{"A answers 429", answer429, false, 429, "failed"},
		{"A answers 503, streamed", answer503, true, 503, "failed"},
		{"A resets mid-request", answerReset, false, 0, "no_answer"},
	}
	var wantCosts []int64
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			a.answer(sc.mode)
			s.mock.Reset()
			before := s.usage(t, s.admin, fbTeam, "usd_lifetime").Used

			r := s.do(t, "POST", "/v1/chat/completions", chatBody(fbModel, sc.stream),
				"authorization", "Bearer "+key, "content-type", "application/json")
			require.Equal(t, http.StatusOK, r.status, "the client sees one success: %s", r.body)
			require.Contains(t, string(r.body), `"model":"mock-b-model"`, "B's answer")

			// A got one attempt, with A's key only.
			aReqs := a.requests()
			require.Len(t, aReqs, 1)
			require.Equal(t, "Bearer "+fbAKey, aReqs[0].Header.Get("authorization"))
			require.Contains(t, string(aReqs[0].Body), `"model":"mock-a-model"`)
			requireNoKeys(t, aReqs[0].Header, aReqs[0].Body, key, s.openAIKey)

			// B got one attempt, with B's key and model, never A's key or the virtual key.
			bReqs := s.mock.Requests()
			require.Len(t, bReqs, 1)
			require.Equal(t, "Bearer "+s.openAIKey, bReqs[0].Header.Get("authorization"))
			require.Contains(t, string(bReqs[0].Body), `"model":"mock-b-model"`)
			require.Equal(t, strconv.Itoa(len(bReqs[0].Body)), bReqs[0].Header.Get("content-length"))
			require.Contains(t, string(bReqs[0].Body), promptMarker)
			requireNoKeys(t, bReqs[0].Header, bReqs[0].Body, key, fbAKey)

			// Spend: B's own usage, priced for B.
			u := servedUsage(t, s.gate.Last(), sc.stream)
			want := fbBIn*u.InputTokens + fbBOut*u.OutputTokens
			require.Positive(t, want)
			require.Eventually(t, func() bool {
				e, ok := usageOf(s.admin, fbTeam, "usd_lifetime")
				return ok && e.Used-before == want
			}, 10*time.Second, 20*time.Millisecond, "spend must be B's usage at B's price: %d", want)
			wantCosts = append(wantCosts, want)
		})
	}

	// The audit trail: one event per request, both attempts listed, provider and cost B's.
	s.tollgate.Stop()
	files, err := filepath.Glob(filepath.Join(s.dir, ".dev", "audit", "audit.log*"))
	require.NoError(t, err)
	var events []auditEvent
	var trail strings.Builder
	for _, f := range files {
		raw := readFile(t, f)
		trail.WriteString(raw)
		for _, line := range strings.Split(raw, "\n") {
			if !strings.Contains(line, `"model_requested":"`+fbModel+`"`) {
				continue
			}
			var e auditEvent
			require.NoError(t, json.Unmarshal([]byte(line), &e))
			events = append(events, e)
		}
	}
	require.Len(t, events, len(scenarios))
	for i, sc := range scenarios {
		e := events[i]
		require.Equal(t, 200, e.Status)
		require.Equal(t, "mock-openai", e.Provider, "the serving provider")
		require.Equal(t, "usage", e.Rule)
		require.Equal(t, wantCosts[i], e.Cost)
		require.Len(t, e.Attempts, 2, sc.name)
		require.Equal(t, 1, e.Attempts[0].N)
		require.Equal(t, "mock-a", e.Attempts[0].Provider)
		require.Equal(t, "mock-a-model", e.Attempts[0].Model)
		require.Equal(t, sc.aStatus, e.Attempts[0].Status, sc.name)
		require.Equal(t, sc.aOut, e.Attempts[0].Outcome, sc.name)
		require.Equal(t, 2, e.Attempts[1].N)
		require.Equal(t, "mock-openai", e.Attempts[1].Provider)
		require.Equal(t, "mock-b-model", e.Attempts[1].Model)
		require.Equal(t, 200, e.Attempts[1].Status)
		require.Equal(t, "served", e.Attempts[1].Outcome)
	}
	require.NotContains(t, trail.String(), "mock_llm_a", "no cluster names in the audit trail")
	for name, v := range s.secrets() {
		require.NotContains(t, trail.String(), v, "%s leaked into the audit trail", name)
		require.NotContains(t, s.logs(), v, "%s leaked into Tollgate's logs", name)
		require.NotContains(t, s.envoy.Logs(), v, "%s leaked into Envoy's output", name)
	}
	require.Contains(t, s.envoy.Logs(), `"tollgate_attempts":{`, "the access log names the attempts")
}

// requireNoKeys checks that no header or body of a provider request holds any of keys.
func requireNoKeys(t *testing.T, h http.Header, body []byte, keys ...string) {
	t.Helper()
	for name, vals := range h {
		require.False(t, strings.HasPrefix(strings.ToLower(name), "x-tollgate-"), "internal header %s", name)
		for _, v := range vals {
			for _, k := range keys {
				require.NotContains(t, v, k, "header %s", name)
			}
		}
	}
	for _, k := range keys {
		require.NotContains(t, string(body), k)
	}
}

// servedUsage reads the usage B reported in the response it wrote.
func servedUsage(t *testing.T, raw []byte, stream bool) llm.Usage {
	t.Helper()
	if stream {
		return streamUsage(t, bytes.NewReader(raw))
	}
	var v struct {
		Usage struct {
			Prompt     int64 `json:"prompt_tokens"`
			Completion int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal(raw, &v), "%s", raw)
	return llm.Usage{InputTokens: v.Usage.Prompt, OutputTokens: v.Usage.Completion}
}
