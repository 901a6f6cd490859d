package guard

// match is one detector hit in normalized text.
type match struct {
	start, end int32
	det        detID
}

// scan runs a plan over one normalized text in a single left-to-right pass.
// The loop touches each byte once through a 256-entry trigger table; work
// beyond that happens only where a trigger fires: at a word start whose first
// two bytes are a registered anchor (AKIA, ghp_, sk-, eyJ, an IBAN country
// code, the first word of an injection phrase, ...), at a digit cluster, or
// at '@', '+', '(', ':' and '-'. Verifiers are hand-written and look at a
// bounded window, so the pass is linear in the text.
//
// In stream mode (final false) the text may continue. A verifier that runs
// into the end of the text while its candidate is still viable records the
// candidate's start with more(); hold is the earliest such start, and the
// stream scanner releases only the text before it.
type scan struct {
	p       *plan
	t       []byte
	final   bool
	hold    int // len(t) when nothing is open
	pemOpen int // start of an unfinished PEM block with a complete header, or -1
	ms      []match
	groups  []group
	b64End  int    // end of the last base64 run examined
	nested  bool   // scanning decoded base64: do not decode again
	sub     *scan  // the scan of decoded base64, made on first use
	b64buf  []byte // decoded base64, wiped after each use
}

// run scans t and leaves the matches in s.ms, in the order found (mostly
// by start; email matches start before the '@' that triggered them).
func (s *scan) run(t []byte, final bool) {
	s.t, s.final, s.hold, s.pemOpen, s.b64End = t, final, len(t), -1, 0
	s.ms = s.ms[:0]
	p := s.p
	b64 := p.b64 && !s.nested
	cls := &p.cls
	n := len(t)
	for i := 0; i < n; {
		c := t[i]
		k := cls[c]
		if k == 0 {
			i++
			continue
		}
		var next int
		if k&tWord != 0 {
			// A word starts at i (words are skipped whole, so every word
			// byte seen here is a start). Most words need nothing more
			// than this skip and one bit test.
			j := i + 1
			for j < n && cls[t[j]]&tWord != 0 {
				j++
			}
			if j < n && t[j] != ':' && !isDigit(c) && j-i < minB64Word && p.pairBits[pairKey(t, i)>>6]&(1<<(pairKey(t, i)&63)) == 0 {
				i = j
				continue
			}
			// A long word may be part of a base64 run.
			if b64 && j-i >= minB64Word && i >= s.b64End {
				s.base64(i, j)
			}
			next = s.word(i, j)
		} else {
			next = s.punct(i, k)
		}
		// Never resume in the middle of a word: only word starts begin
		// matches.
		for next < n && next > 0 && isWord(t[next-1]) && isWord(t[next]) {
			next++
		}
		i = next
	}
	if !final {
		s.tail()
	}
	for i := range s.p.regexes {
		s.regex(&s.p.regexes[i])
	}
}

// more records that a candidate starting at start may still become a match
// once more text arrives. It is a no-op on final text.
func (s *scan) more(start int) {
	if !s.final && start < s.hold {
		s.hold = max(start, 0)
	}
}

// emit records a match.
func (s *scan) emit(det detID, start, end int) {
	s.ms = append(s.ms, match{start: int32(start), end: int32(end), det: det})
}

// pairKey is the anchor key of the two bytes at t[i:] (i+1 < len(t)).
func pairKey(t []byte, i int) uint16 {
	if i+1 >= len(t) {
		return 0
	}
	return uint16(t[i])<<8 | uint16(t[i+1])
}

// word handles the word t[i:j] and returns where to resume.
func (s *scan) word(i, j int) int {
	t, n, p := s.t, len(s.t), s.p
	if (j == n || t[j] == ':') && j-i <= 4 && p.on[detIP] && allHex(t[i:j]) {
		if e := s.ipv6(i); e > 0 {
			return e
		}
	}
	if isDigit(t[i]) {
		if p.numeric {
			return max(j, s.numbers(i))
		}
		return j
	}
	if i+1 >= n {
		if p.first[t[i]] {
			s.more(i)
		}
		return j
	}
	key := pairKey(t, i)
	if p.pairBits[key>>6]&(1<<(key&63)) == 0 {
		return j
	}
	if e := s.anchors(i, p.anchorsAt(t, i), false); e > 0 {
		return e
	}
	return j
}

