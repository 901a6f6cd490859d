package llm

import "bytes"

// MaxUsageBodySize caps how much of a non-streamed response body UsageParser
// keeps to read usage from at the end. A larger body (embeddings of a huge
// batch, say) yields no usage rather than unbounded memory.
const MaxUsageBodySize = 16 << 20

// maxModelTries bounds how many events UsageParser scans only to learn the
// model, so a stream whose events never carry a usable model costs no more
// than a few scans.
const maxModelTries = 8

// UsageParser extracts the token usage a provider reports in a response
// body that arrives in chunks. Create one per response with NewUsageParser,
// call Feed for every chunk and Finish at the end of the stream; Usage and
// Model may be read at any time and report what was seen so far.
//
// Streamed bodies are parsed event by event as they arrive. The JSON of an
// event is scanned only when a cheap byte search shows it may carry usage
// (or, until the model is known, a model), and only the usage object is then
// decoded, so the cost is O(bytes) with a small constant. Non-streamed bodies
// are kept (up to MaxUsageBodySize) and read once by Finish.
//
// What is read, by endpoint:
//   - Chat Completions, Completions, Embeddings: "usage" {prompt_tokens,
//     completion_tokens, prompt_tokens_details.cached_tokens}; streamed, the
//     last non-null "usage" (the final chunk when the request set
//     stream_options.include_usage).
//   - Responses: "usage" {input_tokens, output_tokens,
//     input_tokens_details.cached_tokens}; streamed, response.usage in
//     response.completed, response.incomplete or response.failed.
//   - Messages (Anthropic): "usage" {input_tokens, output_tokens,
//     cache_creation_input_tokens, cache_read_input_tokens}; streamed,
//     message.usage in message_start, then usage in each message_delta,
//     whose output_tokens is cumulative and replaces the count, and whose
//     input and cache counts, when non-zero, replace earlier ones. After an
//     "error" event nothing more is read.
//
// A usage object is ignored, as if the event had none, when the event is not
// valid JSON, when a count is negative, fractional, not a number or above
// 10^12, or when it lacks the input count (prompt_tokens, input_tokens;
// for message_delta, every count): an empty or foreign object must not
// settle a budget at zero. Null members count as absent.
//
// A UsageParser is not safe for concurrent use.
type UsageParser struct {
	kind      UsageKind
	streaming bool
	finished  bool

	sse  SSEParser
	emit func(event, data []byte) // u.onEvent, bound once

	body     []byte // non-streamed body so far
	overflow bool   // the non-streamed body outgrew MaxUsageBodySize

	usage      Usage
	seen       bool
	ended      bool // the provider-defined end of the response was read
	deltaSeen  bool // Anthropic: a message_delta set the output count
	stopped    bool // Anthropic: an error event ended usage reporting
	model      string
	modelTries int
}

// NewUsageParser returns a parser for a response to endpoint e. streaming
// reports whether the response is text/event-stream, which the caller reads
// from the response headers (a request with "stream": true can still get a
// JSON error body). For endpoints without usage (Spec.Usage UsageNone: Models, EndpointUnknown)
// Feed and Finish do nothing.
func NewUsageParser(e Endpoint, streaming bool) *UsageParser {
	u := &UsageParser{streaming: streaming}
	u.kind = e.Spec().Usage
	u.emit = u.onEvent
	return u
}

// Feed consumes the next chunk of the response body. It keeps no reference
// to chunk after it returns. Chunks after Finish are ignored.
func (u *UsageParser) Feed(chunk []byte) {
	if u.finished || u.kind == UsageNone {
		return
	}
	if u.streaming {
		u.sse.Feed(chunk, u.emit)
		return
	}
	if u.overflow {
		return
	}
	if len(u.body)+len(chunk) > MaxUsageBodySize {
		u.overflow = true
		u.body = nil
		return
	}
	u.body = append(u.body, chunk...)
}

