package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

// promptMarker is in every prompt; the leak test looks for it in all logs.
const promptMarker = "PROMPT-TEXT-d41d8cd9-confidential"

type result struct {
	status int
	header http.Header
	body   []byte
}

func (s *stack) do(t *testing.T, method, path string, body string, hdr ...string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	require.NoError(t, err)
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

func chatBody(model string, stream bool) string {
	b, _ := json.Marshal(map[string]any{
		"model":    model,
		"stream":   stream,
		"messages": []map[string]string{{"role": "user", "content": "Summarize " + promptMarker}},
	})
	return string(b)
}

// requireJSONError checks a refusal: the status, a JSON content type and an error object.
func requireJSONError(t *testing.T, r result, status int) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Contains(t, r.header.Get("content-type"), "application/json")
	var v map[string]any
	require.NoError(t, json.Unmarshal(r.body, &v), "body: %s", r.body)
	require.Contains(t, v, "error")
}

func TestEndToEnd(t *testing.T) {
	s := startStack(t)
	bearer := func(k string) []string {
		return []string{"authorization", "Bearer " + k, "content-type", "application/json"}
	}

	t.Run("valid key reaches the mock with the provider key only, alias rewritten", func(t *testing.T) {
		s.mock.Reset()
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), bearer(s.keys["demo"])...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		var resp struct {
			Model string `json:"model"`
			Usage struct {
				Total int `json:"total_tokens"`
			} `json:"usage"`
		}
		require.NoError(t, json.Unmarshal(r.body, &resp))
		require.Equal(t, "mock-gpt-4o-mini", resp.Model, "the alias is rewritten to the upstream model")
		require.Positive(t, resp.Usage.Total)

		reqs := s.mock.Requests()
		require.Len(t, reqs, 1)
		up := reqs[0]
		require.Equal(t, "Bearer "+s.openAIKey, up.Header.Get("Authorization"))
		require.Empty(t, up.Header.Get("x-api-key"))
		require.Empty(t, up.Header.Get("api-key"))
		require.Empty(t, up.Header.Get("x-tollgate-upstream"), "the routing header never leaves Envoy")
		require.Equal(t, "identity", up.Header.Get("accept-encoding"))
		for name, vals := range up.Header {
			for _, v := range vals {
				require.NotContains(t, v, s.keys["demo"], "virtual key in upstream header %s", name)
			}
		}
		require.NotContains(t, string(up.Body), s.keys["demo"])
		var sent struct {
			Model string `json:"model"`
		}
		require.NoError(t, json.Unmarshal(up.Body, &sent))
		require.Equal(t, "mock-gpt-4o-mini", sent.Model)
	})

	t.Run("bodies without content-length are rewritten and re-framed", func(t *testing.T) {
		for name, c := range map[string]*http.Client{
			"h2":                 s.client,
			"http/1.1 (chunked)": testutil.TLSClientHTTP1(s.ca),
		} {
			t.Run(name, func(t *testing.T) {
				s.mock.Reset()
				body := chatBody("fast", false)
				// A reader without a length: no content-length header, chunked on HTTP/1.1.
				req, err := http.NewRequest("POST", s.base+"/v1/chat/completions", io.MultiReader(strings.NewReader(body)))
				require.NoError(t, err)
				req.Header.Set("authorization", "Bearer "+s.keys["demo"])
				req.Header.Set("content-type", "application/json")
				resp, err := c.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				require.Equal(t, 200, resp.StatusCode, "body: %s", b)
				reqs := s.mock.Requests()
				require.Len(t, reqs, 1)
				// The model alias rewritten and, since the demo team has USD limits, the reserved
				// output cap (the model's max_output_tokens) written in: the rest byte for byte.
				want := strings.Replace(body, `"model":"fast"`, `"model":"mock-gpt-4o-mini"`, 1)
				want = strings.TrimSuffix(want, "}") + `,"max_tokens":1024}`
				require.Equal(t, want, string(reqs[0].Body))
			})
		}
	})

	t.Run("refused keys get JSON 401 and never reach the upstream", func(t *testing.T) {
		s.mock.Reset()
		demo := s.keys["demo"]
		for name, key := range map[string]string{
			"unknown":   "tgk_AAAAAAAAAAAA_" + strings.Repeat("b", 49),
			"malformed": "sk-this-is-not-a-tollgate-key",
			"checksum":  demo[:len(demo)-2] + flip(demo[len(demo)-2:]),
			"disabled":  s.keys["disabled"],
			"expired":   s.keys["expired"],
			"none":      "",
		} {
			t.Run(name, func(t *testing.T) {
				h := []string{"content-type", "application/json"}
				if key != "" {
					h = append(h, "authorization", "Bearer "+key)
				}
				r := s.do(t, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false), h...)
				requireJSONError(t, r, 401)
			})
		}
		require.Empty(t, s.mock.Requests())
	})

	t.Run("spoofed routing header cannot change the upstream", func(t *testing.T) {
		s.mock.Reset()
		// With an invalid key, a client-set routing header must not reach any upstream.
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false),
			"x-tollgate-upstream", "mock", "content-type", "application/json", "authorization", "Bearer sk-nope")
		requireJSONError(t, r, 401)
		require.Empty(t, s.mock.Requests())
		// With a valid key, tollgate's decision wins over the spoofed header.
		r = s.do(t, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false),
			append(bearer(s.keys["demo"]), "x-tollgate-upstream", "openai")...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		require.Len(t, s.mock.Requests(), 1)
		// An Anthropic-model request stays on the route tollgate chose too.
		r = s.do(t, "GET", "/v1/models", "", "authorization", "Bearer "+s.keys["demo"], "x-tollgate-upstream", "mock")
		require.Equal(t, 200, r.status)
		require.Len(t, s.mock.Requests(), 1, "/v1/models is answered by tollgate, not forwarded")
	})

	t.Run("unknown path and method are refused with JSON", func(t *testing.T) {
		requireJSONError(t, s.do(t, "POST", "/v1/fine_tuning/jobs", "{}", bearer(s.keys["demo"])...), 404)
		requireJSONError(t, s.do(t, "GET", "/admin", "", bearer(s.keys["demo"])...), 404)
		requireJSONError(t, s.do(t, "DELETE", "/v1/chat/completions", "", bearer(s.keys["demo"])...), 405)
	})

	t.Run("GET /v1/models lists the key's models", func(t *testing.T) {
		r := s.do(t, "GET", "/v1/models", "", "authorization", "Bearer "+s.keys["research"])
		require.Equal(t, 200, r.status, "body: %s", r.body)
		require.JSONEq(t, `["text-embedding-3-small","claude-haiku-4-5"]`, ids(t, r.body))
		r = s.do(t, "GET", "/v1/models", "", "authorization", "Bearer "+s.keys["demo"])
		require.Equal(t, 200, r.status)
		require.Contains(t, ids(t, r.body), "gpt-4o-mini")
		require.NotContains(t, ids(t, r.body), "openai/gpt-4o-mini", "providers without credentials are not listed")
	})

	t.Run("SSE arrives chunk by chunk and byte-identical (no guardrails)", func(t *testing.T) {
		body := `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"` + promptMarker + `"}]}`
		heldBefore := s.gate.Held()
		release := s.gate.Hold(2) // the upstream stops after two flushed events
		defer release()
		req, err := http.NewRequest("POST", s.base+"/v1/chat/completions", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("authorization", "Bearer "+s.keys["raw"])
		req.Header.Set("content-type", "application/json")
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.Contains(t, resp.Header.Get("content-type"), "text/event-stream")
		ev := sseEvents{bufio.NewReader(resp.Body)}
		var got bytes.Buffer
		// The upstream is held after two events: they can only arrive if Envoy passes chunks
		// on while the upstream is still streaming.
		first := make(chan error, 1)
		go func() {
			for range 2 {
				e, err := ev.next()
				if err != nil {
					first <- err
					return
				}
				got.WriteString(e)
			}
			first <- nil
		}()
		select {
		case err := <-first:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("the first events did not arrive while the upstream was still streaming")
		}
		require.Equal(t, heldBefore+1, s.gate.Held(), "the upstream was held mid-stream when the events arrived")
		release()
		rest, err := io.ReadAll(ev.r)
		require.NoError(t, err)
		got.Write(rest)
		require.True(t, strings.HasSuffix(got.String(), "data: [DONE]\n\n"), got.String())
		require.Contains(t, got.String(), `"usage":{"prompt_tokens"`)
		require.Equal(t, string(s.gate.Last()), got.String(), "the client gets the upstream's bytes unchanged")
	})

	t.Run("Anthropic SDK style request", func(t *testing.T) {
		s.mock.Reset()
		body := `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"` + promptMarker + `"}]}`
		r := s.do(t, "POST", "/v1/messages", body,
			"x-api-key", s.keys["demo"], "anthropic-version", "2023-06-01", "content-type", "application/json")
		require.Equal(t, 200, r.status, "body: %s", r.body)
		require.Contains(t, string(r.body), `"model":"mock-claude-haiku"`)
		up := s.mock.Requests()[0]
		require.Equal(t, s.anthropicKey, up.Header.Get("x-api-key"))
		require.Empty(t, up.Header.Get("authorization"))
		require.Equal(t, "2023-06-01", up.Header.Get("anthropic-version"))

		// Newer SDKs send Authorization: Bearer; errors come back Anthropic-shaped.
		r = s.do(t, "POST", "/v1/messages", body, "authorization", "Bearer nope", "content-type", "application/json")
		requireJSONError(t, r, 401)
		require.Contains(t, string(r.body), `"type":"error"`)
	})

	t.Run("bad input gets clear 4xx JSON and the server lives", func(t *testing.T) {
		auth := bearer(s.keys["demo"])
		requireJSONError(t, s.do(t, "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini",`, auth...), 400)
		requireJSONError(t, s.do(t, "POST", "/v1/chat/completions", `{"messages":[]}`, auth...), 400)
		requireJSONError(t, s.do(t, "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini"}`,
			"authorization", "Bearer "+s.keys["demo"], "content-type", "text/plain"), 415)
		big := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("a", 2<<20) + `"}]}`
		requireJSONError(t, s.do(t, "POST", "/v1/chat/completions", big, auth...), 413)
		requireJSONError(t, s.do(t, "POST", "/v1/chat/completions", `{"model":"no-such-model"}`, auth...), 404)
		// Still serving.
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false), auth...)
		require.Equal(t, 200, r.status)
	})

	t.Run("hot reload: a new key works, a broken config is refused", func(t *testing.T) {
		key := s.newKey(t, "--name", "hot")
		s.keys["hot"] = key
		require.Eventually(t, func() bool {
			return s.do(t, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false), bearer(key)...).status == 200
		}, 10*time.Second, 100*time.Millisecond)

		good := readFile(t, s.cfg)
		require.NoError(t, os.WriteFile(s.cfg, []byte(good+"\nproviders: [ {name: broken\n"), 0o600))
		require.Eventually(t, func() bool { return strings.Contains(s.tollgate.Logs(), "config reload refused") },
			10*time.Second, 100*time.Millisecond)
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false), bearer(key)...)
		require.Equal(t, 200, r.status, "the last good config keeps serving")
		require.NoError(t, os.WriteFile(s.cfg, []byte(good), 0o600))
	})

	t.Run("a sealed provider key is opened, and its KEK rotates with no failed request", func(t *testing.T) { sealedProviderKey(t, s) })

	t.Run("no key, provider key, KEK, sealed value or prompt in any log", func(t *testing.T) {
		logs := s.tollgate.Logs() + s.envoy.Logs()
		require.Contains(t, s.tollgate.Logs(), `"msg":"request"`, "the tollgate log must not be empty")
		for name, v := range s.secrets() {
			require.NotContains(t, logs, v, "%s leaked into the logs", name)
		}
	})

	t.Run("audit trail and metrics are minimized and the trail verifies", func(t *testing.T) { auditTrail(t, s) })
}

