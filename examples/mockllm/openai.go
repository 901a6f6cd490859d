package mockllm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// systemFingerprint is constant so that responses are reproducible.
const systemFingerprint = "fp_mockllm"

// openAIUsage is the Chat and legacy Completions usage object.
type openAIUsage struct {
	PromptTokens            int            `json:"prompt_tokens"`
	CompletionTokens        int            `json:"completion_tokens"`
	TotalTokens             int            `json:"total_tokens"`
	PromptTokensDetails     *cachedDetails `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *reasonDetails `json:"completion_tokens_details,omitempty"`
}

type cachedDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type reasonDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

func newOpenAIUsage(prompt, completion int, details bool) openAIUsage {
	u := openAIUsage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
	if details {
		u.PromptTokensDetails = &cachedDetails{}
		u.CompletionTokensDetails = &reasonDetails{}
	}
	return u
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             openAIUsage  `json:"usage"`
	SystemFingerprint string       `json:"system_fingerprint"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Logprobs     *struct{}   `json:"logprobs"`
	FinishReason string      `json:"finish_reason"`
}

type chatMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	// Usage is absent without include_usage, null on every chunk but the last with it.
	Usage json.RawMessage `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chunkDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

var jsonNull = json.RawMessage("null")

// chatCompletions serves POST /v1/chat/completions.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request, body []byte) {
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
	if _, fe := f.array("messages"); fe != fieldOK {
		writeError(w, dialectOpenAI, http.StatusBadRequest, openAIFieldError("messages", fe, "an array"))
		return
	}
	stream, includeUsage, ae := streamOptions(f)
	if ae != nil {
		writeError(w, dialectOpenAI, http.StatusBadRequest, *ae)
		return
	}
	pieces := s.answer(model)
	usage := newOpenAIUsage(tokensFor(messagesChars(f["messages"])), len(pieces), true)
	id := fmt.Sprintf("chatcmpl-mock-%d", s.nextID())
	created := s.now().Unix()

	if !stream {
		writeJSON(w, http.StatusOK, chatCompletion{
			ID: id, Object: "chat.completion", Created: created, Model: model,
			Choices: []chatChoice{{
				Message:      chatMessage{Role: "assistant", Content: strings.Join(pieces, "")},
				FinishReason: "stop",
			}},
			Usage:             usage,
			SystemFingerprint: systemFingerprint,
		})
		return
	}

	chunk := func(d chunkDelta, finish *string) chatChunk {
		c := chatChunk{
			ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
			SystemFingerprint: systemFingerprint,
			Choices:           []chunkChoice{{Delta: d, FinishReason: finish}},
		}
		if includeUsage {
			c.Usage = jsonNull
		}
		return c
	}
	sse := startSSE(w, r, s.opts.Cadence)
	empty := ""
	if !sse.event("", chunk(chunkDelta{Role: "assistant", Content: &empty}, nil)) {
		return
	}
	for i, p := range pieces {
		if i > 0 && !sse.pause() {
			return
		}
		if !sse.event("", chunk(chunkDelta{Content: &p}, nil)) {
			return
		}
	}
	stop := "stop"
	if !sse.pause() || !sse.event("", chunk(chunkDelta{}, &stop)) {
		return
	}
	if includeUsage {
		u, _ := json.Marshal(usage)
		final := chunk(chunkDelta{}, nil)
		final.Choices = []chunkChoice{}
		final.Usage = u
		if !sse.event("", final) {
			return
		}
	}
	sse.done()
}

type textCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []textChoice `json:"choices"`
	// Usage is an openAIUsage on the non-streamed answer and the usage chunk, null on other
	// chunks with include_usage, absent without it.
	Usage json.RawMessage `json:"usage,omitempty"`
}

type textChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

// completions serves the legacy POST /v1/completions.
func (s *Server) completions(w http.ResponseWriter, r *http.Request, body []byte) {
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
	stream, includeUsage, ae := streamOptions(f)
	if ae != nil {
		writeError(w, dialectOpenAI, http.StatusBadRequest, *ae)
		return
	}
	pieces := s.answer(model)
	usage, _ := json.Marshal(newOpenAIUsage(tokensFor(contentChars(f["prompt"])), len(pieces), false))
	id := fmt.Sprintf("cmpl-mock-%d", s.nextID())
	created := s.now().Unix()
	stop := "stop"
	obj := func(text string, finish *string) textCompletion {
		return textCompletion{
			ID: id, Object: "text_completion", Created: created, Model: model,
			SystemFingerprint: systemFingerprint,
			Choices:           []textChoice{{Text: text, FinishReason: finish}},
		}
	}

	if !stream {
		c := obj(strings.Join(pieces, ""), &stop)
		c.Usage = usage
		writeJSON(w, http.StatusOK, c)
		return
	}

	chunk := func(text string, finish *string) textCompletion {
		c := obj(text, finish)
		if includeUsage {
			c.Usage = jsonNull
		}
		return c
	}
	sse := startSSE(w, r, s.opts.Cadence)
	for i, p := range pieces {
		if i > 0 && !sse.pause() {
			return
		}
		if !sse.event("", chunk(p, nil)) {
			return
		}
	}
	if !sse.pause() || !sse.event("", chunk("", &stop)) {
		return
	}
	if includeUsage {
		final := obj("", nil)
		final.Choices = []textChoice{}
		final.Usage = usage
		if !sse.event("", final) {
			return
		}
	}
	sse.done()
}

type modelList struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// mockModels are the ids GET /v1/models returns. The other endpoints accept any model id;
// this list is only what a client discovering models sees.
var mockModels = []string{"gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small"}

// modelsCreated is a fixed timestamp (2023-11-14) so that the list is reproducible.
const modelsCreated = 1700000000

// models serves GET /v1/models.
func (s *Server) models(w http.ResponseWriter, r *http.Request, _ []byte) {
	if !s.openAIAuthorized(w, r) {
		return
	}
	l := modelList{Object: "list", Data: make([]modelInfo, 0, len(mockModels))}
	for _, m := range mockModels {
		l.Data = append(l.Data, modelInfo{ID: m, Object: "model", Created: modelsCreated, OwnedBy: "mockllm"})
	}
	writeJSON(w, http.StatusOK, l)
}