// Finish marks the end of the body: a streamed body's unterminated last
// event is read, a non-streamed body is parsed. Later calls do nothing.
func (u *UsageParser) Finish() {
	if u.finished || u.kind == UsageNone {
		u.finished = true
		return
	}
	u.finished = true
	if u.streaming {
		u.sse.Flush(u.emit)
		return
	}
	body := u.body
	u.body = nil
	var ev eventSpans
	if u.overflow || !scanSpans(body, "", &ev) {
		return
	}
	// A complete JSON body is the whole response: its usage is final.
	u.ended = true
	u.setModel(ev.top.model)
	switch u.kind {
	case UsageChat, UsageResponses:
		if us, ok := decodeOpenAIUsage(ev.top.usage, u.kind == UsageResponses); ok {
			u.usage, u.seen = us, true
		}
	case UsageMessages:
		if c, ok := decodeAnthropicUsage(ev.top.usage); ok {
			if us, ok := c.usage(); ok {
				u.usage, u.seen = us, true
			}
		}
	}
}

// Usage returns the usage reported so far, normalized to disjoint counts,
// and whether the provider reported any. For a stream cut short it is what
// was seen: Anthropic's input counts from message_start and the output
// count of the last message_delta (or message_start's own small count);
// for OpenAI, nothing unless the final usage chunk arrived. Such partial
// usage is a lower bound, not a bill: see Ended.
func (u *UsageParser) Usage() (Usage, bool) { return u.usage, u.seen }

// Ended reports whether the response reached its provider-defined end, after
// which the reported usage is final:
//   - Chat Completions and Completions streams: the "data: [DONE]" event;
//   - Responses streams: response.completed, response.incomplete or
//     response.failed (each carries the final usage);
//   - Messages streams: message_stop (an "error" event is not an end);
//   - non-streamed bodies: a complete JSON object read by Finish.
//
// A stream cut before its end (client abort, upstream reset) reports false
// even when some usage was seen: Anthropic's message_start, for one, counts
// about one output token however long the stream then ran.
func (u *UsageParser) Ended() bool { return u.ended }

// Model returns the model the provider reported (the first non-empty one),
// or "" if none was seen yet. It may differ from the requested model, for
// example a dated snapshot of an alias.
func (u *UsageParser) Model() string { return u.model }

// setModel records raw, a JSON value, as the model if none is known yet.
func (u *UsageParser) setModel(raw []byte) {
	if u.model != "" || raw == nil {
		return
	}
	if m, ok := jsonString(raw, maxModelLen); ok {
		u.model = m
	}
}

// Event names that can carry usage.
const (
	evResponseCompleted  = "response.completed"
	evResponseIncomplete = "response.incomplete"
	evResponseFailed     = "response.failed"
	evMessageStart       = "message_start"
	evMessageDelta       = "message_delta"
	evMessageStop        = "message_stop"
	evError              = "error"
)

// doneData is the data of the OpenAI end-of-stream event.
var doneData = []byte("[DONE]")