// auditTrail checks the audit trail and /metrics after a run: minimized (no key, provider
// key or prompt), one event per request, and verifiable by `tollgate audit verify` once
// tollgate has shut down (which writes the closing signed checkpoint).
func auditTrail(t *testing.T, s *stack) {
	resp, err := http.Get(s.admin + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(metrics), "tollgate_requests_total")
	require.Contains(t, string(metrics), "tollgate_audit_events_emitted_total")

	s.tollgate.Stop() // graceful: drains, flushes the ledger, closes the trail with a checkpoint
	dev := filepath.Join(s.dir, ".dev")
	files, err := filepath.Glob(filepath.Join(dev, "audit", "audit.log*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var trail strings.Builder
	for _, f := range files {
		trail.WriteString(readFile(t, f))
	}
	require.Contains(t, trail.String(), `"reason":"invalid_key"`)
	require.Contains(t, trail.String(), `"decision":"allow"`)
	for name, v := range s.secrets() {
		require.NotContains(t, trail.String(), v, "%s leaked into the audit trail", name)
		require.NotContains(t, string(metrics), v, "%s leaked into /metrics", name)
	}

	verify := append([]string{"audit", "verify", "--chain-key", "file:" + filepath.Join(dev, "audit-chain-key"),
		"--checkpoint-pub", filepath.Join(dev, "audit-checkpoint.pub.pem")}, files...)
	out := s.run(t, verify...)
	require.NotEmpty(t, out)

	// One edited field is found.
	tampered := filepath.Join(t.TempDir(), "audit.log")
	orig := readFile(t, files[0])
	require.Contains(t, orig, `"status":401`)
	require.NoError(t, os.WriteFile(tampered, []byte(strings.Replace(orig, `"status":401`, `"status":200`, 1)), 0o600))
	cmd := exec.Command(s.bin, append(verify[:len(verify)-len(files)], tampered)...)
	cmd.Env = cleanEnv()
	b, err := cmd.CombinedOutput()
	require.Error(t, err, "a tampered trail must fail verification: %s", b)
}

func ids(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &v))
	var out []string
	for _, d := range v.Data {
		out = append(out, d.ID)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// flip changes the characters of a base62 suffix so the checksum no longer matches.
func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'z' {
			b[i] = 'y'
		} else {
			b[i] = 'z'
		}
	}
	return string(b)
}
