package mockllm

import (
	"fmt"
	"net/http"
	"strings"
)

type anthropicMessage struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []any          `json:"content"` // anthropicBlock or toolUseBlock
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        anthropicUsage `json:"usage"`
}

type anthropicBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

type messageStart struct {
	Type    string           `json:"type"`
	Message anthropicMessage `json:"message"`
}

type blockStart struct {
	Type         string         `json:"type"`
	Index        int            `json:"index"`
	ContentBlock anthropicBlock `json:"content_block"`
}

type blockDelta struct {
	Type  string    `json:"type"`
	Index int       `json:"index"`
	Delta textDelta `json:"delta"`
}

type textDelta struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type blockStop struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
}

type messageDelta struct {
	Type  string `json:"type"`
	Delta struct {
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	} `json:"delta"`
	Usage struct {
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

type typeOnly struct {
	Type string `json:"type"`
}

// messages serves POST /v1/messages (Anthropic). A stream is message_start (input tokens and
// output_tokens 1), content_block_start, ping, one content_block_delta per chunk,
// content_block_stop, message_delta (cumulative output tokens) and message_stop. A request
// with tools is answered with a tool call instead (see toolCallFor).
func (s *Server) messages(w http.ResponseWriter, r *http.Request, body []byte) {
	if !s.anthropicAuthorized(w, r) {
		return
	}
	if r.Header.Get("Anthropic-Version") == "" {
		writeError(w, dialectAnthropic, http.StatusBadRequest, errNoVersion)
		return
	}
	f, ok := parseJSON(w, r, dialectAnthropic, body)
	if !ok {
		return
	}
	model, fe := f.str("model")
	if fe != fieldOK {
		writeError(w, dialectAnthropic, http.StatusBadRequest, anthropicFieldError("model", fe, "a valid string"))
		return
	}
	if maxTokens, fe := f.integer("max_tokens"); fe != fieldOK {
		writeError(w, dialectAnthropic, http.StatusBadRequest, anthropicFieldError("max_tokens", fe, "a valid integer"))
		return
	} else if maxTokens < 1 {
		writeError(w, dialectAnthropic, http.StatusBadRequest,
			errParam("max_tokens", "max_tokens: Input should be greater than or equal to 1"))
		return
	}
	if _, fe := f.array("messages"); fe != fieldOK {
		writeError(w, dialectAnthropic, http.StatusBadRequest, anthropicFieldError("messages", fe, "a valid list"))
		return
	}
	stream, fe := f.boolean("stream")
	if fe == fieldWrongType {
		writeError(w, dialectAnthropic, http.StatusBadRequest, anthropicFieldError("stream", fe, "a valid boolean"))
		return
	}

	pieces := s.answer(model)
	in := tokensFor(contentChars(f["system"]) + messagesChars(f["messages"]))
	endTurn := "end_turn"
	msg := anthropicMessage{
		ID: fmt.Sprintf("msg_mock_%d", s.nextID()), Type: "message", Role: "assistant", Model: model,
		Content:    []any{anthropicBlock{Type: "text", Text: strings.Join(pieces, "")}},
		StopReason: &endTurn,
		Usage:      anthropicUsage{InputTokens: in, OutputTokens: len(pieces)},
	}
	if call, ok := toolCallFor(f); ok {
		s.toolUse(w, r, msg, call, stream, len(pieces))
		return
	}
	if !stream {
		writeJSON(w, http.StatusOK, msg)
		return
	}

	start := msg
	start.Content = []any{}
	start.StopReason = nil
	start.Usage.OutputTokens = 1
	sse := startSSE(w, r, s.opts.Cadence)
	if !sse.event("message_start", messageStart{Type: "message_start", Message: start}) ||
		!sse.event("content_block_start", blockStart{Type: "content_block_start", ContentBlock: anthropicBlock{Type: "text"}}) ||
		!sse.event("ping", typeOnly{Type: "ping"}) {
		return
	}
	for i, p := range pieces {
		if i > 0 && !sse.pause() {
			return
		}
		if !sse.event("content_block_delta", blockDelta{Type: "content_block_delta", Delta: textDelta{Type: "text_delta", Text: p}}) {
			return
		}
	}
	var md messageDelta
	md.Type = "message_delta"
	md.Delta.StopReason = endTurn
	md.Usage.OutputTokens = len(pieces)
	if !sse.pause() ||
		!sse.event("content_block_stop", blockStop{Type: "content_block_stop"}) ||
		!sse.event("message_delta", md) {
		return
	}
	sse.event("message_stop", typeOnly{Type: "message_stop"})
}
