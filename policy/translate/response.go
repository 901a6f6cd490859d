package translate

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// MaxBufferedBody bounds a non-streamed response (or error body) held until its end to be
// translated whole; a larger one fails the translation (ErrTooLarge) rather than pass on
// untranslated.
const MaxBufferedBody = 16 << 20

// ResponseOptions adjust a response translation.
type ResponseOptions struct {
	// IncludeUsage makes a translated stream end with the usage chunk, as the client asked
	// (Request.IncludeUsage).
	IncludeUsage bool
	// Created is the "created" time of the chat completion, in Unix seconds: Anthropic
	// reports none, so it is when the response began.
	Created int64
}

// Response translates one response body, fed in chunks cut at arbitrary bytes. Feed returns
// what to release in place of a chunk (possibly nothing while a whole body is held), Finish
// what remains at the end of the stream. The returned slices are the caller's. An error
// means the response cannot be translated: the caller fails the stream (closed), since what
// the client would read otherwise is not what it asked for.
type Response interface {
	Feed(chunk []byte) ([]byte, error)
	Finish() ([]byte, error)
}

// NewChatResponse returns the translation of an Anthropic Messages response into its OpenAI
// Chat Completions shape: a stream event by event (sse: the response is
// text/event-stream), a JSON message whole at its end, and any status outside 2xx as an
// OpenAI error body with the same status.
func NewChatResponse(status int, sse bool, o ResponseOptions) Response {
	switch {
	case status < 200 || status > 299:
		return &bufferedResponse{translate: func(b []byte) ([]byte, error) { return ErrorBody(status, b), nil }, lenient: true}
	case sse:
		return newChatStream(o)
	default:
		return &bufferedResponse{translate: func(b []byte) ([]byte, error) { return MessageToChat(b, o) }}
	}
}

// bufferedResponse holds a body to its end and translates it whole.
type bufferedResponse struct {
	buf       []byte
	over      bool
	done      bool
	lenient   bool // an error body: past the bound it is translated as unreadable
	translate func([]byte) ([]byte, error)
}

func (r *bufferedResponse) Feed(chunk []byte) ([]byte, error) {
	if r.done || r.over {
		return nil, nil
	}
	if len(r.buf)+len(chunk) > MaxBufferedBody {
		r.over, r.buf = true, nil
		if !r.lenient {
			return nil, fmt.Errorf("%w: a body over %d bytes", ErrTooLarge, MaxBufferedBody)
		}
		return nil, nil
	}
	r.buf = append(r.buf, chunk...)
	return nil, nil
}

func (r *bufferedResponse) Finish() ([]byte, error) {
	if r.done {
		return nil, nil
	}
	r.done = true
	if r.over && !r.lenient {
		return nil, fmt.Errorf("%w: a body over %d bytes", ErrTooLarge, MaxBufferedBody)
	}
	return r.translate(r.buf)
}

// usage holds Anthropic's token counts.
type usage struct {
	input, output, cacheRead, cacheWrite int64
}

var usageKeys = []string{"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}

// read takes the counts present in an Anthropic usage object. For a message_delta (delta),
// whose output count is cumulative, an input or cache count of 0 keeps the one message_start
// reported, as llm.UsageParser reads it.
func (u *usage) read(v []byte, delta bool) {
	if !isObject(v) {
		return
	}
	var vals [4][]byte
	pick(v, usageKeys, vals[:])
	dst := [4]*int64{&u.input, &u.output, &u.cacheRead, &u.cacheWrite}
	for i, raw := range vals {
		n, ok := count(raw)
		if !ok || delta && i != 1 && n == 0 {
			continue
		}
		*dst[i] = n
	}
}

// appendJSON writes the counts as an OpenAI usage object. OpenAI's prompt_tokens include
// cached prompt tokens, Anthropic's input_tokens exclude both cache reads and cache writes,
// so prompt_tokens is their sum and prompt_tokens_details.cached_tokens the cache reads.
func (u *usage) appendJSON(b []byte) []byte {
	prompt := u.input + u.cacheRead + u.cacheWrite
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, prompt, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, u.output, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, prompt+u.output, 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, u.cacheRead, 10)
	return append(b, `}}`...)
}

