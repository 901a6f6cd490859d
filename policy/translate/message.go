package translate

import (
	"fmt"
	"strconv"
)

// messageKeys are the members of an Anthropic message a translation reads.
var messageKeys = []string{"type", "id", "model", "content", "stop_reason", "usage"}

// blockKeys are the members of an Anthropic content block a translation reads.
var blockKeys = []string{"type", "text", "id", "name", "input"}

// MessageToChat translates a non-streamed Anthropic Messages response into an OpenAI chat
// completion: one choice whose message holds the text blocks joined as its content (null
// when there is none) and the tool_use blocks as tool_calls (arguments: the input object as
// a JSON string), the mapped finish_reason (see finishReason) and the usage. The message id
// and model are Anthropic's. A message that is not one, or holds a content block other than
// text and tool_use (thinking, server tools: a translation never asks for them), is
// ErrUpstream.
func MessageToChat(body []byte, o ResponseOptions) ([]byte, error) {
	body = trimWS(body)
	if err := check(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUpstream, err)
	}
	if !isObject(body) {
		return nil, fmt.Errorf("%w: not a message", ErrUpstream)
	}
	var v [6][]byte
	pick(body, messageKeys, v[:])
	if !strIs(v[0], "message") || !isArray(v[3]) {
		return nil, fmt.Errorf("%w: not a message", ErrUpstream)
	}
	var text []byte // joined contents of the text tokens
	var calls []byte
	hasText, n := false, 0
	var blk [5][]byte
	for _, e := range elements(v[3]) {
		if !isObject(e) {
			return nil, fmt.Errorf("%w: a content block is not an object", ErrUpstream)
		}
		pick(e, blockKeys, blk[:])
		typ, _ := str(blk[0])
		switch typ {
		case "text":
			if !isString(blk[1]) {
				return nil, fmt.Errorf("%w: a text block without text", ErrUpstream)
			}
			text = append(text, textOf(blk[1])...)
			hasText = true
		case "tool_use":
			if !isString(blk[2]) || !isString(blk[3]) || !isObject(blk[4]) {
				return nil, fmt.Errorf("%w: a tool_use block without id, name or input", ErrUpstream)
			}
			if n > 0 {
				calls = append(calls, ',')
			}
			calls = appendToolCall(calls, -1, blk[2], blk[3], blk[4])
			n++
		default:
			return nil, fmt.Errorf("%w: a content block of a type the chat shape has no place for", ErrUpstream)
		}
	}
	var u usage
	u.read(v[5], false)

	out := make([]byte, 0, len(text)+len(calls)+256)
	out = append(out, `{"id":`...)
	out = appendStringOr(out, v[1])
	out = append(out, `,"object":"chat.completion","created":`...)
	out = strconv.AppendInt(out, o.Created, 10)
	out = append(out, `,"model":`...)
	out = appendStringOr(out, v[2])
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if hasText {
		out = append(out, '"')
		out = append(out, text...)
		out = append(out, '"')
	} else {
		out = append(out, "null"...)
	}
	if n > 0 {
		out = append(out, `,"tool_calls":[`...)
		out = append(out, calls...)
		out = append(out, ']')
	}
	out = append(out, `},"logprobs":null,"finish_reason":`...)
	out = append(out, finishReason(v[4])...)
	out = append(out, `}],"usage":`...)
	out = u.appendJSON(out)
	return append(out, '}'), nil
}

// appendToolCall writes an OpenAI tool call: its stream index (omitted when negative), the
// id, type function, the name, and the arguments: input (a raw JSON object, or nil for "")
// as a JSON string.
func appendToolCall(b []byte, idx int, id, name, input []byte) []byte {
	b = append(b, '{')
	if idx >= 0 {
		b = append(b, `"index":`...)
		b = strconv.AppendInt(b, int64(idx), 10)
		b = append(b, ',')
	}
	b = append(b, `"id":`...)
	b = append(b, id...)
	b = append(b, `,"type":"function","function":{"name":`...)
	b = append(b, name...)
	b = append(b, `,"arguments":`...)
	b = appendQuoted(b, compact(input))
	return append(b, "}}"...)
}

// appendStringOr writes v when it is a string token, else "".
func appendStringOr(b, v []byte) []byte {
	if isString(v) {
		return append(b, v...)
	}
	return append(b, `""`...)
}

// compact drops the whitespace between the tokens of checked JSON, as OpenAI writes tool
// arguments; string contents are kept as they are.
func compact(b []byte) []byte {
	out := make([]byte, 0, len(b))
	in, esc := false, false
	for _, c := range b {
		switch {
		case in:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				in = false
			}
		case c == '"':
			in = true
		case isWS(c):
			continue
		}
		out = append(out, c)
	}
	return out
}
