package guard

// The injection.phrase detector is a heuristic: a short list of phrases
// that recur in prompt-injection and jailbreak attempts. It catches the
// copy-paste attacks, not a determined attacker (who can paraphrase, use
// another language or split the phrase), and it can fire on text that
// discusses such attacks. Use it with audit, or with block where prompts
// are known not to discuss prompt injection.
//
// A phrase is a sequence of slots; each slot is a list of alternatives, and
// an optional slot may be skipped. Matching is ASCII case-insensitive after
// normalization; words are separated by one or more whitespace characters
// (a space inside an alternative also matches any run of whitespace), and
// each alternative must end at a word boundary.

// slot is one position of a phrase.
type slot struct {
	alts []string // lower case
	opt  bool
}

// maxPhrase bounds the length of a phrase match.
const maxPhrase = 160

var (
	prior  = slot{alts: []string{"previous", "prior", "above", "earlier", "preceding", "former"}}
	orders = slot{alts: []string{"instructions", "instruction", "prompts", "prompt", "directions", "directives", "rules", "guidelines", "commands", "context"}}
	system = slot{alts: []string{"system prompt", "system message", "system instructions", "hidden instructions", "initial instructions", "original instructions"}}
)

// phrases is the documented phrase list.
var phrases = [][]slot{
	// "ignore all previous instructions", "disregard the above rules", ...
	{
		{alts: []string{"ignore", "disregard", "forget", "skip", "override", "bypass"}},
		{alts: []string{"all"}, opt: true},
		{alts: []string{"of"}, opt: true},
		{alts: []string{"the", "your", "my", "any", "these", "those"}, opt: true},
		prior,
		orders,
	},
	// "forget everything above"
	{
		{alts: []string{"ignore", "disregard", "forget"}},
		{alts: []string{"everything", "anything", "all"}},
		{alts: []string{"above", "before", "prior", "previously", "earlier", "you were told"}},
	},
	// "ignore your system prompt", "bypass your content policy"
	{
		{alts: []string{"ignore", "disregard", "forget", "override", "bypass"}},
		{alts: []string{"your", "the", "all"}, opt: true},
		{alts: []string{"system prompt", "system message", "system instructions", "safety guidelines", "safety rules", "content policy", "programming", "restrictions"}},
	},
	// "reveal your system prompt", "print the hidden instructions"
	{
		{alts: []string{"reveal", "print", "show", "output", "repeat", "display", "leak", "dump"}},
		{alts: []string{"me"}, opt: true},
		{alts: []string{"your", "the"}, opt: true},
		{alts: []string{"full", "entire", "exact", "original", "secret"}, opt: true},
		system,
	},
	// "you are now DAN", "you are now in developer mode"
	{
		{alts: []string{"you are now", "from now on you are"}},
		{alts: []string{"dan", "in developer mode", "in dan mode", "jailbroken", "unrestricted", "an unrestricted", "free from all restrictions"}},
	},
	// "enable developer mode"
	{
		{alts: []string{"enable", "activate", "enter"}},
		{alts: []string{"developer mode", "dan mode", "jailbreak mode", "god mode"}},
	},
	// "do anything now" (the DAN prompt)
	{
		{alts: []string{"do anything now"}},
	},
	// "pretend you have no restrictions"
	{
		{alts: []string{"pretend", "imagine", "act as if"}},
		{alts: []string{"you have no", "there are no"}},
		{alts: []string{"restrictions", "rules", "guidelines", "filters", "limits"}},
	},
}

// phrase verifies phrase ph, starting with alternative alt of its first
// slot, at the word start i and returns the end of the match, or -1.
func (s *scan) phrase(i int, ph []slot, alt int32) int {
	k := s.words(i, i, ph[0].alts[alt])
	if k < 0 || len(ph) == 1 {
		return k
	}
	m := s.spaces(i, k)
	if m < 0 {
		return -1
	}
	return s.slots(i, m, ph[1:])
}

// slots matches the slots from j, where a word begins; start is where the
// phrase began (for holds).
func (s *scan) slots(start, j int, sl []slot) int {
	if len(sl) == 0 {
		return j
	}
	if j-start > maxPhrase {
		return -1
	}
	for _, alt := range sl[0].alts {
		if j < len(s.t) && lower(s.t[j]) != alt[0] {
			continue
		}
		k := s.words(start, j, alt)
		if k < 0 {
			continue
		}
		if len(sl) == 1 {
			return k
		}
		m := s.spaces(start, k)
		if m < 0 {
			continue
		}
		if e := s.slots(start, m, sl[1:]); e >= 0 {
			return e
		}
	}
	if sl[0].opt {
		return s.slots(start, j, sl[1:])
	}
	return -1
}

// words matches alt (lower case; a space matches a whitespace run) at j and
// requires a word boundary after it. It returns the end, or -1.
func (s *scan) words(start, j int, alt string) int {
	t, n := s.t, len(s.t)
	for a := 0; a < len(alt); a++ {
		if j >= n {
			s.more(start)
			return -1
		}
		if alt[a] == ' ' {
			if !isSpace(t[j]) {
				return -1
			}
			for j < n && isSpace(t[j]) {
				j++
			}
			continue
		}
		if lower(t[j]) != alt[a] {
			return -1
		}
		j++
	}
	if j == n && !s.final {
		s.more(start)
		return -1
	}
	if j < n && isWord(t[j]) {
		return -1
	}
	return j
}

// spaces skips the whitespace run at j that must separate two slots and
// returns where the next word begins, or -1.
func (s *scan) spaces(start, j int) int {
	t, n := s.t, len(s.t)
	k := j
	for k < n && isSpace(t[k]) {
		k++
	}
	if k == n {
		s.more(start)
		return -1
	}
	if k == j {
		return -1
	}
	return k
}
