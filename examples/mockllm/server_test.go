package mockllm

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`

func TestOpenAIAuth(t *testing.T) {
	paths := []struct{ method, path, body string }{
		{http.MethodPost, "/v1/chat/completions", chatBody},
		{http.MethodPost, "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"hi"}`},
		{http.MethodPost, "/v1/embeddings", `{"model":"text-embedding-3-small","input":"hi"}`},
		{http.MethodPost, "/v1/responses", `{"model":"gpt-4o","input":"hi"}`},
		{http.MethodGet, "/v1/models", ""},
	}
	tests := []struct {
		name    string
		hdr     map[string]string
		status  int
		message string
	}{
		{"missing", nil, http.StatusUnauthorized, "You didn't provide an API key"},
		{"wrong bearer", map[string]string{"Authorization": "Bearer sk-wrong-key-0000"}, http.StatusUnauthorized, "Incorrect API key provided."},
		{"wrong azure key", map[string]string{"Api-Key": "sk-wrong-key-0000"}, http.StatusUnauthorized, "Incorrect API key provided."},
		{"key without bearer scheme", map[string]string{"Authorization": testOpenAIKey}, http.StatusUnauthorized, "Incorrect API key provided."},
		{"anthropic header is not openai auth", map[string]string{"X-Api-Key": testOpenAIKey}, http.StatusUnauthorized, "You didn't provide an API key"},
		{"bearer", map[string]string{"Authorization": "Bearer " + testOpenAIKey}, http.StatusOK, ""},
		{"lower-case bearer", map[string]string{"Authorization": "bearer " + testOpenAIKey}, http.StatusOK, ""},
		{"azure api-key", map[string]string{"Api-Key": testOpenAIKey}, http.StatusOK, ""},
	}
	s := newTestServer(keyedOptions())
	for _, p := range paths {
		for _, tc := range tests {
			t.Run(p.path+"/"+tc.name, func(t *testing.T) {
				hdr := map[string]string{"Content-Type": "application/json"}
				for k, v := range tc.hdr {
					hdr[k] = v
				}
				w := do(s, p.method, p.path, hdr, p.body)
				require.NotContains(t, w.Body.String(), "sk-wrong-key-0000")
				require.NotContains(t, w.Body.String(), testOpenAIKey)
				if tc.status == http.StatusOK {
					require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
					return
				}
				e := requireOpenAIError(t, w, tc.status)
				require.Equal(t, "invalid_request_error", e["type"])
				require.Equal(t, "invalid_api_key", e["code"])
				require.Nil(t, e["param"])
				require.Contains(t, e["message"], tc.message)
			})
		}
	}
}

