package translate

import (
	"fmt"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// maxBlocks bounds the content blocks one streamed message may open.
const maxBlocks = 4096

// keepOut is the largest output buffer a stream keeps between chunks.
const keepOut = 64 << 10

// maxIDBytes bounds the message id and model a stream repeats in every chunk, so the
// output stays within a constant factor of the input.
const maxIDBytes = 512

// Event member names, read with pick.
var (
	eventKeys = []string{"type", "message", "index", "content_block", "delta", "usage", "error"}
	deltaKeys = []string{"type", "text", "partial_json", "stop_reason"}
	errorKeys = []string{"type", "message"}
)

// The indexes of eventKeys and deltaKeys.
const (
	evType = iota
	evMessage
	evIndex
	evBlock
	evDelta
	evUsage
	evError
)

const (
	dType = iota
	dText
	dPartial
	dStop
)

// chatStream translates an Anthropic Messages event stream into OpenAI chat.completion.chunk
// events, each Anthropic event as soon as it is complete:
//
//	message_start                       → a chunk with delta {"role":"assistant","content":""}
//	content_block_start text            → nothing (its text, if any, as a content delta)
//	content_block_delta text_delta      → delta {"content": text}
//	content_block_start tool_use        → delta tool_calls [{index, id, type, function {name, arguments ""}}]
//	content_block_delta input_json_delta → delta tool_calls [{index, function {arguments: partial_json}}]
//	content_block_stop, ping            → nothing
//	message_delta                       → delta {} with the mapped finish_reason
//	message_stop                        → the usage chunk (choices [], only when the client
//	                                      asked: include_usage), then data: [DONE]
//	error                               → data: {"error": {...}} (see ErrorBody); the stream ends
//
// Text travels as the JSON string tokens Anthropic sent, byte for byte. Tool call indexes
// count the tool_use blocks (0, 1, ...), as OpenAI numbers tool calls. Event types the
// translation does not know are skipped, as Anthropic asks clients to; a known event that
// is malformed, a content block or delta of another type (thinking, server tools: never
// requested by a translation), a content event before message_start, or an event over
// llm.MaxSSEEventSize is ErrUpstream or ErrTooLarge, and ends the translation.
type chatStream struct {
	o    ResponseOptions
	sse  llm.SSEParser
	emit func(event, data []byte)
	out  []byte
	head []byte // `data: {"id":...,"choices":` shared by every chunk
	err  error

	started, ended bool
	blocks         []block
	tools          int
	u              usage
	ev             [7][]byte
	d              [4][]byte
	blk            [5][]byte
}

// block is one open content block: its Anthropic index and, for tool_use, its tool call
// index (-1 for text).
type block struct {
	index int64
	tool  int
}

func newChatStream(o ResponseOptions) *chatStream {
	s := &chatStream{o: o}
	s.emit = s.onEvent
	return s
}

// Feed translates the events chunk completes. Each call is O(len(chunk)) plus the event it
// completes.
func (s *chatStream) Feed(chunk []byte) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.out = s.out[:0]
	s.sse.Feed(chunk, s.emit)
	return s.take()
}

// Finish translates an event the stream left unterminated. A stream that ends without
// message_stop (or an error event) ends without [DONE]: the client sees it cut, as it was.
func (s *chatStream) Finish() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.out = s.out[:0]
	s.sse.Flush(s.emit)
	return s.take()
}

// take returns a copy of the output, and the error that stopped the translation: the
// output is then what the events before the failing one translated to, wherever the chunks
// were cut (the caller fails the stream anyway).
func (s *chatStream) take() ([]byte, error) {
	if s.err == nil && s.sse.Dropped() > 0 {
		s.err = fmt.Errorf("%w: an event over %d bytes", ErrTooLarge, llm.MaxSSEEventSize)
	}
	if len(s.out) == 0 {
		return nil, s.err
	}
	out := append([]byte(nil), s.out...)
	if cap(s.out) > keepOut {
		s.out = nil
	}
	return out, s.err
}

// fail stops the translation.
func (s *chatStream) fail(why string) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s", ErrUpstream, why)
	}
}

// onEvent translates one complete event; data is valid only during the call.
func (s *chatStream) onEvent(_, data []byte) {
	if s.err != nil || s.ended {
		return
	}
	data = trimWS(data)
	if err := check(data); err != nil || !isObject(data) {
		s.fail("an event that is not a JSON object")
		return
	}
	ev := s.ev[:]
	pick(data, eventKeys, ev)
	typ := name(ev[evType])
	switch string(typ) {
	case "message_start":
		s.messageStart(ev[evMessage])
	case "content_block_start":
		s.blockStart(ev[evIndex], ev[evBlock])
	case "content_block_delta":
		s.blockDelta(ev[evIndex], ev[evDelta])
	case "content_block_stop", "ping":
		if string(typ) == "content_block_stop" && !s.started {
			s.fail("content before message_start")
		}
	case "message_delta":
		s.messageDelta(ev[evDelta], ev[evUsage])
	case "message_stop":
		if !s.started {
			s.fail("message_stop before message_start")
			return
		}
		if s.o.IncludeUsage {
			s.out = append(s.out, s.head...)
			s.out = append(s.out, `[],"usage":`...)
			s.out = s.u.appendJSON(s.out)
			s.out = append(s.out, "}\n\n"...)
		}
		s.out = append(s.out, "data: [DONE]\n\n"...)
		s.ended = true
	case "error":
		s.errorEvent(ev[evError])
	}
}

