package guard

import (
	"bytes"
	"regexp"
)

// literal is one entry of a custom literal list, normalized like the text
// it is matched against (NFKC, invisible characters dropped, whitespace runs
// collapsed to one space) and lower-cased when fold is set. When the literal starts (ends) with a word character the
// text must not have a word character just before (after) it, so "acme"
// does not fire inside "acmetrics".
type literal struct {
	text []byte
	fold bool
	det  detID
}

// literal verifies l at i and returns the end of the match, or -1. A space
// in the literal matches any run of whitespace. The caller has already
// checked the word start when the literal begins with a word character.
func (s *scan) literal(i int, l *literal) int {
	t, n := s.t, len(s.t)
	j := i
	for _, c := range l.text {
		if j >= n {
			s.more(i)
			return -1
		}
		if c == ' ' {
			if !isSpace(t[j]) {
				return -1
			}
			for j < n && isSpace(t[j]) {
				j++
			}
			continue
		}
		b := t[j]
		if l.fold {
			b = lower(b)
		}
		if b != c {
			return -1
		}
		j++
	}
	if !isWord(l.text[len(l.text)-1]) {
		return j
	}
	if j == n && !s.final {
		s.more(i)
		return -1
	}
	if j < n && isWord(t[j]) {
		return -1
	}
	return j
}

// customRegex is a regular expression detector. Go's regexp is RE2: linear
// in the text, no backtracking blow-up. It runs once over each normalized
// text; a literal prefix, when the expression has one, is found by the
// regexp package with a fast substring search before the automaton runs.
type customRegex struct {
	re     *regexp.Regexp
	prefix []byte
	det    detID
	maxLen int
}

// regex runs r over the text. In stream mode, a match that touches the end
// of the text may still grow, and a match may yet start in the last
// maxLen-1 bytes: both are held back (from the first unmatched occurrence of
// the literal prefix, when there is one).
func (s *scan) regex(r *customRegex) {
	t, n := s.t, len(s.t)
	locs := r.re.FindAllIndex(t, -1)
	for _, m := range locs {
		if m[1] == m[0] {
			continue
		}
		if !s.final && m[1] == n && n-m[0] < r.maxLen {
			s.more(m[0])
			continue
		}
		s.emit(r.det, m[0], m[1])
	}
	if s.final {
		return
	}
	w := max(0, n-r.maxLen+1)
	if len(r.prefix) == 0 {
		s.more(w)
		return
	}
	for p := w; p < n; {
		k := bytes.Index(t[p:], r.prefix)
		if k < 0 {
			break
		}
		if !startsMatch(locs, p+k) {
			s.more(p + k)
			return
		}
		p += k + 1
	}
	for p := max(w, n-len(r.prefix)+1); p < n; p++ {
		if bytes.HasPrefix(r.prefix, t[p:]) {
			s.more(p)
			return
		}
	}
}

// startsMatch reports whether some match in locs starts at p.
func startsMatch(locs [][]int, p int) bool {
	for _, m := range locs {
		if m[0] == p {
			return true
		}
	}
	return false
}
