package guard

import (
	"slices"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// placeholders numbers redacted values per label within one body or stream:
// the first email is [EMAIL_1], the second distinct one [EMAIL_2], and a
// repeat of the first is [EMAIL_1] again, so the model can still tell values
// apart and refer back to them. Values are compared in normalized form, so
// an evasive spelling of a value gets the same number as the plain one. The
// values live only in this map, which dies with the scan.
type placeholders struct {
	seen   map[string]int
	counts map[string]int
}

// appendFor appends the placeholder for the value key of detector label.
func (ph *placeholders) appendFor(dst []byte, label, key string) []byte {
	if ph.seen == nil {
		ph.seen, ph.counts = map[string]int{}, map[string]int{}
	}
	k := label + "\x00" + key
	n, ok := ph.seen[k]
	if !ok {
		ph.counts[label]++
		n = ph.counts[label]
		ph.seen[k] = n
	}
	dst = append(dst, '[')
	dst = append(dst, label...)
	dst = append(dst, '_')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, ']')
}

// span is a decoded-text range to replace, with the placeholder's label and
// the value's key.
type span struct {
	start, end int
	label, key string
}

// redactText appends text with the spans (sorted by start) replaced by
// placeholders. Overlapping spans merge into the first one's placeholder.
func redactText(dst, text []byte, spans []span, ph *placeholders) []byte {
	prev := 0
	for i := 0; i < len(spans); i++ {
		sp := spans[i]
		end := sp.end
		for i+1 < len(spans) && spans[i+1].start < end {
			end = max(end, spans[i+1].end)
			i++
		}
		if sp.start < prev {
			sp.start = prev
		}
		dst = append(dst, text[prev:sp.start]...)
		dst = ph.appendFor(dst, sp.label, sp.key)
		prev = max(prev, end)
	}
	return append(dst, text[prev:]...)
}

// sortSpans orders spans by start, longer first on ties.
func sortSpans(spans []span) {
	slices.SortStableFunc(spans, func(a, b span) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
}

// rewrite builds the redacted body: each string token holding a match to
// replace (see rewrites) is decoded, rewritten and re-encoded, and, in a
// response of a profile that strips them, each logprobs value is replaced;
// every other byte is copied. ph numbers the placeholders (nil: a fresh
// numbering).
func (p *profile) rewrite(st *state, body []byte, response bool, ph *placeholders) []byte {
	out := make([]byte, 0, len(body)+len(body)/8)
	if ph == nil {
		ph = new(placeholders)
	}
	var strips []strip
	if response && p.stripLogprobs {
		strips = st.w.strips
	}
	prev := 0
	// stripTo replaces the strips that start before end. Strips never
	// overlap a loc: the walker reads nothing inside a stripped value.
	stripTo := func(end int) {
		for len(strips) > 0 && int(strips[0].start) < end {
			s := strips[0]
			out = append(out, body[prev:s.start]...)
			if s.repl == 'n' {
				out = append(out, "null"...)
			} else {
				out = append(out, "[]"...)
			}
			prev = int(s.end)
			strips = strips[1:]
		}
	}
	var spans []span
	var text []byte
	hits := st.hits
	for i := 0; i < len(hits); {
		li := hits[i].loc
		spans = spans[:0]
		for ; i < len(hits) && hits[i].loc == li; i++ {
			h := hits[i]
			if !p.rewrites(p.Rules[p.ruleOf[h.det]].Action, response) || st.w.locs[li].keep {
				continue
			}
			spans = append(spans, span{start: int(h.start), end: int(h.end), label: p.plan.dets[h.det].label, key: h.key})
		}
		if len(spans) == 0 {
			continue
		}
		sortSpans(spans)
		l := st.w.locs[li]
		stripTo(int(l.start))
		dec := st.decode(body, l)
		text = redactText(text[:0], dec, spans, ph)
		out = append(out, body[prev:l.start]...)
		out = jsonlex.AppendQuoted(out, text)
		prev = int(l.end)
	}
	stripTo(len(body))
	clear(text[:cap(text)])
	return append(out, body[prev:]...)
}