// finishReason maps an Anthropic stop_reason (a raw value) to an OpenAI finish_reason token:
//   - end_turn, stop_sequence: "stop" (the model ended, or hit a stop sequence);
//   - max_tokens: "length";
//   - tool_use: "tool_calls";
//   - refusal: "content_filter" (Anthropic's classifiers stopped the answer);
//   - model_context_window_exceeded: "length", as OpenAI reports output cut by the context
//     window;
//   - pause_turn: "length": a server tool paused a long turn, the answer is incomplete and
//     can be continued, which a client reading "stop" would not know (server tools are never
//     requested by a translation, so it should not occur);
//   - null or absent: null; any other value: "stop".
func finishReason(v []byte) string {
	s, ok := str(v)
	if !ok {
		return "null"
	}
	switch s {
	case "max_tokens", "model_context_window_exceeded", "pause_turn":
		return `"length"`
	case "tool_use":
		return `"tool_calls"`
	case "refusal":
		return `"content_filter"`
	default:
		return `"stop"`
	}
}

// errorTypes maps Anthropic error types to the HTTP status Anthropic answers them with, for
// an error event in a stream, whose status went out as 200.
var errorTypes = map[string]int{
	"invalid_request_error": http.StatusBadRequest,
	"authentication_error":  http.StatusUnauthorized,
	"billing_error":         http.StatusPaymentRequired,
	"permission_error":      http.StatusForbidden,
	"not_found_error":       http.StatusNotFound,
	"request_too_large":     http.StatusRequestEntityTooLarge,
	"rate_limit_error":      http.StatusTooManyRequests,
	"api_error":             http.StatusInternalServerError,
	"timeout_error":         http.StatusGatewayTimeout,
	"overloaded_error":      529,
}

// ErrorBody translates an Anthropic error body ({"type":"error","error":{"type","message"}})
// answered with status into an OpenAI error body for the same status:
// {"error":{"message","type","param":null,"code"}}. The OpenAI type follows the status as
// OpenAI's does (invalid_request_error for 4xx, rate_limit_exceeded for 429, server_error
// for 5xx); code is Anthropic's error type, and message Anthropic's message. A body that is
// not an Anthropic error (an HTML page from a proxy, say) becomes a generic error naming the
// status.
func ErrorBody(status int, body []byte) []byte {
	typ, msg := anthropicError(body)
	return appendError(nil, status, typ, msg)
}

// anthropicError returns the raw error type and message tokens of an Anthropic error body
// (nil when it is not one).
func anthropicError(body []byte) (typ, msg []byte) {
	body = trimWS(body)
	if check(body) != nil || !isObject(body) {
		return nil, nil
	}
	var top [2][]byte
	pick(body, []string{"type", "error"}, top[:])
	if !strIs(top[0], "error") || !isObject(top[1]) {
		return nil, nil
	}
	var e [2][]byte
	pick(top[1], []string{"type", "message"}, e[:])
	if !isString(e[0]) || !isString(e[1]) {
		return nil, nil
	}
	return e[0], e[1]
}

// appendError writes an OpenAI error body; typ and msg are raw string tokens, nil for a
// generic one.
func appendError(b []byte, status int, typ, msg []byte) []byte {
	b = append(b, `{"error":{"message":`...)
	if msg != nil {
		b = append(b, msg...)
	} else {
		b = append(b, `"the provider answered with HTTP status `...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, `"`...)
	}
	b = append(b, `,"type":"`...)
	b = append(b, llm.DefaultType(llm.OpenAI, status)...)
	b = append(b, `","param":null,"code":`...)
	if typ != nil {
		b = append(b, typ...)
	} else {
		b = append(b, "null"...)
	}
	return append(b, "}}"...)
}