// onEvent reads one SSE event. The SSE "event" field names the event when
// present (OpenAI Responses and Anthropic send it); otherwise the JSON
// "type" member does, which costs a scan.
func (u *UsageParser) onEvent(event, data []byte) {
	if u.stopped || u.ended {
		return
	}
	if u.kind == UsageMessages && string(event) == evError {
		u.stopped = true
		return
	}
	if u.kind == UsageChat && bytes.Equal(data, doneData) {
		u.ended = true
		return
	}
	// A named end event ends the response once its data is read whole (a
	// stream cut inside it is not ended: Finish reads a cut last event too).
	end := len(event) > 0 && u.endEvent(string(event))
	wantModel := u.model == "" && u.modelTries < maxModelTries && bytes.Contains(data, []byte(`"model"`))
	wantUsage := hasNonNullUsage(data) && (len(event) == 0 || u.usageEvent(string(event)))
	// Without an event name, an Anthropic error and the end events are only
	// known from the JSON "type".
	wantType := len(event) == 0 && (u.kind == UsageMessages && bytes.Contains(data, []byte(`"error"`)) ||
		u.kind != UsageChat && mayEnd(data))
	if !wantModel && !wantUsage && !wantType && !end {
		return
	}
	if wantModel {
		u.modelTries++
	}
	nest := ""
	switch u.kind {
	case UsageResponses:
		nest = "response"
	case UsageMessages:
		nest = "message"
	}
	var ev eventSpans
	if !scanSpans(data, nest, &ev) {
		return
	}
	if end {
		u.ended = true
	}
	kind := string(event)
	if kind == "" {
		kind, _ = jsonString(ev.top.typ, 64)
	}
	switch u.kind {
	case UsageChat:
		u.setModel(ev.top.model)
		if us, ok := decodeOpenAIUsage(ev.top.usage, false); ok {
			u.usage, u.seen = us, true
		}
	case UsageResponses:
		u.setModel(ev.inner.model)
		if !u.usageEvent(kind) {
			return
		}
		if us, ok := decodeOpenAIUsage(ev.inner.usage, true); ok {
			u.usage, u.seen = us, true
		}
		u.ended = true
	case UsageMessages:
		u.setModel(ev.inner.model)
		switch kind {
		case evError:
			u.stopped = true
		case evMessageStart:
			u.messageStart(ev.inner.usage)
		case evMessageDelta:
			u.messageDelta(ev.top.usage)
		case evMessageStop:
			u.ended = true
		}
	}
}

// endEvent reports whether an event of this name ends the response in the
// parser's usage kind.
func (u *UsageParser) endEvent(name string) bool {
	switch u.kind {
	case UsageResponses:
		return name == evResponseCompleted || name == evResponseIncomplete || name == evResponseFailed
	case UsageMessages:
		return name == evMessageStop
	}
	return false
}

// mayEnd is the cheap filter for unnamed events that may be an end event
// (its "type" member is checked after a scan).
func mayEnd(data []byte) bool {
	return bytes.Contains(data, []byte(`"message_stop"`)) || bytes.Contains(data, []byte(`"response.completed"`)) ||
		bytes.Contains(data, []byte(`"response.incomplete"`)) || bytes.Contains(data, []byte(`"response.failed"`))
}

// usageEvent reports whether an event of this name can carry usage in the
// parser's usage kind. Chat chunks are unnamed, so any name passes.
func (u *UsageParser) usageEvent(name string) bool {
	switch u.kind {
	case UsageResponses:
		return name == evResponseCompleted || name == evResponseIncomplete || name == evResponseFailed
	case UsageMessages:
		return name == evMessageStart || name == evMessageDelta
	default:
		return true
	}
}

// messageStart applies message_start's message.usage: the input and cache
// counts, and a provisional output count that a message_delta replaces.
func (u *UsageParser) messageStart(raw []byte) {
	c, ok := decodeAnthropicUsage(raw)
	if !ok {
		return
	}
	us, ok := c.usage()
	if !ok {
		return
	}
	out := u.usage.OutputTokens
	u.usage = us
	if u.deltaSeen {
		u.usage.OutputTokens = out
	}
	u.seen = true
}

// messageDelta applies a message_delta's usage. Its counts are cumulative:
// output_tokens replaces the output count, and input or cache counts, which
// newer API versions repeat (and which grow when server tools run), replace
// earlier ones when non-zero.
func (u *UsageParser) messageDelta(raw []byte) {
	c, ok := decodeAnthropicUsage(raw)
	if !ok || !c.hasAny {
		return
	}
	if c.hasOutput {
		u.usage.OutputTokens = c.output
		u.deltaSeen = true
	}
	if c.input > 0 {
		u.usage.InputTokens = c.input
	}
	if c.cacheWrite > 0 {
		u.usage.CacheWriteTokens, u.usage.CacheWrite1hTokens = c.cacheWrite, c.cacheWrite1h
	}
	if c.cacheRead > 0 {
		u.usage.CachedInputTokens = c.cacheRead
	}
	u.seen = true
}
