package guard

import (
	"slices"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// The texts of a stream: each is one StreamScanner, opened at its first
// delta and closed (flushed) at its end.

// streamKey identifies one text of a stream: a chat choice and field, a
// Messages block and delta type (a, b), or a Responses part (s).
type streamKey struct {
	a, b int32
	s    string
}

// textStream is one open text.
type textStream struct {
	key streamKey
	sc  *StreamScanner
	// Responses: the text's last delta event, with holes at deltaAt for
	// the delta and at seqAt (-1: none) for the sequence number, and its
	// event name. See setTemplate.
	tmpl     []byte
	deltaAt  int
	seqAt    int
	tmplName []byte
}

// text returns the open text k, opening it if needed; nil (a scan failure)
// when too many are open.
func (r *SSERedactor) text(k streamKey) *textStream {
	if ts, ok := r.texts[k]; ok {
		return ts
	}
	if len(r.open) >= maxOpenTexts {
		r.failed = true
		return nil
	}
	var sc *StreamScanner
	if n := len(r.free); n > 0 {
		sc, r.free = r.free[n-1], r.free[:n-1]
	} else {
		sc = r.p.newStreamScanner("", r.counts, &r.ph)
	}
	ts := &textStream{key: k, sc: sc}
	r.texts[k] = ts
	r.open = append(r.open, ts)
	return ts
}

// push scans the next delta of ts and returns what may be released.
func (r *SSERedactor) push(ts *textStream, delta []byte) []byte {
	before := ts.sc.Held()
	out := ts.sc.Push(delta)
	r.held += ts.sc.Held() - before
	return out
}

// flush returns everything ts holds, redacted.
func (r *SSERedactor) flush(ts *textStream) []byte {
	r.held -= ts.sc.Held()
	return ts.sc.Flush()
}

// closeText flushes ts, forgets it and returns the flushed text.
func (r *SSERedactor) closeText(ts *textStream) []byte {
	out := r.flush(ts)
	delete(r.texts, ts.key)
	if i := slices.Index(r.open, ts); i >= 0 {
		r.open = slices.Delete(r.open, i, i+1)
	}
	if len(r.free) < 8 {
		r.free = append(r.free, ts.sc)
	}
	ts.sc = nil
	return out
}

// flushAll releases the held text of every open text in synthesized
// events, closing the texts when close is set (end of stream).
func (r *SSERedactor) flushAll(close bool) {
	if len(r.open) == 0 {
		return
	}
	switch r.shape {
	case llm.ShapeChat, llm.ShapeCompletions:
		r.chatFlushAll(close)
	case llm.ShapeResponses:
		r.responsesFlushAll(close)
	case llm.ShapeMessages:
		r.messagesFlushAll(close)
	}
}

// openTexts returns a copy of the open texts, for loops that close some.
func (r *SSERedactor) openTexts() []*textStream {
	return slices.Clone(r.open)
}

// wholeScan scans an event like a JSON response with schema and releases
// it, redacted. repeat marks an event that repeats streamed text, whose
// matches are not added to the counts (see Findings).
func (r *SSERedactor) wholeScan(name, data []byte, schema *node, repeat bool) {
	res, err := r.p.scanJSON(schema, data, true, &r.ph)
	if err != nil || res.ScanErr != nil {
		r.unreadable(name, data)
		return
	}
	if len(res.Findings) > 0 {
		clear(r.evCount)
		for _, f := range res.Findings {
			for i := range r.p.Rules {
				if r.p.Rules[i].ID == f.RuleID {
					r.evCount[i] += f.Count
					break
				}
			}
		}
		for i, n := range r.evCount {
			if repeat {
				r.repeat[i] = max(r.repeat[i], n)
			} else {
				r.whole[i] += n
			}
		}
	}
	if res.NewBody != nil {
		data = res.NewBody
	}
	r.writeEvent(name, data)
}

// badValue handles a text member whose value is not a string (nor null):
// a scan failure. Unless every rule fails open, the value is replaced by
// repl, as a JSON string.
func (r *SSERedactor) badValue(n int32, repl []byte) {
	r.failed = true
	if !r.failOpen {
		nd := r.tree.nodes[n]
		r.ed.replaceQuoted(nd.start, nd.end, repl)
	}
}

// release applies the event's edits and returns the data to release.
func (r *SSERedactor) release(data []byte) []byte {
	if len(r.ed.edits) == 0 {
		return data
	}
	r.evbuf = r.ed.apply(r.evbuf[:0], data)
	return r.evbuf
}
