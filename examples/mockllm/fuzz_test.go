package mockllm

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

var fuzzPaths = []struct{ method, path string }{
	{http.MethodPost, "/v1/chat/completions"},
	{http.MethodPost, "/v1/completions"},
	{http.MethodPost, "/v1/embeddings"},
	{http.MethodPost, "/v1/responses"},
	{http.MethodGet, "/v1/models"},
	{http.MethodPost, "/v1/messages"},
	{http.MethodPost, "/v1/unknown"},
}

// FuzzHandler feeds random bodies to every endpoint. Invariants: no panic, never a 5xx, a JSON
// answer is valid JSON with an exact content-length, a stream is well-formed SSE whose data
// is JSON (or [DONE]), and no key ever comes back.
func FuzzHandler(f *testing.F) {
	seeds := []string{
		chatBody,
		richChatBody + `,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"gpt-3.5-turbo-instruct","prompt":["a","b"],"stream":true}`,
		`{"model":"e","input":["a","b"],"encoding_format":"base64"}`,
		responsesBody + `,"stream":true}`,
		messagesBody + `,"stream":true}`,
		`{"model":"\u0000\ud800 <>&","messages":[{"content":[{"text":1}]}],"max_tokens":1e3}`,
		`{"model":"m","messages":[],"stream":true,"stream_options":null}`,
		`[[[[[[[[[[`, `null`, ``, `{"model":null}`,
	}
	for i, s := range seeds {
		for route := range fuzzPaths {
			f.Add(uint8(route), uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, route, chunks uint8, body []byte) {
		p := fuzzPaths[int(route)%len(fuzzPaths)]
		s := New(Options{OpenAIKey: testOpenAIKey, AnthropicKey: testAnthropicKey, Chunks: int(chunks % 9)})
		r := httptest.NewRequest(p.method, p.path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+testOpenAIKey)
		r.Header.Set("X-Api-Key", testAnthropicKey)
		r.Header.Set("Anthropic-Version", "2023-06-01")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)

		require.Less(t, w.Code, 500)
		require.Equal(t, "1", w.Header().Get("X-Mock-Upstream"))
		require.NotContains(t, w.Body.String(), testOpenAIKey)
		require.NotContains(t, w.Body.String(), testAnthropicKey)
		switch ct := w.Header().Get("Content-Type"); ct {
		case "application/json":
			require.True(t, json.Valid(w.Body.Bytes()), "invalid JSON: %q", w.Body)
			require.Equal(t, strconv.Itoa(w.Body.Len()), w.Header().Get("Content-Length"))
		case "text/event-stream":
			require.Equal(t, http.StatusOK, w.Code)
			events := readEvents(t, bytes.NewReader(w.Body.Bytes()))
			require.NotEmpty(t, events)
			for _, ev := range events {
				if ev.data != "[DONE]" {
					require.True(t, json.Valid([]byte(ev.data)), "invalid event data: %q", ev.data)
				}
			}
		default:
			t.Fatalf("unexpected content-type %q", ct)
		}
	})
}
