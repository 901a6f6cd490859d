package guard

import (
	"bytes"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Anthropic Messages streams read blockFields: message_start carries a
// message (msgStart; its content is normally empty), content_block_start a
// block (msgBlockStart), and content_block_delta a piece of one of the
// block's texts, or a whole citation. The b of a text's streamKey is its
// blockFields row (a is the block index). Other delta types
// (signature_delta) pass unchanged.

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
	row := -1
	for i, b := range blockFields {
		if b.delta != "" && t.is(dt, b.delta) {
			row = i
		}
	}
	vn := int32(-1)
	if row >= 0 {
		vn = t.member(d, blockFields[row].member)
	}
	if !ok || t.bad {
		r.unreadable(name, data)
		return
	}
	if row >= 0 && blockFields[row].whole {
		r.wholeScan(name, data, msgWhole[row], false)
		return
	}
	r.ed.reset()
	switch t.kind(vn) {
	case 0, 'n':
	case '"':
		text := t.text(vn, &r.dec)
		var out []byte
		if ts := r.text(streamKey{a: int32(idx), b: int32(row)}); ts != nil {
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
	m := blockFields[k.b]
	ev := append([]byte(nil), `{"type":"content_block_delta","index":`...)
	ev = strconv.AppendInt(ev, int64(k.a), 10)
	ev = append(ev, `,"delta":{"type":"`...)
	ev = append(ev, m.delta...)
	ev = append(ev, `","`...)
	ev = append(ev, m.member...)
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
