package mockllm

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// toolUseBlock is an Anthropic tool_use content block.
type toolUseBlock struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

type inputJSONDelta struct {
	Type        string `json:"type"`
	PartialJSON string `json:"partial_json"`
}

type toolDeltaEvent struct {
	Type  string         `json:"type"`
	Index int            `json:"index"`
	Delta inputJSONDelta `json:"delta"`
}

// toolCall is the call the mock answers a request with: a tool name and its input.
type toolCall struct {
	name  string
	input json.RawMessage
}

// toolCallFor decides whether a Messages request is answered with a tool call, as a model
// that needs a tool would: the request has tools, its tool_choice is not none, and its last
// message is not a turn of tool results (which gets the text answer, as a model reading the
// results would give). The tool is the one tool_choice names, else the first; its input sets
// every required property of the tool's input_schema to "mock".
func toolCallFor(f fields) (toolCall, bool) {
	var tools []struct {
		Name        string `json:"name"`
		InputSchema struct {
			Required []string `json:"required"`
		} `json:"input_schema"`
	}
	raw, ok := f.raw("tools")
	if !ok || json.Unmarshal(raw, &tools) != nil || len(tools) == 0 {
		return toolCall{}, false
	}
	var choice struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if raw, ok := f.raw("tool_choice"); ok && json.Unmarshal(raw, &choice) != nil || choice.Type == "none" {
		return toolCall{}, false
	}
	var msgs []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(f["messages"], &msgs) == nil && len(msgs) > 0 {
		var blocks []struct {
			Type string `json:"type"`
		}
		if last := msgs[len(msgs)-1]; last.Role == "user" && json.Unmarshal(last.Content, &blocks) == nil {
			for _, b := range blocks {
				if b.Type == "tool_result" {
					return toolCall{}, false
				}
			}
		}
	}
	t := tools[0]
	if choice.Type == "tool" {
		for _, c := range tools {
			if c.Name == choice.Name {
				t = c
			}
		}
	}
	in := map[string]string{}
	for _, p := range t.InputSchema.Required {
		in[p] = "mock"
	}
	input, _ := json.Marshal(in)
	return toolCall{name: t.Name, input: input}, true
}

// toolUse answers a Messages request with a tool call: a message whose one content block is
// tool_use and whose stop_reason is tool_use. Streamed, the input arrives in two
// input_json_delta events, as real streams cut it.
func (s *Server) toolUse(w http.ResponseWriter, r *http.Request, msg anthropicMessage, call toolCall, stream bool, outTokens int) {
	id := fmt.Sprintf("toolu_mock_%d", s.nextID())
	toolUse := "tool_use"
	msg.StopReason = &toolUse
	msg.Content = []any{toolUseBlock{Type: "tool_use", ID: id, Name: call.name, Input: call.input}}
	msg.Usage.OutputTokens = outTokens
	if !stream {
		writeJSON(w, http.StatusOK, msg)
		return
	}
	start := msg
	start.Content = []any{}
	start.StopReason = nil
	start.Usage.OutputTokens = 1
	half := len(call.input) / 2
	sse := startSSE(w, r, s.opts.Cadence)
	if !sse.event("message_start", messageStart{Type: "message_start", Message: start}) ||
		!sse.event("content_block_start", struct {
			Type         string       `json:"type"`
			Index        int          `json:"index"`
			ContentBlock toolUseBlock `json:"content_block"`
		}{"content_block_start", 0, toolUseBlock{Type: "tool_use", ID: id, Name: call.name, Input: json.RawMessage("{}")}}) ||
		!sse.event("ping", typeOnly{Type: "ping"}) {
		return
	}
	for i, part := range []string{string(call.input[:half]), string(call.input[half:])} {
		if i > 0 && !sse.pause() {
			return
		}
		if !sse.event("content_block_delta", toolDeltaEvent{Type: "content_block_delta", Delta: inputJSONDelta{Type: "input_json_delta", PartialJSON: part}}) {
			return
		}
	}
	var md messageDelta
	md.Type = "message_delta"
	md.Delta.StopReason = toolUse
	md.Usage.OutputTokens = outTokens
	if !sse.pause() ||
		!sse.event("content_block_stop", blockStop{Type: "content_block_stop"}) ||
		!sse.event("message_delta", md) {
		return
	}
	sse.event("message_stop", typeOnly{Type: "message_stop"})
}
