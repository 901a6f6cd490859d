package guard

import (
	"bytes"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Responses API streams read respFields: a "*.delta" event whose delta is a
// string is a piece of a text; the matching "*.done", the part, item and
// response events repeat texts whole and are scanned with respEvent.
//
// Sequence numbers: a client may check that sequence_number increases by
// one, or at least never repeats. Synthesized events come between the
// provider's, so every released event is renumbered: each gets
// max(its number + offset, the last released + 1), where offset is what the
// last renumbering added, and a synthesized event gets the last released
// + 1. A stream without synthesized events keeps its numbers byte for byte.

// responsesEvent rewrites one Responses API event.
func (r *SSERedactor) responsesEvent(name, data []byte) {
	t := &r.tree
	if t.parse(data) != nil {
		r.unreadable(name, data)
		return
	}
	tn := t.member(0, "type")
	sn := t.member(0, "sequence_number")
	if t.bad {
		r.unreadable(name, data)
		return
	}
	var typ []byte
	if t.kind(tn) == '"' {
		typ = t.text(tn, &r.typ)
	}
	switch {
	case bytes.HasSuffix(typ, []byte(".delta")):
		prefix := typ[:len(typ)-len(".delta")]
		if string(prefix) == "response.audio" {
			// Audio bytes, not text (the transcript is
			// response.audio.transcript.delta).
			r.writeEvent(name, r.renumber(data, sn))
			return
		}
		r.responsesDelta(name, data, prefix, sn)
	case bytes.HasSuffix(typ, []byte(".done")):
		if ts := r.texts[r.responsesKey(typ[:len(typ)-len(".done")])]; ts != nil {
			if out := r.closeText(ts); len(out) > 0 {
				r.responsesSynth(ts, out)
			}
		}
		r.wholeScan(name, r.renumber(data, sn), respEvent, true)
	case string(typ) == "response.completed" || string(typ) == "response.incomplete" || string(typ) == "response.failed":
		r.flushAll(true)
		r.wholeScan(name, r.renumber(data, sn), respEvent, true)
	default:
		r.wholeScan(name, r.renumber(data, sn), respEvent, true)
	}
}

// responsesKey identifies the text of a delta or done event: its kind
// (prefix), item and indexes.
func (r *SSERedactor) responsesKey(prefix []byte) streamKey {
	t := &r.tree
	b := append(r.kbuf[:0], prefix...)
	for _, m := range [...]string{"item_id", "output_index", "content_index", "summary_index"} {
		b = append(b, 0)
		b = append(b, t.raw(t.member(0, m))...)
	}
	r.kbuf = b
	return streamKey{s: string(b)}
}

// nextSeq returns the number to release for the event whose
// sequence_number is node sn, and whether it differs from the event's. ok
// is false when the event has no readable sequence number.
func (r *SSERedactor) nextSeq(sn int32) (out int64, change, ok bool) {
	seq, ok := r.tree.seq(sn)
	if !ok {
		return 0, false, false
	}
	out = max(seq+r.seqOff, r.lastSeq+1)
	r.seqOff, r.lastSeq = out-seq, out
	return out, out != seq, true
}

// seqEdit adds the renumbering of node sn to the event's edits.
func (r *SSERedactor) seqEdit(sn int32) {
	if out, change, _ := r.nextSeq(sn); change {
		nd := r.tree.nodes[sn]
		r.ed.replace(nd.start, nd.end, strconv.AppendInt(nil, out, 10))
	}
}

// renumber returns data with its sequence number (node sn) renumbered.
func (r *SSERedactor) renumber(data []byte, sn int32) []byte {
	r.ed.reset()
	r.seqEdit(sn)
	return r.release(data)
}

// stripLogprobs adds the replacement of a logprobs value (node lp) by []
// to the event's edits, when the profile strips them.
func (r *SSERedactor) stripLogprobs(lp int32) {
	if r.p.stripLogprobs && lp >= 0 && !r.tree.emptyArray(lp) {
		nd := r.tree.nodes[lp]
		r.ed.replace(nd.start, nd.end, []byte("[]"))
	}
}

// responsesDelta rewrites a "*.delta" event.
func (r *SSERedactor) responsesDelta(name, data, prefix []byte, sn int32) {
	t := &r.tree
	dn := t.member(0, "delta")
	lp := t.member(0, "logprobs")
	key := r.responsesKey(prefix)
	if t.bad {
		r.unreadable(name, data)
		return
	}
	r.ed.reset()
	switch t.kind(dn) {
	case '"':
	case 0, 'n':
		r.stripLogprobs(lp)
		r.seqEdit(sn)
		r.writeEvent(name, r.release(data))
		return
	case '{', '[':
		// Not a text delta, but strings a client may show: scanned whole.
		r.wholeScan(name, r.renumber(data, sn), respDeltaAll, false)
		return
	default:
		r.badValue(dn, nil)
		r.stripLogprobs(lp)
		r.seqEdit(sn)
		r.writeEvent(name, r.release(data))
		return
	}
	text := t.text(dn, &r.dec)
	var out []byte
	ts := r.text(key)
	if ts != nil {
		out = r.push(ts, text)
	}
	nd := t.nodes[dn]
	if !bytes.Equal(out, text) {
		r.ed.replaceQuoted(nd.start, nd.end, out)
	}
	r.stripLogprobs(lp)
	r.seqEdit(sn)
	ev := r.release(data)
	if ts != nil {
		r.setTemplate(ts, name, data, dn, sn, lp)
	}
	r.writeEvent(name, ev)
}

// setTemplate keeps the delta event data as the image of the text's
// synthesized flush events: its delta value and sequence number become
// holes, and its logprobs an empty array (they belong to the tokens of
// this delta, not to the text a flush releases). An event whose template
// would be large is replaced by its type, item and indexes.
func (r *SSERedactor) setTemplate(ts *textStream, name, data []byte, dn, sn, lp int32) {
	t := &r.tree
	ts.tmplName = append(ts.tmplName[:0], name...)
	e := &r.ted
	e.reset()
	e.replace(t.nodes[dn].start, t.nodes[dn].end, nil)
	if sn >= 0 {
		e.replace(t.nodes[sn].start, t.nodes[sn].end, nil)
	}
	if lp >= 0 && !t.emptyArray(lp) {
		e.replace(t.nodes[lp].start, t.nodes[lp].end, []byte("[]"))
	}
	if e.size(len(data)) <= maxTemplate {
		ts.tmpl = e.apply(ts.tmpl[:0], data)
		ts.deltaAt, ts.seqAt = e.mapPos(t.nodes[dn].start), -1
		if sn >= 0 {
			ts.seqAt = e.mapPos(t.nodes[sn].start)
		}
		return
	}
	var m members
	ts.seqAt = -1
	for _, k := range [...]string{"type", "sequence_number", "item_id", "output_index", "content_index", "summary_index"} {
		n := t.member(0, k)
		switch {
		case n < 0:
		case k == "sequence_number":
			m.add(k, nil)
			ts.seqAt = 1 + len(m)
		default:
			m.add(k, t.raw(n))
		}
	}
	ts.tmpl = append(append(ts.tmpl[:0], '{'), m...)
	if len(m) > 0 {
		ts.tmpl = append(ts.tmpl, ',')
	}
	ts.tmpl = append(ts.tmpl, `"delta":`...)
	ts.deltaAt = len(ts.tmpl)
	ts.tmpl = append(ts.tmpl, '}')
}

// responsesSynth releases out in a copy of the text's last delta event,
// numbered after the last event released.
func (r *SSERedactor) responsesSynth(ts *textStream, out []byte) {
	holes := [2]int{ts.deltaAt, ts.seqAt}
	if ts.seqAt >= 0 && ts.seqAt < ts.deltaAt {
		holes = [2]int{ts.seqAt, ts.deltaAt}
	}
	ev := make([]byte, 0, len(ts.tmpl)+len(out)+24)
	prev := 0
	for _, h := range holes {
		if h < 0 {
			continue
		}
		ev = append(ev, ts.tmpl[prev:h]...)
		if h == ts.deltaAt {
			ev = jsonlex.AppendQuoted(ev, out)
		} else {
			r.lastSeq++
			ev = strconv.AppendInt(ev, r.lastSeq, 10)
		}
		prev = h
	}
	ev = append(ev, ts.tmpl[prev:]...)
	r.writeEvent(ts.tmplName, ev)
}

// responsesFlushAll releases the held text of every open text.
func (r *SSERedactor) responsesFlushAll(close bool) {
	for _, ts := range r.openTexts() {
		var out []byte
		if close {
			out = r.closeText(ts)
		} else {
			out = r.flush(ts)
		}
		if len(out) > 0 {
			r.responsesSynth(ts, out)
		}
	}
}
