package translate

import (
	"strconv"
)

// RequestOptions adjust a request translation.
type RequestOptions struct {
	// MaxTokens is the output cap written when the client sets none, since Anthropic requires
	// one: the model's configured output cap, which the budget reserves.
	MaxTokens int64
}

// Request is a translated request body and what the response translation needs to know of
// the client's request.
type Request struct {
	Body []byte
	// Stream reports that the client asked for a stream.
	Stream bool
	// IncludeUsage reports stream_options.include_usage: the client wants the final usage
	// chunk, which the stream translation then emits. It is not sent: Anthropic streams
	// always report usage.
	IncludeUsage bool
}

// chatRequest collects the raw values of a chat completions request's top-level members.
type chatRequest struct {
	model, messages             []byte
	maxTokens                   []byte
	temperature, topP           []byte
	stop                        []byte
	stream                      []byte
	includeUsage                bool
	userID                      []byte
	tools, toolChoice, parallel []byte
}

// ChatToMessages translates an OpenAI Chat Completions request body into an Anthropic
// Messages request body (see the package documentation for the mapping). A field that cannot
// be translated faithfully is refused with a FieldError wrapping ErrUntranslatable, one of the
// wrong type or shape with ErrInvalidRequest; a body that is not one JSON object without
// duplicate keys is ErrInvalidJSON or ErrDuplicateKey. Nothing is ever left out silently.
func ChatToMessages(body []byte, o RequestOptions) (Request, error) {
	if err := check(body); err != nil {
		return Request{}, err
	}
	if !isObject(trimWS(body)) {
		return Request{}, invalid("(body)", "the body must be a JSON object")
	}
	var c chatRequest
	for _, m := range members(trimWS(body)) {
		if err := c.set(m); err != nil {
			return Request{}, err
		}
	}
	return c.build(o)
}

// noop lists members accepted only with their default value (or null), which the upstream
// also applies; any other value has no faithful equivalent and is refused with why.
var noop = map[string]struct {
	isDefault func(v []byte) bool
	why       string
}{
	"n":                 {func(v []byte) bool { n, ok := count(v); return ok && n == 1 }, "Anthropic returns one choice; only n 1 can be translated"},
	"logprobs":          {func(v []byte) bool { return string(v) == "false" }, "Anthropic reports no log probabilities"},
	"top_logprobs":      {func(v []byte) bool { n, ok := count(v); return ok && n == 0 }, "Anthropic reports no log probabilities"},
	"presence_penalty":  {zero, "Anthropic has no presence penalty; only 0 can be translated"},
	"frequency_penalty": {zero, "Anthropic has no frequency penalty; only 0 can be translated"},
	"logit_bias":        {emptyObject, "Anthropic has no logit bias"},
	"store":             {func(v []byte) bool { return string(v) == "false" }, "Anthropic does not store completions"},
	"metadata":          {emptyObject, "Anthropic metadata holds only user_id (send user)"},
	"service_tier":      {func(v []byte) bool { return strIs(v, "auto") }, "only service_tier auto can be translated"},
	"response_format": {func(v []byte) bool {
		if !isObject(v) {
			return false
		}
		ms := members(v)
		return len(ms) == 1 && ms[0].key == "type" && strIs(ms[0].val, "text")
	}, "only the text response format can be translated"},
	"modalities": {func(v []byte) bool {
		if !isArray(v) {
			return false
		}
		es := elements(v)
		return len(es) == 1 && strIs(es[0], "text")
	}, "Anthropic Messages answers in text only"},
}

func zero(v []byte) bool { f, ok := number(v); return ok && f == 0 }

// refused lists OpenAI members with no Anthropic equivalent: any value but null is refused.
var refused = map[string]string{
	"seed":               "Anthropic has no sampling seed",
	"audio":              "Anthropic Messages has no audio output",
	"prediction":         "Anthropic has no predicted outputs",
	"functions":          "the legacy functions field is not translated; use tools",
	"function_call":      "the legacy function_call field is not translated; use tool_choice",
	"reasoning_effort":   "reasoning effort has no faithful Anthropic equivalent",
	"verbosity":          "Anthropic has no verbosity setting",
	"web_search_options": "web search is not translated",
	"prompt_cache_key":   "Anthropic has no prompt cache key",
}

