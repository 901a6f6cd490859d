package guard

import (
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// StreamScanner redacts one stream of response text (the text deltas of one
// SSE choice or content block, already extracted from their JSON) as it
// arrives.
//
// Latency: Push releases everything except the tail that could still be, or
// begin, a match: typically the trailing partial word (a few bytes, because
// any word could become an email local part or a key prefix) and, while a
// candidate is open, the candidate itself (a digit cluster, "sk-ant-..." not
// yet terminated, an unclosed PEM block, a base64 run). What is held is
// bounded by the longest match of the profile's detectors (a JWT: 8 KiB; 4
// KiB with any other secret detector, for base64 runs; a few hundred bytes
// with PII detectors only), and in the worst case, with invisible-character
// padding, four times that; a PEM block longer than the bound is redacted in
// parts. A base64 run longer than the bound is released in parts, and a
// secret encoded in it is not reliably found.
//
// Blocking mid-stream is impossible: the status and earlier chunks are
// already with the client. A block rule acts as redact on a stream, and its
// findings record Redact. Audit rules only count. Under a dry run nothing is
// redacted and findings report the configured actions.
//
// Each Push costs O(len(delta) + held bytes). A StreamScanner is not safe
// for concurrent use.
type StreamScanner struct {
	p      *profile
	path   string
	ctx    []byte // the last released bytes: look-behind for word boundaries
	pend   []byte // received, not yet released
	inPEM  bool   // a PEM block was cut at the hold bound: swallow its body
	pemCut int    // where the cut PEM block began (valid in the round that cut it)
	z      normalizer
	sc     scan
	ph     placeholders
	shared *placeholders // when set, used instead of ph (one numbering per SSE stream)
	counts []int         // matches per rule
	buf    []byte
	spans  []span
}

// ctxLen is how much released text is kept as look-behind. Verifiers read
// at most two bytes before a candidate (word starts, "x-" before a number);
// an email's local part, which the '@' verifier scans leftwards, is never
// released while it touches the end of the text (see scan.tail), so a
// local part that reaches into released text was too long to match.
const ctxLen = 16

// NewStreamScanner returns a scanner for one stream of text under the named
// profile. path labels its findings ("choices[0].delta.content").
func (e *Engine) NewStreamScanner(profile, path string) (*StreamScanner, error) {
	p, ok := e.profiles[profile]
	if !ok {
		return nil, ErrUnknownProfile
	}
	return p.newStreamScanner(path, make([]int, len(p.Rules)), nil), nil
}

// newStreamScanner returns a scanner that adds its matches to counts (one
// per rule, possibly shared with other scanners) and numbers placeholders
// with ph (nil: its own numbering).
func (p *profile) newStreamScanner(path string, counts []int, ph *placeholders) *StreamScanner {
	s := &StreamScanner{p: p, path: path, counts: counts, shared: ph}
	s.sc.p = p.plan
	return s
}

// Push adds the next delta and returns the text that is safe to release now
// (possibly empty), with matches replaced by placeholders. The returned slice
// is the caller's.
func (s *StreamScanner) Push(delta []byte) []byte {
	s.pend = append(s.pend, delta...)
	if len(s.p.Rules) == 0 {
		out := s.pend
		s.pend = nil
		return out
	}
	return s.process(false)
}

// Flush ends the text and returns everything still held, redacted. The
// scanner may then start a new text; findings accumulate.
func (s *StreamScanner) Flush() []byte {
	if len(s.p.Rules) == 0 {
		out := s.pend
		s.pend = nil
		return out
	}
	out := s.process(true)
	s.ctx, s.inPEM = s.ctx[:0], false
	return out
}

// Held returns the number of bytes received but not yet released.
func (s *StreamScanner) Held() int { return len(s.pend) }

// Result reports the findings so far (Path is the scanner's path). Decision
// is DecisionRedact once anything was redacted.
func (s *StreamScanner) Result() Result {
	r := Result{DryRun: s.p.DryRun}
	for i, n := range s.counts {
		if n == 0 {
			continue
		}
		rule := s.p.Rules[i]
		act := rule.Action
		if act == Block {
			act = Redact
		}
		if act == Redact {
			r.Intended = DecisionRedact
		}
		if s.p.DryRun {
			act = rule.Action
		}
		r.Findings = append(r.Findings, Finding{RuleID: rule.ID, Detector: rule.Detector, Action: act, Count: n, Path: s.path})
	}
	if !s.p.DryRun {
		r.Decision = r.Intended
	}
	return r
}

// process scans look-behind plus pending text and releases what is final.
func (s *StreamScanner) process(final bool) []byte {
	text := append(append(s.buf[:0], s.ctx...), s.pend...)
	s.buf = text
	base := len(s.ctx)
	limit := len(text)
	if !final {
		limit = base + completeUTF8(text[base:])
	}
	start := base
	if s.inPEM {
		e, _, open := pemBody(text[:limit], base, base)
		if open && !final {
			s.keep(text, limit)
			return nil
		}
		s.inPEM = false
		start = e
	}
	seg := text[:limit]
	nt, ident := s.z.normalize(seg)
	s.sc.run(nt, final)
	hold := limit
	if !final {
		switch h := s.sc.hold; {
		case h >= len(nt):
		case ident:
			hold = h
		default:
			hold = int(s.z.offs[h])
		}
		if lb := norm.NFKC.LastBoundary(seg); lb >= 0 {
			hold = min(hold, lb)
		}
		hold = max(hold, start)
	}
	spans := s.spans[:0]
	var rules []int
	// Matches are final when they end before the hold; one that straddles
	// it moves the hold back to its start, which may make others
	// straddle, so repeat until stable.
	for changed := true; changed; {
		changed = false
		for _, m := range s.sc.ms {
			ms, me := s.span(m, ident)
			if ms >= start && ms < hold && me > hold {
				hold, changed = ms, true
			}
		}
	}
	if !final && limit-hold > 4*s.p.plan.maxHold {
		hold = s.overflow(hold, limit, ident)
	}
	for _, m := range s.sc.ms {
		ms, me := s.span(m, ident)
		if ms < start || me > hold {
			continue
		}
		ri := s.p.ruleOf[m.det]
		rules = append(rules, ri)
		if act := s.p.Rules[ri].Action; act != Audit && !s.p.DryRun {
			spans = append(spans, span{start: ms - start, end: me - start, label: s.p.plan.dets[m.det].label, key: string(nt[m.start:m.end])})
		}
	}
	if s.inPEM {
		// overflow cut a PEM block: [pemStart, hold) is one match.
		ri := s.p.ruleOf[detPEM]
		rules = append(rules, ri)
		if s.p.Rules[ri].Action != Audit && !s.p.DryRun {
			spans = append(spans, span{start: s.pemCut - start, end: hold - start, label: s.p.plan.dets[detPEM].label, key: "\x00cut"})
		}
	}
	for _, ri := range rules {
		s.counts[ri]++
	}
	sortSpans(spans)
	var out []byte
	if hold > start {
		ph := s.shared
		if ph == nil {
			ph = &s.ph
		}
		out = redactText(make([]byte, 0, hold-start+16), text[start:hold], spans, ph)
	}
	s.spans = spans[:0]
	s.keep(text, hold)
	return out
}

// span maps a match to the original text.
func (s *StreamScanner) span(m match, ident bool) (int, int) {
	if ident {
		return int(m.start), int(m.end)
	}
	return s.z.origSpan(int(m.start), int(m.end))
}

// overflow handles a hold larger than the bound. An open PEM block is
// redacted up to the end of the text and its body swallowed from the next
// chunk on; anything else is released up to the bound (a match straddling
// the cut is released whole, as found).
func (s *StreamScanner) overflow(hold, limit int, ident bool) int {
	if s.sc.pemOpen >= 0 {
		ps, _ := s.span(match{start: int32(s.sc.pemOpen), end: int32(s.sc.pemOpen + 1)}, ident)
		if ps == hold {
			s.inPEM, s.pemCut = true, ps
			return limit
		}
	}
	cut := limit - 4*s.p.plan.maxHold
	for cut > hold && cut < limit && !utf8.RuneStart(s.buf[cut]) {
		cut--
	}
	for _, m := range s.sc.ms {
		if ms, me := s.span(m, ident); ms < cut && me > cut {
			cut = me
		}
	}
	return max(hold, cut)
}

// keep makes text[hold:] the pending text and the end of text[:hold] the
// look-behind.
func (s *StreamScanner) keep(text []byte, hold int) {
	c := max(0, hold-ctxLen)
	s.ctx = append(s.ctx[:0], text[c:hold]...)
	s.pend = append(s.pend[:0], text[hold:]...)
}

// completeUTF8 returns the length of b without a trailing incomplete UTF-8
// sequence.
func completeUTF8(b []byte) int {
	for k := 1; k <= utf8.UTFMax && k <= len(b); k++ {
		if utf8.RuneStart(b[len(b)-k]) {
			if !utf8.FullRune(b[len(b)-k:]) {
				return len(b) - k
			}
			return len(b)
		}
	}
	return len(b)
}
