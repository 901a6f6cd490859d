package mockllm

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// "Be brief." (9) and "hello there" (11): ceil(20/4) = 5 input tokens.
const responsesBody = `{"model":"gpt-4o","instructions":"Be brief.","input":[{"role":"user","content":[{"type":"input_text","text":"hello there"}]}]`

func TestResponsesNonStream(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		input float64
	}{
		{"item list", responsesBody + `}`, 5},
		{"string input", `{"model":"gpt-4o","input":"hello there"}`, 3},
		{"no input", `{"model":"gpt-4o"}`, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(keyedOptions())
			w := do(s, http.MethodPost, "/v1/responses", openAIHeaders(), tc.body)
			require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			require.Equal(t, strconv.Itoa(w.Body.Len()), w.Header().Get("Content-Length"))
			m := decode(t, w.Body.Bytes())
			require.Equal(t, "resp_mock_1", m["id"])
			require.Equal(t, "response", m["object"])
			require.Equal(t, "completed", m["status"])
			require.Equal(t, "gpt-4o", m["model"])
			out := m["output"].([]any)
			require.Len(t, out, 1)
			item := out[0].(map[string]any)
			require.Equal(t, "message", item["type"])
			require.Equal(t, "assistant", item["role"])
			content := item["content"].([]any)[0].(map[string]any)
			require.Equal(t, "output_text", content["type"])
			require.Equal(t, "This is a mock response from gpt-4o.", content["text"])
			u := m["usage"].(map[string]any)
			require.Equal(t, tc.input, u["input_tokens"])
			require.EqualValues(t, 5, u["output_tokens"])
			require.Equal(t, tc.input+5, u["total_tokens"])
		})
	}
}

func TestResponsesStream(t *testing.T) {
	o := keyedOptions()
	o.Chunks = 3
	s := newTestServer(o)
	w := do(s, http.MethodPost, "/v1/responses", openAIHeaders(), responsesBody+`,"stream":true}`)
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	require.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
	events := readEvents(t, w.Body)

	var names []string
	var text strings.Builder
	for i, ev := range events {
		names = append(names, ev.name)
		m := decode(t, []byte(ev.data))
		require.Equal(t, ev.name, m["type"], "the event line names the data's type")
		require.EqualValues(t, i, m["sequence_number"])
		if ev.name == "response.output_text.delta" {
			text.WriteString(m["delta"].(string))
		}
		if ev.name == "response.created" || ev.name == "response.in_progress" {
			resp := m["response"].(map[string]any)
			require.Equal(t, "in_progress", resp["status"])
			require.Nil(t, resp["usage"])
		}
	}
	require.Equal(t, []string{
		"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.completed",
	}, names)
	require.Equal(t, "This is a mock response from gpt-4o.", text.String())

	last := decode(t, []byte(events[len(events)-1].data))
	resp := last["response"].(map[string]any)
	require.Equal(t, "completed", resp["status"])
	require.Equal(t, "gpt-4o", resp["model"])
	require.Equal(t, map[string]any{
		"input_tokens": 5.0, "input_tokens_details": map[string]any{"cached_tokens": 0.0},
		"output_tokens": 3.0, "output_tokens_details": map[string]any{"reasoning_tokens": 0.0},
		"total_tokens": 8.0,
	}, resp["usage"])
	require.NotContains(t, w.Body.String(), "[DONE]")
}

// TestResponsesLogprobsUnasked: after SetLogprobs every text delta carries its token's log
// probability, and the done event, part and item carry all of them; none by default.
func TestResponsesLogprobsUnasked(t *testing.T) {
	o := keyedOptions()
	o.Chunks = 3
	s := newTestServer(o)
	w := do(s, http.MethodPost, "/v1/responses", openAIHeaders(), responsesBody+`,"stream":true}`)
	require.NotContains(t, w.Body.String(), "logprobs")

	s.SetLogprobs(true)
	w = do(s, http.MethodPost, "/v1/responses", openAIHeaders(), responsesBody+`,"stream":true}`)
	for _, ev := range readEvents(t, w.Body) {
		m := decode(t, []byte(ev.data))
		switch ev.name {
		case "response.output_text.delta":
			lp := m["logprobs"].([]any)
			require.Len(t, lp, 1)
			require.Equal(t, m["delta"], lp[0].(map[string]any)["token"])
		case "response.output_text.done":
			require.Len(t, m["logprobs"].([]any), 3)
		}
	}
	w = do(s, http.MethodPost, "/v1/responses", openAIHeaders(), responsesBody+`}`)
	out := decode(t, w.Body.Bytes())["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)
	require.Len(t, out["logprobs"].([]any), 3)
}