// set records one top-level member, or refuses it.
func (c *chatRequest) set(m member) error {
	v := m.val
	switch m.key {
	case "model":
		if !isString(v) {
			return invalid("model", "must be a string")
		}
		c.model = v
	case "messages":
		if !isArray(v) {
			return invalid("messages", "must be an array")
		}
		c.messages = v
	case "max_tokens", "max_completion_tokens":
		if isNull(v) {
			return nil
		}
		if _, ok := count(v); !ok {
			return invalid(m.key, "must be a non-negative integer")
		}
		if c.maxTokens != nil {
			return untranslatable(m.key, "max_tokens and max_completion_tokens cannot both be set")
		}
		c.maxTokens = v
	case "temperature":
		if isNull(v) {
			return nil
		}
		f, ok := number(v)
		if !ok {
			return invalid("temperature", "must be a number")
		}
		if f < 0 || f > 1 {
			return untranslatable("temperature", "Anthropic accepts a temperature from 0 to 1")
		}
		c.temperature = v
	case "top_p":
		if isNull(v) {
			return nil
		}
		if !isNumber(v) {
			return invalid("top_p", "must be a number")
		}
		c.topP = v
	case "stop":
		if isNull(v) {
			return nil
		}
		if isArray(v) {
			for i, e := range elements(v) {
				if !isString(e) {
					return invalid(index("stop", i), "must be a string")
				}
			}
		} else if !isString(v) {
			return invalid("stop", "must be a string or an array of strings")
		}
		c.stop = v
	case "stream":
		if isNull(v) {
			return nil
		}
		if !isBool(v) {
			return invalid("stream", "must be a boolean")
		}
		c.stream = v
	case "stream_options":
		return c.streamOptions(v)
	case "user", "safety_identifier":
		if isNull(v) {
			return nil
		}
		if !isString(v) {
			return invalid(m.key, "must be a string")
		}
		if c.userID != nil {
			return untranslatable(m.key, "user and safety_identifier both map to metadata.user_id; send one")
		}
		c.userID = v
	case "tools":
		if !isNull(v) && !isArray(v) {
			return invalid("tools", "must be an array")
		}
		if !isNull(v) {
			c.tools = v
		}
	case "tool_choice":
		if !isNull(v) {
			c.toolChoice = v
		}
	case "parallel_tool_calls":
		if isNull(v) {
			return nil
		}
		if !isBool(v) {
			return invalid("parallel_tool_calls", "must be a boolean")
		}
		c.parallel = v
	default:
		if n, ok := noop[m.key]; ok {
			if isNull(v) || n.isDefault(v) {
				return nil
			}
			return untranslatable(m.key, n.why)
		}
		if why, ok := refused[m.key]; ok {
			if isNull(v) {
				return nil
			}
			return untranslatable(m.key, why)
		}
		return untranslatable(path("", m.key), "unknown field")
	}
	return nil
}

// streamOptions reads stream_options: only include_usage is known.
func (c *chatRequest) streamOptions(v []byte) error {
	if isNull(v) {
		return nil
	}
	if !isObject(v) {
		return invalid("stream_options", "must be an object")
	}
	for _, m := range members(v) {
		if m.key != "include_usage" {
			return untranslatable(path("stream_options", m.key), "unknown field")
		}
		switch {
		case isNull(m.val):
		case isBool(m.val):
			c.includeUsage = string(m.val) == "true"
		default:
			return invalid("stream_options.include_usage", "must be a boolean")
		}
	}
	return nil
}

// build writes the Anthropic body. Members come in a fixed order, so a translation is
// deterministic.
func (c *chatRequest) build(o RequestOptions) (Request, error) {
	if c.model == nil {
		return Request{}, invalid("model", "is required")
	}
	if c.messages == nil {
		return Request{}, invalid("messages", "is required")
	}
	var b builder
	b.out = make([]byte, 0, len(c.messages)+256)
	b.raw(`{"model":`)
	b.out = append(b.out, c.model...)
	b.raw(`,"max_tokens":`)
	if c.maxTokens != nil {
		b.out = append(b.out, c.maxTokens...)
	} else {
		b.out = strconv.AppendInt(b.out, max(o.MaxTokens, 1), 10)
	}
	if err := b.conversation(c.messages); err != nil {
		return Request{}, err
	}
	if c.temperature != nil {
		b.raw(`,"temperature":`)
		b.out = append(b.out, c.temperature...)
	}
	if c.topP != nil {
		b.raw(`,"top_p":`)
		b.out = append(b.out, c.topP...)
	}
	if c.stop != nil {
		b.raw(`,"stop_sequences":`)
		if isString(c.stop) {
			b.raw("[")
			b.out = append(b.out, c.stop...)
			b.raw("]")
		} else {
			b.out = append(b.out, c.stop...)
		}
	}
	if c.stream != nil {
		b.raw(`,"stream":`)
		b.out = append(b.out, c.stream...)
	}
	if err := b.tools(c.tools, c.toolChoice, string(c.parallel) == "false"); err != nil {
		return Request{}, err
	}
	if c.userID != nil {
		b.raw(`,"metadata":{"user_id":`)
		b.out = append(b.out, c.userID...)
		b.raw("}")
	}
	b.raw("}")
	return Request{Body: b.out, Stream: string(c.stream) == "true", IncludeUsage: c.includeUsage}, nil
}

// builder accumulates a translated body.
type builder struct{ out []byte }

func (b *builder) raw(s string) { b.out = append(b.out, s...) }

// trimWS drops the whitespace RFC 8259 allows around a value.
func trimWS(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isWS(b[i]) {
		i++
	}
	for j > i && isWS(b[j-1]) {
		j--
	}
	return b[i:j]
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