// messageStart reads the message's id, model and first usage, and sends the role chunk.
func (s *chatStream) messageStart(msg []byte) {
	if s.started || !isObject(msg) {
		s.fail("a malformed or repeated message_start")
		return
	}
	var v [6][]byte
	pick(msg, messageKeys, v[:])
	if len(v[1]) > maxIDBytes || len(v[2]) > maxIDBytes {
		s.fail("a message id or model too long")
		return
	}
	if v[3] != nil && (!isArray(v[3]) || len(elements(v[3])) > 0) {
		s.fail("message_start with content")
		return
	}
	s.started = true
	s.u.read(v[5], false)
	h := append(s.head[:0], `data: {"id":`...)
	h = appendStringOr(h, v[1])
	h = append(h, `,"object":"chat.completion.chunk","created":`...)
	h = strconv.AppendInt(h, s.o.Created, 10)
	h = append(h, `,"model":`...)
	h = appendStringOr(h, v[2])
	s.head = append(h, `,"choices":`...)
	s.out = append(s.out, s.head...)
	s.out = append(s.out, `[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
}

// text writes a content delta holding the string token tok (nothing for "").
func (s *chatStream) text(tok []byte) {
	if emptyString(tok) {
		return
	}
	s.out = append(s.out, s.head...)
	s.out = append(s.out, `[{"index":0,"delta":{"content":`...)
	s.out = append(s.out, tok...)
	s.out = append(s.out, `},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
}

// blockStart opens a content block: text, or tool_use (a tool call with its id and name).
func (s *chatStream) blockStart(idx, cb []byte) {
	if !s.started {
		s.fail("content before message_start")
		return
	}
	i, ok := count(idx)
	if !ok || !isObject(cb) || len(s.blocks) >= maxBlocks {
		s.fail("a malformed content_block_start")
		return
	}
	for _, b := range s.blocks {
		if b.index == i {
			s.fail("a content block started twice")
			return
		}
	}
	blk := s.blk[:]
	pick(cb, blockKeys, blk)
	switch string(name(blk[0])) {
	case "text":
		if !isString(blk[1]) {
			s.fail("a text block without text")
			return
		}
		s.blocks = append(s.blocks, block{index: i, tool: -1})
		s.text(blk[1])
	case "tool_use":
		if !isString(blk[2]) || !isString(blk[3]) || blk[4] != nil && !isObject(blk[4]) {
			s.fail("a tool_use block without id or name")
			return
		}
		t := s.tools
		s.tools++
		s.blocks = append(s.blocks, block{index: i, tool: t})
		var input []byte // arguments start empty; input_json_delta events carry them
		if blk[4] != nil && !emptyObject(blk[4]) {
			input = blk[4]
		}
		s.out = append(s.out, s.head...)
		s.out = append(s.out, `[{"index":0,"delta":{"tool_calls":[`...)
		s.out = appendToolCall(s.out, t, blk[2], blk[3], input)
		s.out = append(s.out, `]},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
	default:
		s.fail("a content block of a type the chat shape has no place for")
	}
}

// blockDelta translates a text or tool-input delta of an open block.
func (s *chatStream) blockDelta(idx, delta []byte) {
	if !s.started {
		s.fail("content before message_start")
		return
	}
	i, ok := count(idx)
	if !ok || !isObject(delta) {
		s.fail("a malformed content_block_delta")
		return
	}
	b, found := s.block(i)
	if !found {
		s.fail("a delta of a block that was not started")
		return
	}
	d := s.d[:]
	pick(delta, deltaKeys, d)
	typ := name(d[dType])
	switch {
	case string(typ) == "text_delta" && b.tool < 0 && isString(d[dText]):
		s.text(d[dText])
	case string(typ) == "input_json_delta" && b.tool >= 0 && isString(d[dPartial]):
		if emptyString(d[dPartial]) {
			return
		}
		s.out = append(s.out, s.head...)
		s.out = append(s.out, `[{"index":0,"delta":{"tool_calls":[{"index":`...)
		s.out = strconv.AppendInt(s.out, int64(b.tool), 10)
		s.out = append(s.out, `,"function":{"arguments":`...)
		s.out = append(s.out, d[dPartial]...)
		s.out = append(s.out, `}}]},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
	default:
		s.fail("a content delta of a type the chat shape has no place for")
	}
}

// block finds an open block by its Anthropic index, searching from the latest.
func (s *chatStream) block(i int64) (block, bool) {
	for k := len(s.blocks) - 1; k >= 0; k-- {
		if s.blocks[k].index == i {
			return s.blocks[k], true
		}
	}
	return block{}, false
}

// messageDelta sends the finish chunk and takes the usage so far.
func (s *chatStream) messageDelta(delta, u []byte) {
	if !s.started {
		s.fail("message_delta before message_start")
		return
	}
	if !isObject(delta) {
		s.fail("a malformed message_delta")
		return
	}
	d := s.d[:]
	pick(delta, deltaKeys, d)
	s.u.read(u, true)
	s.out = append(s.out, s.head...)
	s.out = append(s.out, `[{"index":0,"delta":{},"logprobs":null,"finish_reason":`...)
	s.out = append(s.out, finishReason(d[dStop])...)
	s.out = append(s.out, "}]}\n\n"...)
}

// errorEvent sends an OpenAI-style error event and ends the stream. Its status is the one
// Anthropic answers the error type with (the stream's own status, 200, went out already).
func (s *chatStream) errorEvent(e []byte) {
	var typ, msg []byte
	status := 500
	if isObject(e) {
		v := s.d[:2]
		pick(e, errorKeys, v)
		if isString(v[0]) && isString(v[1]) {
			typ, msg = v[0], v[1]
			t, _ := str(typ)
			if st, ok := errorTypes[t]; ok {
				status = st
			}
		}
	}
	s.out = append(s.out, "data: "...)
	s.out = appendError(s.out, status, typ, msg)
	s.out = append(s.out, "\n\n"...)
	s.ended = true
}
