package mockllm

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// streamCases are one streamed request per streaming endpoint, with the name of the first
// content event (empty for OpenAI's unnamed events) and how many events come before it.
var streamCases = []struct {
	name    string
	path    string
	hdr     func() map[string]string
	body    string
	leading int // events before the first content chunk
}{
	{"chat", "/v1/chat/completions", openAIHeaders, `{"model":"gpt-4o","stream":true,"messages":[]}`, 1},
	{"completions", "/v1/completions", openAIHeaders, `{"model":"gpt-4o","stream":true,"prompt":"x"}`, 0},
	{"responses", "/v1/responses", openAIHeaders, `{"model":"gpt-4o","stream":true,"input":"x"}`, 4},
	{"messages", "/v1/messages", anthropicHeaders, `{"model":"claude","max_tokens":5,"stream":true,"messages":[]}`, 3},
}

func streamRequest(t *testing.T, ctx context.Context, url, path string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	return resp
}

// TestStreamIsIncrementalAndStopsOnCancel proves two things without measuring time. With a
// Cadence of an hour, the first content chunk can only reach the client if the mock flushes
// it before pausing; and once the client cancels, the paused handler must return.
func TestStreamIsIncrementalAndStopsOnCancel(t *testing.T) {
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			o := keyedOptions()
			o.Cadence = time.Hour
			// A logger wraps the ResponseWriter; flushing must still reach the connection.
			o.Logger = slog.New(slog.DiscardHandler)
			s := New(o)
			ts, returned := trackedServer(t, s)

			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			resp := streamRequest(t, ctx, ts.URL, tc.path, tc.hdr(), tc.body)
			defer resp.Body.Close()

			br := bufio.NewReader(resp.Body)
			for range tc.leading + 1 {
				_, err := nextEvent(br)
				require.NoError(t, err)
			}
			select {
			case <-returned:
				t.Fatal("handler finished although it should be pausing before chunk 2")
			default:
			}

			cancel()
			requireReturned(t, returned)
		})
	}
}

// TestStreamEventByEvent reads a paced stream one event at a time, as a client would.
func TestStreamEventByEvent(t *testing.T) {
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			o := keyedOptions()
			o.Cadence = time.Millisecond
			o.Chunks = 4
			ts, returned := trackedServer(t, New(o))

			resp := streamRequest(t, t.Context(), ts.URL, tc.path, tc.hdr(), tc.body)
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			var events []sseEvent
			for {
				ev, err := nextEvent(br)
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				events = append(events, ev)
			}
			deltas := 0
			for _, ev := range events {
				switch {
				case ev.name == "content_block_delta", ev.name == "response.output_text.delta":
					deltas++
				case ev.name == "" && ev.data != "[DONE]" &&
					!strings.Contains(ev.data, `"finish_reason":"stop"`) && !strings.Contains(ev.data, `"role":"assistant"`):
					deltas++
				}
			}
			require.Equal(t, 4, deltas)
			requireReturned(t, returned)
		})
	}
}

func TestLatencyStopsOnCancel(t *testing.T) {
	o := keyedOptions()
	o.Latency = time.Hour
	o.Record = true
	s := New(o)
	ts, returned := trackedServer(t, s)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/models", nil)
		if err == nil {
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		errc <- err
	}()
	// The request is recorded once its body has been read, just before the Latency pause.
	require.Eventually(t, func() bool { return len(s.Requests()) == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	require.Error(t, <-errc)
	requireReturned(t, returned)
}
