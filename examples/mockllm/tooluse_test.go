package mockllm

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const toolsBody = `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"weather?"}%s],
	"tools":[{"name":"now","input_schema":{"type":"object"}},
	{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string"}},"required":["city","unit"]}}]%s}`

// TestMessagesToolUse: a request with tools is answered with a call of the named (else the
// first) tool whose required properties are "mock"; tool_choice none, and a turn of tool
// results, get the text answer.
func TestMessagesToolUse(t *testing.T) {
	tests := []struct {
		name, turns, extra string
		tool, input        string // "" when the answer is text
	}{
		{"first tool", "", "", "now", `{}`},
		{"named tool", "", `,"tool_choice":{"type":"tool","name":"get_weather"}`, "get_weather", `{"city":"mock","unit":"mock"}`},
		{"tool_choice none", "", `,"tool_choice":{"type":"none"}`, "", ""},
		{"after tool results", `,{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"now","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"noon"}]}`, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(keyedOptions())
			body := strings.Replace(strings.Replace(toolsBody, "%s", tc.turns, 1), "%s", tc.extra, 1)
			w := do(s, http.MethodPost, "/v1/messages", anthropicHeaders(), body)
			require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
			m := decode(t, w.Body.Bytes())
			block := m["content"].([]any)[0].(map[string]any)
			if tc.tool == "" {
				require.Equal(t, "text", block["type"])
				require.Equal(t, "end_turn", m["stop_reason"])
				return
			}
			require.Equal(t, "tool_use", m["stop_reason"])
			require.Equal(t, "tool_use", block["type"])
			require.Equal(t, tc.tool, block["name"])
			require.True(t, strings.HasPrefix(block["id"].(string), "toolu_mock_"))
			in, err := jsonString(block["input"])
			require.NoError(t, err)
			require.JSONEq(t, tc.input, in)
			require.EqualValues(t, defaultChunks, m["usage"].(map[string]any)["output_tokens"])
		})
	}
}

// TestMessagesToolUseStream: streamed, the call is a tool_use block whose input arrives in
// input_json_delta pieces that join to the input, then message_delta with stop_reason tool_use.
func TestMessagesToolUseStream(t *testing.T) {
	s := newTestServer(keyedOptions())
	body := strings.Replace(strings.Replace(toolsBody, "%s", "", 1), "%s", `,"stream":true,"tool_choice":{"type":"tool","name":"get_weather"}`, 1)
	w := do(s, http.MethodPost, "/v1/messages", anthropicHeaders(), body)
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	var names []string
	var input strings.Builder
	for _, ev := range readEvents(t, w.Body) {
		names = append(names, ev.name)
		m := decode(t, []byte(ev.data))
		switch ev.name {
		case "content_block_start":
			cb := m["content_block"].(map[string]any)
			require.Equal(t, "tool_use", cb["type"])
			require.Equal(t, "get_weather", cb["name"])
			require.Equal(t, map[string]any{}, cb["input"])
		case "content_block_delta":
			d := m["delta"].(map[string]any)
			require.Equal(t, "input_json_delta", d["type"])
			input.WriteString(d["partial_json"].(string))
		case "message_delta":
			require.Equal(t, "tool_use", m["delta"].(map[string]any)["stop_reason"])
		}
	}
	require.Equal(t, []string{"message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}, names)
	require.JSONEq(t, `{"city":"mock","unit":"mock"}`, input.String())
}

// jsonString re-encodes a decoded JSON value.
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
