package mockllm

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// "Be brief." (9) + "hello there" (11) + "more" (4): ceil(24/4) = 6 input tokens.
const messagesBody = `{"model":"claude-sonnet-4-5","max_tokens":1024,"system":"Be brief.","messages":[
	{"role":"user","content":"hello there"},
	{"role":"assistant","content":[{"type":"text","text":"more"}]}]`

func TestMessagesNonStream(t *testing.T) {
	o := keyedOptions()
	o.Chunks = 4
	s := newTestServer(o)
	w := do(s, http.MethodPost, "/v1/messages", anthropicHeaders(), messagesBody+"}")
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.Equal(t, strconv.Itoa(w.Body.Len()), w.Header().Get("Content-Length"))
	require.JSONEq(t, `{
		"id":"msg_mock_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
		"content":[{"type":"text","text":"This is a mock response from claude-sonnet-4-5."}],
		"stop_reason":"end_turn","stop_sequence":null,
		"usage":{"input_tokens":6,"output_tokens":4,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}
	}`, w.Body.String())
}

func TestMessagesStream(t *testing.T) {
	tests := []struct {
		name   string
		chunks int
	}{
		{"default chunks", 0},
		{"two chunks", 2},
		{"padded answer", 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := keyedOptions()
			o.Chunks = tc.chunks
			s := newTestServer(o)
			chunks := s.opts.Chunks
			w := do(s, http.MethodPost, "/v1/messages", anthropicHeaders(), messagesBody+`,"stream":true}`)
			require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
			require.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
			require.Equal(t, "no-cache", w.Header().Get("Cache-Control"))
			events := readEvents(t, w.Body)

			want := []string{"message_start", "content_block_start", "ping"}
			for range chunks {
				want = append(want, "content_block_delta")
			}
			want = append(want, "content_block_stop", "message_delta", "message_stop")
			var names []string
			var text strings.Builder
			for _, ev := range events {
				names = append(names, ev.name)
				m := decode(t, []byte(ev.data))
				require.Equal(t, ev.name, m["type"], "the event line names the data's type")
				if ev.name == "content_block_delta" {
					d := m["delta"].(map[string]any)
					require.Equal(t, "text_delta", d["type"])
					require.NotEmpty(t, d["text"])
					text.WriteString(d["text"].(string))
				}
			}
			require.Equal(t, want, names)
			require.Equal(t, strings.Join(answerPieces("claude-sonnet-4-5", chunks), ""), text.String())

			start := decode(t, []byte(events[0].data))["message"].(map[string]any)
			require.Equal(t, "msg_mock_1", start["id"])
			require.Equal(t, "claude-sonnet-4-5", start["model"])
			require.Empty(t, start["content"])
			require.Nil(t, start["stop_reason"])
			require.Equal(t, map[string]any{
				"input_tokens": 6.0, "output_tokens": 1.0,
				"cache_creation_input_tokens": 0.0, "cache_read_input_tokens": 0.0,
			}, start["usage"])

			// message_delta carries the cumulative output count, not an increment.
			require.JSONEq(t,
				`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":`+strconv.Itoa(chunks)+`}}`,
				events[len(events)-2].data)
			require.JSONEq(t, `{"type":"message_stop"}`, events[len(events)-1].data)
		})
	}
}
