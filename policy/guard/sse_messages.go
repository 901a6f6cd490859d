package guard

import (
	"bytes"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Anthropic Messages stream schemas: message_start carries a message (its
// content is normally empty), content_block_start a block (a text block's
// text, a tool_use input, a tool result's text).
var (
	msgStart      = obj(f("message", messagesResponse))
	msgBlockStart = obj(f("content_block", anContent.elem))
)

// msgDelta is a content_block_delta type that carries text, and its member.
type msgDelta struct{ typ, field string }

// msgDeltas are the text-bearing delta types; the index is the b of a
// text's streamKey (a is the block index). Other types (signature_delta,
// citations_delta) pass unchanged.
var msgDeltas = [...]msgDelta{
	{"text_delta", "text"},
	{"input_json_delta", "partial_json"},
	{"thinking_delta", "thinking"},
}

// messagesEvent rewrites one Messages stream event.
func (r *SSERedactor) messagesEvent(name, data []byte) {
	t := &r.tree
	if t.parse(data) != nil {
		r.unreadable(name, data)
		return
	}
	tn := t.member(0, "type")
	if t.bad {
		r.unreadable(name, data)
		return
	}
	var typ []byte
	if t.kind(tn) == '"' {
		typ = t.text(tn, &r.typ)
	}
	switch string(typ) {
	case "content_block_delta":
		r.messagesDelta(name, data)
	case "content_block_stop":
		if idx, ok := t.index(t.member(0, "index"), 0); ok && !t.bad {
			for _, ts := range r.openTexts() {
				if ts.key.a == int32(idx) {
					if out := r.closeText(ts); len(out) > 0 {
						r.messagesSynth(ts.key, out)
					}
				}
			}
		}
		r.writeEvent(name, data)
	case "content_block_start":
		r.wholeScan(name, data, msgBlockStart, false)
	case "message_start":
		r.wholeScan(name, data, msgStart, false)
	case "message_delta", "message_stop":
		r.flushAll(true)
		r.writeEvent(name, data)
	default:
		r.writeEvent(name, data)
	}
}

// messagesDelta rewrites a content_block_delta event.
func (r *SSERedactor) messagesDelta(name, data []byte) {
	t := &r.tree
	idx, ok := t.index(t.member(0, "index"), 0)
	d := t.member(0, "delta")
	dt := t.member(d, "type")
	kind := -1
	for i, m := range msgDeltas {
		if t.is(dt, m.typ) {
			kind = i
		}
	}
	vn := int32(-1)
	if kind >= 0 {
		vn = t.member(d, msgDeltas[kind].field)
	}
	if !ok || t.bad {
		r.unreadable(name, data)
		return
	}
	r.ed.reset()
	switch t.kind(vn) {
	case 0, 'n':
	case '"':
		text := t.text(vn, &r.dec)
		var out []byte
		if ts := r.text(streamKey{a: int32(idx), b: int32(kind)}); ts != nil {
			out = r.push(ts, text)
		}
		if !bytes.Equal(out, text) {
			r.ed.replaceQuoted(t.nodes[vn].start, t.nodes[vn].end, out)
		}
	default:
		r.badValue(vn, nil)
	}
	r.writeEvent(name, r.release(data))
}

// messagesSynth releases out in a content_block_delta for the text's block
// and delta type.
func (r *SSERedactor) messagesSynth(k streamKey, out []byte) {
	m := msgDeltas[k.b]
	ev := append([]byte(nil), `{"type":"content_block_delta","index":`...)
	ev = strconv.AppendInt(ev, int64(k.a), 10)
	ev = append(ev, `,"delta":{"type":"`...)
	ev = append(ev, m.typ...)
	ev = append(ev, `","`...)
	ev = append(ev, m.field...)
	ev = append(ev, `":`...)
	ev = jsonlex.AppendQuoted(ev, out)
	ev = append(ev, "}}"...)
	r.writeEvent([]byte("content_block_delta"), ev)
}

// messagesFlushAll releases the held text of every open text.
func (r *SSERedactor) messagesFlushAll(close bool) {
	for _, ts := range r.openTexts() {
		k := ts.key
		var out []byte
		if close {
			out = r.closeText(ts)
		} else {
			out = r.flush(ts)
		}
		if len(out) > 0 {
			r.messagesSynth(k, out)
		}
	}
}