func TestAnthropicAuthAndVersion(t *testing.T) {
	body := `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		typ    string
		msg    string
	}{
		{"missing key", map[string]string{"Anthropic-Version": "2023-06-01"}, http.StatusUnauthorized, "authentication_error", "invalid x-api-key"},
		{"wrong key", map[string]string{"X-Api-Key": "sk-ant-wrong-0000", "Anthropic-Version": "2023-06-01"}, http.StatusUnauthorized, "authentication_error", "invalid x-api-key"},
		{"bearer is not anthropic auth", map[string]string{"Authorization": "Bearer " + testAnthropicKey, "Anthropic-Version": "2023-06-01"}, http.StatusUnauthorized, "authentication_error", "invalid x-api-key"},
		{"missing version", map[string]string{"X-Api-Key": testAnthropicKey}, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required"},
		{"ok", map[string]string{"X-Api-Key": testAnthropicKey, "Anthropic-Version": "2023-06-01"}, http.StatusOK, "", ""},
	}
	s := newTestServer(keyedOptions())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": "application/json"}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			w := do(s, http.MethodPost, "/v1/messages", hdr, body)
			require.NotContains(t, w.Body.String(), "sk-ant-wrong-0000")
			require.NotContains(t, w.Body.String(), testAnthropicKey)
			if tc.status == http.StatusOK {
				require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
				return
			}
			e := requireAnthropicError(t, w, tc.status, tc.typ)
			require.Equal(t, tc.msg, e["message"])
		})
	}
}

func TestNoAuthCheckWithoutKeys(t *testing.T) {
	s := newTestServer(Options{})
	w := do(s, http.MethodPost, "/v1/chat/completions", map[string]string{"Content-Type": "application/json"}, chatBody)
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	w = do(s, http.MethodPost, "/v1/messages",
		map[string]string{"Content-Type": "application/json", "Anthropic-Version": "2023-06-01"},
		`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`)
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name, method, path string
		status             int
		anthropic          bool
		allow              string
	}{
		{"unknown path", http.MethodPost, "/v1/unknown", http.StatusNotFound, false, ""},
		{"root", http.MethodGet, "/", http.StatusNotFound, false, ""},
		{"trailing slash", http.MethodPost, "/v1/chat/completions/", http.StatusNotFound, false, ""},
		{"get chat", http.MethodGet, "/v1/chat/completions", http.StatusMethodNotAllowed, false, http.MethodPost},
		{"post models", http.MethodPost, "/v1/models", http.StatusMethodNotAllowed, false, http.MethodGet},
		{"get messages", http.MethodGet, "/v1/messages", http.StatusMethodNotAllowed, true, http.MethodPost},
	}
	s := newTestServer(keyedOptions())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(s, tc.method, tc.path, nil, "")
			if tc.anthropic {
				requireAnthropicError(t, w, tc.status, "invalid_request_error")
			} else {
				requireOpenAIError(t, w, tc.status)
			}
			require.Equal(t, tc.allow, w.Header().Get("Allow"))
			require.Equal(t, "1", w.Header().Get("X-Mock-Upstream"))
		})
	}
}

func TestBadRequests(t *testing.T) {
	const ctJSON = "application/json"
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		param       any // OpenAI only
	}{
		{"chat: not json", "/v1/chat/completions", ctJSON, `{"model":`, nil},
		{"chat: not an object", "/v1/chat/completions", ctJSON, `["gpt-4o"]`, nil},
		{"chat: null", "/v1/chat/completions", ctJSON, `null`, nil},
		{"chat: empty body", "/v1/chat/completions", ctJSON, ``, nil},
		{"chat: text/plain", "/v1/chat/completions", "text/plain", chatBody, nil},
		{"chat: no content-type", "/v1/chat/completions", "", chatBody, nil},
		{"chat: missing model", "/v1/chat/completions", ctJSON, `{"messages":[]}`, "model"},
		{"chat: empty model", "/v1/chat/completions", ctJSON, `{"model":"","messages":[]}`, "model"},
		{"chat: numeric model", "/v1/chat/completions", ctJSON, `{"model":4,"messages":[]}`, "model"},
		{"chat: missing messages", "/v1/chat/completions", ctJSON, `{"model":"gpt-4o"}`, "messages"},
		{"chat: messages object", "/v1/chat/completions", ctJSON, `{"model":"gpt-4o","messages":{}}`, "messages"},
		{"chat: stream string", "/v1/chat/completions", ctJSON, `{"model":"gpt-4o","messages":[],"stream":"yes"}`, "stream"},
		{"chat: stream_options array", "/v1/chat/completions", ctJSON, `{"model":"gpt-4o","messages":[],"stream_options":[]}`, "stream_options"},
		{"completions: missing model", "/v1/completions", ctJSON, `{"prompt":"x"}`, "model"},
		{"embeddings: missing input", "/v1/embeddings", ctJSON, `{"model":"e"}`, "input"},
		{"embeddings: empty array", "/v1/embeddings", ctJSON, `{"model":"e","input":[]}`, "input"},
		{"embeddings: token ids", "/v1/embeddings", ctJSON, `{"model":"e","input":[1,2]}`, "input"},
		{"embeddings: bad format", "/v1/embeddings", ctJSON, `{"model":"e","input":"x","encoding_format":"hex"}`, "encoding_format"},
		{"responses: missing model", "/v1/responses", ctJSON, `{"input":"x"}`, "model"},
		{"messages: not json", "/v1/messages", ctJSON, `{`, nil},
		{"messages: missing model", "/v1/messages", ctJSON, `{"max_tokens":1,"messages":[]}`, nil},
		{"messages: missing max_tokens", "/v1/messages", ctJSON, `{"model":"c","messages":[]}`, nil},
		{"messages: string max_tokens", "/v1/messages", ctJSON, `{"model":"c","max_tokens":"5","messages":[]}`, nil},
		{"messages: fractional max_tokens", "/v1/messages", ctJSON, `{"model":"c","max_tokens":1.5,"messages":[]}`, nil},
		{"messages: zero max_tokens", "/v1/messages", ctJSON, `{"model":"c","max_tokens":0,"messages":[]}`, nil},
		{"messages: missing messages", "/v1/messages", ctJSON, `{"model":"c","max_tokens":5}`, nil},
	}
	s := newTestServer(keyedOptions())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			anthropic := tc.path == "/v1/messages"
			hdr := openAIHeaders()
			if anthropic {
				hdr = anthropicHeaders()
			}
			hdr["Content-Type"] = tc.contentType
			w := do(s, http.MethodPost, tc.path, hdr, tc.body)
			if anthropic {
				requireAnthropicError(t, w, http.StatusBadRequest, "invalid_request_error")
				return
			}
			e := requireOpenAIError(t, w, http.StatusBadRequest)
			require.Equal(t, "invalid_request_error", e["type"])
			require.Equal(t, tc.param, e["param"])
		})
	}
}

func TestContentTypeWithCharset(t *testing.T) {
	s := newTestServer(Options{})
	w := do(s, http.MethodPost, "/v1/chat/completions",
		map[string]string{"Content-Type": "Application/JSON; charset=utf-8"}, chatBody)
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
}

func TestBodyTooLarge(t *testing.T) {
	big := strings.Repeat("a", MaxBodyBytes+1)
	tests := []struct {
		name      string
		path      string
		chunked   bool
		anthropic bool
	}{
		{"openai with content-length", "/v1/chat/completions", false, false},
		{"openai chunked", "/v1/chat/completions", true, false},
		{"anthropic chunked", "/v1/messages", true, true},
	}
	s := newTestServer(Options{Record: true})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(big))
			r.Header.Set("Content-Type", "application/json")
			if tc.chunked {
				r.ContentLength = -1
				r.Body = io.NopCloser(strings.NewReader(big)) // hide the length
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if tc.anthropic {
				requireAnthropicError(t, w, http.StatusRequestEntityTooLarge, "request_too_large")
			} else {
				e := requireOpenAIError(t, w, http.StatusRequestEntityTooLarge)
				require.Equal(t, "request_too_large", e["code"])
			}
			recs := s.Requests()
			require.Nil(t, recs[len(recs)-1].Body)
		})
	}
	t.Run("exactly the limit is accepted as a body", func(t *testing.T) {
		w := do(newTestServer(Options{}), http.MethodPost, "/v1/chat/completions",
			map[string]string{"Content-Type": "application/json"}, big[:MaxBodyBytes])
		requireOpenAIError(t, w, http.StatusBadRequest) // read fine, then not JSON
	})
}

func TestResponseHeaders(t *testing.T) {
	s := newTestServer(Options{})
	tests := []struct {
		name, requestID string
	}{
		{"echoes x-request-id", "req-123"},
		{"no x-request-id", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": "application/json"}
			if tc.requestID != "" {
				hdr["X-Request-Id"] = tc.requestID
			}
			for _, path := range []string{"/v1/chat/completions", "/v1/nope"} {
				w := do(s, http.MethodPost, path, hdr, chatBody)
				require.Equal(t, "1", w.Header().Get("X-Mock-Upstream"))
				require.Equal(t, tc.requestID, w.Header().Get("X-Request-Id"))
			}
		})
	}
}

func TestRecord(t *testing.T) {
	s := newTestServer(Options{Record: true})
	hdr := map[string]string{"Content-Type": "application/json", "X-Trace": "one"}
	do(s, http.MethodPost, "/v1/chat/completions?api-version=1", hdr, chatBody)
	do(s, http.MethodGet, "/v1/models", nil, "")

	recs := s.Requests()
	require.Len(t, recs, 2)
	require.Equal(t, http.MethodPost, recs[0].Method)
	require.Equal(t, "/v1/chat/completions?api-version=1", recs[0].Path)
	require.Equal(t, "one", recs[0].Header.Get("X-Trace"))
	require.Equal(t, chatBody, string(recs[0].Body))
	require.Equal(t, fixedNow, recs[0].Time)
	require.Equal(t, "/v1/models", recs[1].Path)
	require.Empty(t, recs[1].Body)

	// A snapshot is a deep copy: changing it leaves the server's record alone.
	recs[0].Header.Set("X-Trace", "changed")
	recs[0].Body[0] = 'X'
	again := s.Requests()
	require.Equal(t, "one", again[0].Header.Get("X-Trace"))
	require.Equal(t, chatBody, string(again[0].Body))

	s.Reset()
	require.Empty(t, s.Requests())
	do(s, http.MethodGet, "/v1/models", nil, "")
	require.Len(t, s.Requests(), 1)
}

func TestRecordKeepsLastThousand(t *testing.T) {
	s := newTestServer(Options{Record: true})
	const n = maxRecorded + 25
	for i := range n {
		do(s, http.MethodGet, "/v1/models?i="+strconv.Itoa(i), nil, "")
	}
	recs := s.Requests()
	require.Len(t, recs, maxRecorded)
	require.Equal(t, "/v1/models?i=25", recs[0].Path)
	require.Equal(t, "/v1/models?i="+strconv.Itoa(n-1), recs[len(recs)-1].Path)
}

func TestRecordOff(t *testing.T) {
	s := newTestServer(Options{})
	do(s, http.MethodPost, "/v1/chat/completions", map[string]string{"Content-Type": "application/json"}, chatBody)
	require.Empty(t, s.Requests())
}

func TestAccessLogLeaksNothing(t *testing.T) {
	var buf bytes.Buffer
	o := keyedOptions()
	o.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	s := newTestServer(o)
	const prompt = "my secret prompt text"
	hdr := openAIHeaders()
	hdr["X-Request-Id"] = "req-42"
	hdr["Cookie"] = "session=cookie-value"
	body := `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"` + prompt + `"}]}`
	w := do(s, http.MethodPost, "/v1/chat/completions?key=query-secret", hdr, body)
	require.Equal(t, http.StatusOK, w.Code)
	w = do(s, http.MethodPost, "/v1/messages", map[string]string{"X-Api-Key": "sk-ant-wrong-0000"}, body)
	require.Equal(t, http.StatusUnauthorized, w.Code)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	first := decode(t, []byte(lines[0]))
	require.Equal(t, "/v1/chat/completions", first[logPath])
	require.EqualValues(t, 200, first[logStatus])
	require.Positive(t, first[logBytes])
	require.Equal(t, "req-42", first[logRequestID])
	require.EqualValues(t, 401, decode(t, []byte(lines[1]))[logStatus])
	for _, secret := range []string{testOpenAIKey, "sk-ant-wrong-0000", prompt, "query-secret", "cookie-value", "mock response"} {
		require.NotContains(t, buf.String(), secret)
	}
}

func TestConcurrentRequests(t *testing.T) {
	s := newTestServer(Options{Record: true})
	const n = 32
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w := do(s, http.MethodPost, "/v1/chat/completions", map[string]string{"Content-Type": "application/json"}, chatBody)
			var got chatCompletion
			if json.Unmarshal(w.Body.Bytes(), &got) == nil {
				ids[i] = got.ID
			}
		})
	}
	wg.Wait()
	require.Len(t, s.Requests(), n)
	seen := map[string]bool{}
	for _, id := range ids {
		require.NotEmpty(t, id)
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
}

func TestSetAnswerOverridesPieces(t *testing.T) {
	s := New(Options{})
	s.SetAnswer("Your key is AKIA", "IOSFODNN7EXAMPLE, done.")
	require.Equal(t, []string{"Your key is AKIA", "IOSFODNN7EXAMPLE, done."}, s.answer("m"))
	s.SetAnswer()
	require.Equal(t, answerPieces("m", defaultChunks), s.answer("m"))
}
