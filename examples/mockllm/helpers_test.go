package mockllm

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Fake keys only; they must never show up in a response body or a log line.
const (
	testOpenAIKey    = "sk-test-openai-do-not-echo-1234"
	testAnthropicKey = "sk-ant-test-do-not-echo-5678"
)

// fixedNow keeps "created" fields stable.
var fixedNow = time.Unix(1_750_000_000, 0)

func newTestServer(o Options) *Server {
	s := New(o)
	s.now = func() time.Time { return fixedNow }
	return s
}

func keyedOptions() Options {
	return Options{OpenAIKey: testOpenAIKey, AnthropicKey: testAnthropicKey}
}

// openAIHeaders and anthropicHeaders are what a well-behaved gateway sends upstream.
func openAIHeaders() map[string]string {
	return map[string]string{"Authorization": "Bearer " + testOpenAIKey, "Content-Type": "application/json"}
}

func anthropicHeaders() map[string]string {
	return map[string]string{
		"X-Api-Key": testAnthropicKey, "Anthropic-Version": "2023-06-01", "Content-Type": "application/json",
	}
}

func newRequest(method, path string, hdr map[string]string, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return r
}

// do serves one request in-process.
func do(h http.Handler, method, path string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, newRequest(method, path, hdr, body))
	return w
}

// decode parses a JSON response body into a generic map.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "body: %s", b)
	return m
}

// requireOpenAIError checks the OpenAI error shape and returns the error object.
func requireOpenAIError(t *testing.T, w *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, w.Code, "body: %s", w.Body)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	m := decode(t, w.Body.Bytes())
	e, ok := m["error"].(map[string]any)
	require.True(t, ok, "no error object: %s", w.Body)
	for _, k := range []string{"message", "type", "param", "code"} {
		require.Contains(t, e, k)
	}
	require.IsType(t, "", e["message"])
	require.IsType(t, "", e["type"])
	return e
}

// requireAnthropicError checks the Anthropic error shape and returns the error object.
func requireAnthropicError(t *testing.T, w *httptest.ResponseRecorder, status int, typ string) map[string]any {
	t.Helper()
	require.Equal(t, status, w.Code, "body: %s", w.Body)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	m := decode(t, w.Body.Bytes())
	require.Equal(t, "error", m["type"])
	e, ok := m["error"].(map[string]any)
	require.True(t, ok, "no error object: %s", w.Body)
	require.Equal(t, typ, e["type"])
	require.IsType(t, "", e["message"])
	return e
}

type sseEvent struct {
	name string // empty for OpenAI chat and completions events
	data string
}

// nextEvent reads one SSE event, strictly in the form the mock writes:
// optional "event: X\n", then "data: Y\n", then a blank line.
func nextEvent(br *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	line, err := br.ReadString('\n')
	if err != nil {
		return ev, err
	}
	if name, ok := strings.CutPrefix(line, "event: "); ok {
		ev.name = strings.TrimSuffix(name, "\n")
		if line, err = br.ReadString('\n'); err != nil {
			return ev, err
		}
	}
	data, ok := strings.CutPrefix(line, "data: ")
	if !ok {
		return ev, errors.New("expected a data line, got " + line)
	}
	ev.data = strings.TrimSuffix(data, "\n")
	if blank, err := br.ReadString('\n'); err != nil || blank != "\n" {
		return ev, errors.New("expected a blank line after data")
	}
	return ev, nil
}

// readEvents reads every event of a complete stream.
func readEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	br := bufio.NewReader(r)
	var out []sseEvent
	for {
		ev, err := nextEvent(br)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, ev)
	}
}

// trackedServer runs s on a real loopback listener and reports each finished handler on the
// returned channel, so tests can prove that a handler returned.
func trackedServer(t *testing.T, s *Server) (*httptest.Server, <-chan string) {
	t.Helper()
	returned := make(chan string, 64)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- r.URL.Path }()
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts, returned
}

// requireReturned fails unless a handler finishes within a generous deadline. This is a hang
// guard, not a timing assertion.
func requireReturned(t *testing.T, returned <-chan string) {
	t.Helper()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not return after the client went away")
	}
}
