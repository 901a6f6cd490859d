package guard

import (
	"bytes"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Responses API stream schemas. respEvent selects the text an event repeats
// in full: output_text.done's text, function_call_arguments.done's
// arguments, refusal.done's refusal, a part (content_part.done,
// reasoning_summary_part.done), an item (output_item.added/done) and a
// response's output (response.created ... response.completed).
var (
	respPart     = obj(f("text", textNode), f("refusal", textNode))
	respOutItem  = obj(f("content", arr(respPart)), f("arguments", textNode), f("summary", arr(obj(f("text", textNode)))))
	respEvent    = obj(f("text", textNode), f("refusal", textNode), f("arguments", textNode), f("part", respPart), f("item", respOutItem), f("response", obj(f("output", arr(respOutItem)))))
	respDeltaAll = obj(f("delta", allNode))
)

// responsesEvent rewrites one Responses API event.
func (r *SSERedactor) responsesEvent(name, data []byte) {
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
	switch {
	case bytes.HasSuffix(typ, []byte(".delta")):
		prefix := typ[:len(typ)-len(".delta")]
		if string(prefix) == "response.audio" {
			// Audio bytes, not text (the transcript is
			// response.audio.transcript.delta).
			r.writeEvent(name, data)
			return
		}
		r.responsesDelta(name, data, prefix)
	case bytes.HasSuffix(typ, []byte(".done")):
		if ts := r.texts[r.responsesKey(typ[:len(typ)-len(".done")])]; ts != nil {
			if out := r.closeText(ts); len(out) > 0 {
				r.responsesSynth(ts, out)
			}
		}
		r.wholeScan(name, data, respEvent, true)
	case string(typ) == "response.completed" || string(typ) == "response.incomplete" || string(typ) == "response.failed":
		r.flushAll(true)
		r.wholeScan(name, data, respEvent, true)
	default:
		r.wholeScan(name, data, respEvent, true)
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

// responsesDelta rewrites a "*.delta" event.
func (r *SSERedactor) responsesDelta(name, data, prefix []byte) {
	t := &r.tree
	dn := t.member(0, "delta")
	key := r.responsesKey(prefix)
	if t.bad {
		r.unreadable(name, data)
		return
	}
	switch t.kind(dn) {
	case '"':
	case 0, 'n':
		r.writeEvent(name, data)
		return
	case '{', '[':
		// Not a text delta, but strings a client may show: scanned whole.
		r.wholeScan(name, data, respDeltaAll, false)
		return
	default:
		r.ed.reset()
		r.badValue(dn, nil)
		r.writeEvent(name, r.release(data))
		return
	}
	text := t.text(dn, &r.dec)
	var out []byte
	ts := r.text(key)
	if ts != nil {
		out = r.push(ts, text)
	}
	r.ed.reset()
	nd := t.nodes[dn]
	if !bytes.Equal(out, text) {
		r.ed.replaceQuoted(nd.start, nd.end, out)
	}
	ev := r.release(data)
	if ts != nil {
		r.setTemplate(ts, name, ev, int(nd.start), int(nd.end)+len(ev)-len(data))
	}
	r.writeEvent(name, ev)
}

// setTemplate keeps ev, with its delta value (ev[ds:de]) emptied, as the
// image of the text's synthesized flush event. A large event (long
// logprobs, say) is replaced by its type, item and indexes.
func (r *SSERedactor) setTemplate(ts *textStream, name, ev []byte, ds, de int) {
	ts.tmplName = append(ts.tmplName[:0], name...)
	if len(ev)-(de-ds) <= maxTemplate {
		ts.tmpl = append(append(append(ts.tmpl[:0], ev[:ds]...), `""`...), ev[de:]...)
		ts.tmplAt = ds
		return
	}
	t := &r.tree
	var m members
	for _, k := range [...]string{"type", "sequence_number", "item_id", "output_index", "content_index", "summary_index"} {
		if n := t.member(0, k); n >= 0 {
			m.add(k, t.raw(n))
		}
	}
	ts.tmpl = append(append(ts.tmpl[:0], '{'), m...)
	if len(m) > 0 {
		ts.tmpl = append(ts.tmpl, ',')
	}
	ts.tmpl = append(ts.tmpl, `"delta":`...)
	ts.tmplAt = len(ts.tmpl)
	ts.tmpl = append(ts.tmpl, `""}`...)
}

// responsesSynth releases out in a copy of the text's last delta event.
func (r *SSERedactor) responsesSynth(ts *textStream, out []byte) {
	ev := append([]byte(nil), ts.tmpl[:ts.tmplAt]...)
	ev = jsonlex.AppendQuoted(ev, out)
	ev = append(ev, ts.tmpl[ts.tmplAt+2:]...)
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