// punct handles a non-word trigger byte at i and returns where to resume.
func (s *scan) punct(i int, k uint8) int {
	if k&tAt != 0 {
		if e := s.email(i); e > 0 {
			return e
		}
	}
	if k&tPlus != 0 {
		if e := s.e164(i); e > 0 {
			return e
		}
	}
	if k&tParen != 0 {
		if e := s.parenPhone(i); e > 0 {
			return e
		}
	}
	if k&tColon != 0 {
		t := s.t
		if i+1 < len(t) && t[i+1] == ':' && (i == 0 || !(isWord(t[i-1]) || t[i-1] == ':')) {
			if e := s.ipv6(i); e > 0 {
				return e
			}
		} else if i+1 == len(t) {
			s.more(i)
		}
	}
	if k&tDash != 0 {
		if e := s.pem(i); e > 0 {
			return e
		}
	}
	if k&tLit != 0 {
		if i+1 >= len(s.t) {
			s.more(i)
		} else {
			if e := s.anchors(i, s.p.anchorsAt(s.t, i), true); e > 0 {
				return e
			}
		}
	}
	return i + 1
}

// anchors tries each anchor filed under the key at i, in order, and emits
// the first match. litOnly restricts the attempt to custom literals (at a
// non-word trigger byte). It returns the match end, or -1.
func (s *scan) anchors(i int, as []anchor, litOnly bool) int {
	for _, a := range as {
		if litOnly && a.kind != akLiteral {
			continue
		}
		e := -1
		switch a.kind {
		case akToken:
			e = s.token(i, &tokenSpecs[a.idx])
		case akIBAN:
			e = s.iban(i)
		case akJWT:
			e = s.jwt(i)
		case akTollgate:
			e = s.tollgate(i)
		case akPhrase:
			// Most words sharing a phrase's first two letters differ
			// by the third; test it before the full match.
			alt := phrases[a.idx][0].alts[a.alt]
			if i+2 < len(s.t) && lower(s.t[i+2]) != alt[2] && !(alt[2] == ' ' && isSpace(s.t[i+2])) {
				continue
			}
			e = s.phrase(i, phrases[a.idx], a.alt)
		case akLiteral:
			e = s.literal(i, &s.p.lits[a.idx])
		}
		if e > 0 {
			s.emit(a.det, i, e)
			return e
		}
	}
	return -1
}

// tail holds back, in stream mode, what the text's last bytes could still
// grow into: the trailing word (any anchor, an IPv6 group, an IBAN), the
// trailing run of email local-part characters and, when base64 runs are
// decoded, the trailing base64 run up to the hold bound.
func (s *scan) tail() {
	t, n := s.t, len(s.t)
	j := n
	for j > 0 && n-j <= maxTailWord && isWord(t[j-1]) {
		j--
	}
	if j < n && n-j <= maxTailWord {
		s.more(j)
	}
	if s.p.on[detEmail] {
		j = n
		for j > 0 && n-j <= maxLocal && isLocal(t[j-1]) {
			j--
		}
		if j < n && n-j <= maxLocal {
			s.more(j)
		}
	}
	if s.p.b64 && !s.nested {
		if j = b64Tail(t, s.p.maxHold); j < n {
			s.more(j)
		}
	}
}

// b64Tail returns where the base64 run that t ends in, possibly wrapped
// over several lines, begins, or len(t) when t does not end in one or the
// run is longer than limit.
func b64Tail(t []byte, limit int) int {
	n := len(t)
	j := n
	for j > 0 && n-j <= limit {
		switch c := t[j-1]; {
		case isB64(c) || c == '=' || c == '\n' || c == '\r':
			j--
		case c == ' ' || c == '\t':
			k := j - 1
			for k > 0 && (t[k-1] == ' ' || t[k-1] == '\t') {
				k--
			}
			if k == 0 || t[k-1] != '\n' {
				return j // spaces after text, not an indented line
			}
			j = k
		default:
			return j
		}
	}
	if n-j > limit {
		return n
	}
	return j
}

// maxTailWord bounds the trailing word a stream holds back. A longer word
// can only start a match at its start, which its verifiers already judged.
const maxTailWord = 64

// allHex reports whether b is non-empty hex digits.
func allHex(b []byte) bool {
	for _, c := range b {
		if !is(c, ccHex) {
			return false
		}
	}
	return len(b) > 0
}
