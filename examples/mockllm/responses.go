package mockllm

import (
	"fmt"
	"net/http"
	"strings"
)

type responseObject struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	CreatedAt         int64           `json:"created_at"`
	Status            string          `json:"status"`
	Error             *struct{}       `json:"error"`
	IncompleteDetails *struct{}       `json:"incomplete_details"`
	Model             string          `json:"model"`
	Output            []responseItem  `json:"output"`
	Usage             *responsesUsage `json:"usage"` // null until the response is complete
}

type responseItem struct {
	Type    string       `json:"type"`
	ID      string       `json:"id"`
	Status  string       `json:"status"`
	Role    string       `json:"role"`
	Content []outputText `json:"content"`
}

type outputText struct {
	Type        string         `json:"type"`
	Text        string         `json:"text"`
	Annotations []any          `json:"annotations"`
	Logprobs    []tokenLogprob `json:"logprobs,omitempty"`
}

// tokenLogprob is one token's log probability, as the Responses API reports it when asked
// (include: message.output_text.logprobs). The mock sends them unasked after SetLogprobs.
type tokenLogprob struct {
	Token       string         `json:"token"`
	Logprob     float64        `json:"logprob"`
	Bytes       []byte         `json:"bytes"`
	TopLogprobs []tokenLogprob `json:"top_logprobs"`
}

// logprobsOf returns one logprob per piece.
func logprobsOf(pieces ...string) []tokenLogprob {
	out := make([]tokenLogprob, 0, len(pieces))
	for _, p := range pieces {
		out = append(out, tokenLogprob{Token: p, Logprob: -0.01, Bytes: []byte(p),
			TopLogprobs: []tokenLogprob{{Token: p, Logprob: -0.01, Bytes: []byte(p), TopLogprobs: []tokenLogprob{}}}})
	}
	return out
}

type responsesUsage struct {
	InputTokens         int           `json:"input_tokens"`
	InputTokensDetails  cachedDetails `json:"input_tokens_details"`
	OutputTokens        int           `json:"output_tokens"`
	OutputTokensDetails reasonDetails `json:"output_tokens_details"`
	TotalTokens         int           `json:"total_tokens"`
}

// responsesEvent is every Responses streaming event; each kind sets its own fields.
type responsesEvent struct {
	Type           string          `json:"type"`
	SequenceNumber int             `json:"sequence_number"`
	Response       *responseObject `json:"response,omitempty"`
	OutputIndex    *int            `json:"output_index,omitempty"`
	ItemID         string          `json:"item_id,omitempty"`
	ContentIndex   *int            `json:"content_index,omitempty"`
	Item           *responseItem   `json:"item,omitempty"`
	Part           *outputText     `json:"part,omitempty"`
	Delta          *string         `json:"delta,omitempty"`
	Text           *string         `json:"text,omitempty"`
	Logprobs       []tokenLogprob  `json:"logprobs,omitempty"`
}

// responses serves POST /v1/responses (the OpenAI Responses API). A stream is the sequence a
// single text answer produces: response.created, response.in_progress,
// response.output_item.added, response.content_part.added, one response.output_text.delta per
// chunk, response.output_text.done, response.content_part.done, response.output_item.done and
// response.completed, which alone carries the usage. There is no [DONE] terminator.
func (s *Server) responses(w http.ResponseWriter, r *http.Request, body []byte) {
	if !s.openAIAuthorized(w, r) {
		return
	}
	f, ok := parseJSON(w, r, dialectOpenAI, body)
	if !ok {
		return
	}
	model, fe := f.str("model")
	if fe != fieldOK {
		writeError(w, dialectOpenAI, http.StatusBadRequest, openAIFieldError("model", fe, "a string"))
		return
	}
	stream, fe := f.boolean("stream")
	if fe == fieldWrongType {
		writeError(w, dialectOpenAI, http.StatusBadRequest, openAIFieldError("stream", fe, "a boolean"))
		return
	}
	pieces := s.answer(model)
	text := strings.Join(pieces, "")
	in := tokensFor(contentChars(f["instructions"]) + messagesChars(f["input"]))
	usage := &responsesUsage{InputTokens: in, OutputTokens: len(pieces), TotalTokens: in + len(pieces)}
	n := s.nextID()
	resp := responseObject{
		ID: fmt.Sprintf("resp_mock_%d", n), Object: "response", CreatedAt: s.now().Unix(),
		Status: "completed", Model: model, Usage: usage,
		Output: []responseItem{messageItem(fmt.Sprintf("msg_mock_%d", n), "completed", text)},
	}
	withLogprobs := s.logprobs()
	if withLogprobs {
		resp.Output[0].Content[0].Logprobs = logprobsOf(pieces...)
	}

	if !stream {
		writeJSON(w, http.StatusOK, resp)
		return
	}

	sse := startSSE(w, r, s.opts.Cadence)
	seq := 0
	send := func(e responsesEvent) bool {
		e.SequenceNumber = seq
		seq++
		return sse.event(e.Type, e)
	}
	itemID := resp.Output[0].ID
	zero := 0
	pending := resp
	pending.Status = "in_progress"
	pending.Usage = nil
	pending.Output = []responseItem{}
	started := messageItem(itemID, "in_progress", "")
	started.Content = []outputText{}
	for _, e := range []responsesEvent{
		{Type: "response.created", Response: &pending},
		{Type: "response.in_progress", Response: &pending},
		{Type: "response.output_item.added", OutputIndex: &zero, Item: &started},
		{Type: "response.content_part.added", ItemID: itemID, OutputIndex: &zero, ContentIndex: &zero,
			Part: &outputText{Type: "output_text", Text: "", Annotations: []any{}}},
	} {
		if !send(e) {
			return
		}
	}
	for i, p := range pieces {
		if i > 0 && !sse.pause() {
			return
		}
		ev := responsesEvent{Type: "response.output_text.delta", ItemID: itemID, OutputIndex: &zero,
			ContentIndex: &zero, Delta: &p}
		if withLogprobs {
			ev.Logprobs = logprobsOf(p)
		}
		if !send(ev) {
			return
		}
	}
	if !sse.pause() {
		return
	}
	done := resp.Output[0]
	for _, e := range []responsesEvent{
		{Type: "response.output_text.done", ItemID: itemID, OutputIndex: &zero, ContentIndex: &zero, Text: &text,
			Logprobs: done.Content[0].Logprobs},
		{Type: "response.content_part.done", ItemID: itemID, OutputIndex: &zero, ContentIndex: &zero,
			Part: &done.Content[0]},
		{Type: "response.output_item.done", OutputIndex: &zero, Item: &done},
		{Type: "response.completed", Response: &resp},
	} {
		if !send(e) {
			return
		}
	}
}

func messageItem(id, status, text string) responseItem {
	return responseItem{
		Type: "message", ID: id, Status: status, Role: "assistant",
		Content: []outputText{{Type: "output_text", Text: text, Annotations: []any{}}},
	}
}
