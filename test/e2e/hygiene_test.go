package e2e

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRequestHygiene: what of the client's request besides its body reaches the provider.
// Headers go by allow-list (issue 8 item 6), the query string only where the endpoint allows
// it (item 7), and a compressed body is refused rather than scanned as plaintext and
// forwarded still labelled compressed (issue 14 item 4).
func TestRequestHygiene(t *testing.T) {
	s := startStack(t, stackOptions{edit: func(cfg string) string {
		return replaceOnce(t, cfg, "    credential: file:../.dev/mock-openai-key\n",
			"    credential: file:../.dev/mock-openai-key\n    organization: org-from-config\n    project: proj-from-config\n")
	}})
	chat := []string{"authorization", "Bearer " + s.keys["demo"], "content-type", "application/json"}

	t.Run("client headers off the allow-list never reach the provider", func(t *testing.T) {
		s.mock.Reset()
		hostile := []string{
			"openai-organization", "org-chosen-by-client", "openai-project", "proj-chosen-by-client",
			"cookie", "session=abc", "proxy-authorization", "Basic dXNlcjpwYXNz",
			"x-forwarded-for", "203.0.113.7", "x-envoy-external-address", "203.0.113.8",
			"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-custom-debug", "1",
			"accept", "application/json", "user-agent", "hygiene-test/1.0",
		}
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), append(chat, hostile...)...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		reqs := s.mock.Requests()
		require.Len(t, reqs, 1)
		up := reqs[0].Header
		require.Equal(t, "org-from-config", up.Get("openai-organization"), "the organization comes from the provider config")
		require.Equal(t, "proj-from-config", up.Get("openai-project"))
		for _, h := range []string{"cookie", "proxy-authorization", "x-forwarded-for", "x-forwarded-proto",
			"x-envoy-external-address", "traceparent", "x-custom-debug", "x-api-key", "api-key"} {
			require.Empty(t, up.Values(h), "%s reached the provider", h)
		}
		require.Equal(t, "application/json", up.Get("content-type"))
		require.Equal(t, "application/json", up.Get("accept"))
		require.Equal(t, "hygiene-test/1.0", up.Get("user-agent"))
	})

	t.Run("anthropic-version passes, anthropic-beta does not unless configured", func(t *testing.T) {
		s.mock.Reset()
		r := s.do(t, "POST", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`,
			"x-api-key", s.keys["demo"], "content-type", "application/json", "anthropic-version", "2023-06-01",
			"anthropic-beta", "context-1m-2025-08-07", "cookie", "a=b")
		require.Equal(t, 200, r.status, "body: %s", r.body)
		up := s.mock.Requests()[0].Header
		require.Equal(t, "2023-06-01", up.Get("anthropic-version"))
		require.Empty(t, up.Values("anthropic-beta"), "a beta can change the price: opt-in per provider")
		require.Empty(t, up.Values("cookie"))
		require.Empty(t, up.Values("openai-organization"), "organization is an OpenAI setting")
	})

	t.Run("query strings are refused unless the endpoint allows them", func(t *testing.T) {
		s.mock.Reset()
		for _, path := range []string{
			"/v1/chat/completions?api-version=2024-01-01",
			"/v1/chat/completions?beta=true",
			"/v1/responses?stream=true",
			"/v1/messages?beta=true&debug=1",
			"/v1/messages?beta=yes",
		} {
			body := chatBody("fast", false)
			hdr := chat
			if path[:12] == "/v1/messages" {
				body = `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
				hdr = []string{"x-api-key", s.keys["demo"], "content-type", "application/json"}
			}
			r := s.do(t, "POST", path, body, hdr...)
			requireJSONError(t, r, 400)
			require.Contains(t, string(r.body), "query parameters are not supported", path)
		}
		require.Empty(t, s.mock.Requests(), "nothing was forwarded")

		// The Anthropic SDK's beta client sends ?beta=true: allowed, and the only query that
		// ever reaches a provider.
		r := s.do(t, "POST", "/v1/messages?beta=true", `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`,
			"x-api-key", s.keys["demo"], "content-type", "application/json")
		require.Equal(t, 200, r.status, "body: %s", r.body)
		require.Equal(t, "/v1/messages?beta=true", s.mock.Requests()[0].Path)

		// /v1/models is answered locally; SDK paging parameters are ignored.
		r = s.do(t, "GET", "/v1/models?limit=20", "", "authorization", "Bearer "+s.keys["demo"])
		require.Equal(t, 200, r.status)
	})

	t.Run("a compressed body is refused, never scanned as plaintext and forwarded", func(t *testing.T) {
		s.mock.Reset()
		for _, enc := range []string{"br", "gzip", "deflate", "zstd"} {
			// A plain JSON body labelled compressed: scanned as plaintext before, and forwarded
			// still labelled, so the provider would read something else.
			r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), append(chat, "content-encoding", enc)...)
			requireJSONError(t, r, 415)
			require.Contains(t, string(r.body), "compressed request bodies")
		}
		// Compressed but unlabelled, and nested too deep: each says why (issue 14 item 7).
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write([]byte(chatBody("fast", false)))
		require.NoError(t, zw.Close())
		r := s.do(t, "POST", "/v1/chat/completions", gz.String(), chat...)
		requireJSONError(t, r, 415)
		require.Contains(t, string(r.body), "appears to be compressed")
		deep := `{"model":"fast","messages":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`
		r = s.do(t, "POST", "/v1/chat/completions", deep, chat...)
		requireJSONError(t, r, 400)
		require.Contains(t, string(r.body), "more than 128 levels deep")
		require.Empty(t, s.mock.Requests())
	})
}
