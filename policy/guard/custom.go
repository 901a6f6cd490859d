package guard

import (
	"bytes"
	"regexp"
	"regexp/syntax"
	"unicode/utf8"
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

// compileCustomRegex compiles a custom expression for the normalized text
// it runs on, in which look-alike letters and other scripts' digits are
// folded to ASCII (see fold.go): the expression's literal characters are
// folded the same way, and a character class that holds such characters
// but no ASCII letter or digit ([а-я], \p{Greek}, [٠-٩]) also takes the
// ASCII characters they fold to. A class that mixes ASCII letters or digits
// with others, including every negated class, is kept as written. An
// expression with nothing to fold compiles as written.
func compileCustomRegex(expr string) (*regexp.Regexp, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, err
	}
	if !foldSyntax(re) {
		return regexp.Compile(expr)
	}
	return regexp.Compile(re.String())
}

// foldSyntax folds re in place and reports whether it changed.
func foldSyntax(re *syntax.Regexp) bool {
	changed := false
	switch re.Op {
	case syntax.OpLiteral:
		for i, r := range re.Rune {
			if f := foldRune(r); f != 0 {
				re.Rune[i], changed = rune(f), true
			}
		}
	case syntax.OpCharClass:
		if add := classFolds(re.Rune); len(add) > 0 {
			re.Rune, changed = append(re.Rune, add...), true
		}
	}
	for _, sub := range re.Sub {
		changed = foldSyntax(sub) || changed
	}
	return changed
}

// classFolds returns, as ranges to add to the class cls (pairs of bounds),
// the ASCII characters that its members fold to, or nil when it has an
// ASCII letter or digit of its own.
func classFolds(cls []rune) []rune {
	in := func(r rune) bool {
		for k := 0; k+1 < len(cls); k += 2 {
			if cls[k] <= r && r <= cls[k+1] {
				return true
			}
		}
		return false
	}
	for c := range rune(utf8.RuneSelf) {
		if isAlnum(byte(c)) && in(c) {
			return nil
		}
	}
	var seen [utf8.RuneSelf]bool
	var add []rune
	take := func(r rune) {
		if f := foldRune(r); f != 0 && !seen[f] && in(r) {
			seen[f] = true
			add = append(add, rune(f), rune(f))
		}
	}
	for r := rune(foldLo); r < foldHi; r++ {
		take(r)
	}
	for r := rune(lisuLo); r < lisuHi; r++ {
		take(r)
	}
	for _, g := range ndRanges {
		for r := g.lo; r <= g.hi; r++ {
			take(r)
		}
	}
	return add
}
