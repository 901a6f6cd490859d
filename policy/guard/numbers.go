package guard

// group is one digit run of a cluster: s and e delimit it, sep is the
// separator byte before it (0 for the first).
type group struct {
	s, e int32
	sep  byte
}

func (g group) len() int { return int(g.e - g.s) }

// isNumSep reports the separators allowed inside a digit cluster.
func isNumSep(c byte) bool { return c == ' ' || c == '-' || c == '.' }

// numbers reads the digit cluster starting at i (digit runs joined by single
// spaces, dashes or dots) and tries, at each group that can start a number,
// the US SSN, NANP phone, IPv4 and payment card shapes. A cluster glued to a
// word ("v1.2.3.4", a UUID, "123abc") is not matched at that edge. It
// returns the end of the cluster.
func (s *scan) numbers(i int) int {
	t, n := s.t, len(s.t)
	gs := s.groups[:0]
	j := i
	for {
		k := j
		for k < n && isDigit(t[k]) {
			k++
		}
		var sep byte
		if len(gs) > 0 {
			sep = t[j-1]
		}
		gs = append(gs, group{s: int32(j), e: int32(k), sep: sep})
		if k+1 < n && isNumSep(t[k]) && isDigit(t[k+1]) {
			j = k + 1
			continue
		}
		j = k
		break
	}
	s.groups = gs
	open := !s.final && (j == n || (j+1 == n && isNumSep(t[j])))
	if len(gs) == 1 && gs[0].len() < 13 && !open {
		// A lone short number ("2024", "(3)") can only be a card if it
		// has 13 or more digits; every other shape has several groups.
		return j
	}
	leftOK := !(i > 1 && (t[i-1] == '.' || t[i-1] == '-') && isAlnum(t[i-2]))
	rightOK := !(j < n && (isWord(t[j]) || (j+1 < n && (t[j] == '.' || t[j] == '-') && isAlnum(t[j+1]))))
	last := len(gs) - 1
	for a := 0; a <= last; {
		// Shapes look at most five groups ahead plus the separator after
		// them; closer to an open end than that, wait for more text.
		if open && a+6 > last {
			s.more(int(gs[a].s))
			break
		}
		if (a == 0 && !leftOK) || (a > 0 && gs[a].sep != ' ') {
			a++
			continue
		}
		b, det := s.numberAt(gs, a, rightOK)
		if b < 0 {
			a++
			continue
		}
		s.emit(det, int(gs[a].s), int(gs[b].e))
		a = b + 1
	}
	return j
}

// numberAt tries the number shapes on groups starting at a and returns the
// last group of the first match and its detector, or -1.
func (s *scan) numberAt(gs []group, a int, rightOK bool) (int, detID) {
	t, on, last := s.t, s.p.on, len(gs)-1
	edge := func(b int) bool {
		if b == last {
			return rightOK
		}
		return gs[b+1].sep == ' '
	}
	lens := func(b int, want ...int) bool {
		if b+len(want)-1 > last {
			return false
		}
		for k, w := range want {
			if gs[b+k].len() != w {
				return false
			}
		}
		return true
	}
	if on[detSSN] && lens(a, 3, 2, 4) {
		sep := gs[a+1].sep
		if (sep == '-' || sep == ' ') && gs[a+2].sep == sep && edge(a+2) &&
			validSSN(t[gs[a].s:gs[a].e], t[gs[a+1].s:gs[a+1].e], t[gs[a+2].s:gs[a+2].e]) {
			return a + 2, detSSN
		}
	}
	if on[detPhone] {
		b := a
		if gs[a].len() == 1 && t[gs[a].s] == '1' {
			b = a + 1
		}
		if lens(b, 3, 3, 4) {
			sep := gs[b+1].sep
			if sep != 0 && gs[b+2].sep == sep && (b == a || gs[b].sep == sep) && edge(b+2) &&
				validNANP(t[gs[b].s:gs[b].e], t[gs[b+1].s:gs[b+1].e]) {
				return b + 2, detPhone
			}
		}
	}
	if on[detIP] && a+3 <= last {
		ok := edge(a + 3)
		for k := a; ok && k <= a+3; k++ {
			ok = (k == a || gs[k].sep == '.') && validOctet(t[gs[k].s:gs[k].e])
		}
		if ok {
			return a + 3, detIP
		}
	}
	if on[detCard] {
		if b := s.cardAt(gs, a, edge); b >= 0 {
			return b, detCard
		}
	}
	return -1, 0
}

// cardAt looks for a payment card number on groups a..: 13 to 19 digits,
// either one run or grouped 4-4-4-4(-1..4), 4-6-5 or 4-6-4 with one kind of
// separator (spaces, dashes or dots, never mixed), with a plausible issuer
// prefix for its length and a valid Luhn check digit. Longer candidates are
// tried first.
func (s *scan) cardAt(gs []group, a int, edge func(int) bool) int {
	var digits [19]byte
	var ends [6]int
	var counts [6]int
	nc, nd := 0, 0
	var sep byte
	for b := a; b < len(gs) && b < a+6; b++ {
		if b > a {
			if b > a+1 && gs[b].sep != sep {
				break
			}
			sep = gs[b].sep
		}
		if nd+gs[b].len() > len(digits) {
			break
		}
		nd += copy(digits[nd:], s.t[gs[b].s:gs[b].e])
		ends[nc], counts[nc] = b, nd
		nc++
	}
	for c := nc - 1; c >= 0; c-- {
		b, l := ends[c], counts[c]
		if l < 13 || !edge(b) || !cardGrouping(gs[a:b+1]) {
			continue
		}
		if plausibleIIN(digits[:l]) && luhn(digits[:l]) {
			return b
		}
	}
	return -1
}

// cardGrouping reports whether the groups are one run or a printed card
// grouping.
func cardGrouping(gs []group) bool {
	switch len(gs) {
	case 1:
		return true
	case 3:
		if gs[0].len() == 4 && gs[1].len() == 6 && (gs[2].len() == 5 || gs[2].len() == 4) {
			return true
		}
	case 2:
		return false
	}
	for _, g := range gs[:len(gs)-1] {
		if g.len() != 4 {
			return false
		}
	}
	return gs[len(gs)-1].len() <= 4
}

// luhn checks the Luhn (mod 10) check digit of ASCII digits.
func luhn(d []byte) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// plausibleIIN reports whether the issuer prefix of d is assigned to a
// network that issues numbers of length len(d).
func plausibleIIN(d []byte) bool {
	l := len(d)
	num := func(k int) int {
		v := 0
		for _, c := range d[:k] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	p2, p3, p4, p6 := num(2), num(3), num(4), num(6)
	switch {
	case d[0] == '4': // Visa
		return l == 13 || l == 16 || l == 19
	case p4 >= 2200 && p4 <= 2204: // Mir
		return l >= 16 && l <= 19
	case (p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720): // Mastercard
		return l == 16
	case p2 == 34 || p2 == 37: // American Express
		return l == 15
	case p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649) || (p6 >= 622126 && p6 <= 622925): // Discover
		return l >= 16 && l <= 19
	case p4 >= 3528 && p4 <= 3589: // JCB
		return l >= 16 && l <= 19
	case (p3 >= 300 && p3 <= 305) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39: // Diners Club
		return l >= 14 && l <= 19
	case p2 == 62 || p2 == 81: // UnionPay
		return l >= 16 && l <= 19
	case p2 == 50 || (p2 >= 56 && p2 <= 69): // Maestro and other 5/6 ranges
		return l >= 13 && l <= 19
	}
	return false
}

// validSSN rejects numbers the SSA never issues: area 000, 666 or 900-999,
// group 00, serial 0000, and the two numbers voided after publication.
func validSSN(area, grp, serial []byte) bool {
	a, g, sr := string(area), string(grp), string(serial)
	switch {
	case a == "000" || a == "666" || a[0] == '9' || g == "00" || sr == "0000":
		return false
	case a+g+sr == "078051120" || a+g+sr == "219099999":
		return false
	}
	return true
}

// validNANP checks a North American area code and exchange: both start with
// 2-9, and the area code is not an N11 service code.
func validNANP(area, exch []byte) bool {
	return area[0] >= '2' && exch[0] >= '2' && !(area[1] == '1' && area[2] == '1')
}

// validOctet checks one IPv4 octet: 0-255 without leading zeros.
func validOctet(b []byte) bool {
	if len(b) == 0 || len(b) > 3 || (len(b) > 1 && b[0] == '0') {
		return false
	}
	v := 0
	for _, c := range b {
		v = v*10 + int(c-'0')
	}
	return v <= 255
}

// e164 verifies an international number at the '+' at i: digit runs joined
// by single spaces, dashes or dots, with optional parenthesized parts such as
// "(0)"; 9 to 15 digits in all, a country code starting 1-9, and for +1 a
// valid NANP number of 11 digits.
func (s *scan) e164(i int) int {
	t, n := s.t, len(s.t)
	if i > 0 && (isWord(t[i-1]) || t[i-1] == '+') {
		return -1
	}
	if i+1 >= n {
		s.more(i)
		return -1
	}
	if t[i+1] < '1' || t[i+1] > '9' {
		return -1
	}
	var d [15]byte
	nd, j, end := 0, i+1, -1
	for {
		k := j
		paren := j < n && t[j] == '('
		if paren {
			k++
		}
		ds := k
		for k < n && isDigit(t[k]) {
			k++
		}
		if k == n && !s.final {
			s.more(i)
			return -1
		}
		if k == ds || (paren && (k >= n || t[k] != ')')) {
			break
		}
		if nd+k-ds > len(d) {
			return -1
		}
		nd += copy(d[nd:], t[ds:k])
		if paren {
			k++
		}
		j, end = k, k
		if j < n && (t[j] == '(' || (paren && isDigit(t[j]))) {
			continue
		}
		if j+1 < n && isNumSep(t[j]) && (isDigit(t[j+1]) || t[j+1] == '(') {
			j++
			continue
		}
		if j+1 >= n && !s.final {
			s.more(i)
			return -1
		}
		break
	}
	if nd < 9 || end < 0 || (end < n && isWord(t[end])) {
		return -1
	}
	if d[0] == '1' && (nd != 11 || !validNANP(d[1:4], d[4:7])) {
		return -1
	}
	s.emit(detPhone, i, end)
	return end
}

// parenPhone verifies "(415) 555-2671", "(415)555-2671" or "(415) 555 2671"
// at the '(' at i.
func (s *scan) parenPhone(i int) int {
	t, n := s.t, len(s.t)
	if i > 0 && isWord(t[i-1]) {
		return -1
	}
	j := i + 1
	// digits reads cnt digits from k; running out of text while they are
	// still digits holds the candidate.
	digits := func(k, cnt int) (int, bool) {
		for e := k + cnt; k < e; k++ {
			if k >= n {
				s.more(i)
				return k, false
			}
			if !isDigit(t[k]) {
				return k, false
			}
		}
		return k, true
	}
	area := j
	j, ok := digits(j, 3)
	if !ok {
		return -1
	}
	if j >= n {
		s.more(i)
		return -1
	}
	if t[j] != ')' {
		return -1
	}
	j++
	if j < n && t[j] == ' ' {
		j++
	}
	exch := j
	if j, ok = digits(j, 3); !ok {
		return -1
	}
	if j >= n {
		s.more(i)
		return -1
	}
	if isNumSep(t[j]) {
		j++
	}
	if j, ok = digits(j, 4); !ok {
		return -1
	}
	if j == n && !s.final {
		s.more(i)
		return -1
	}
	if j < n && (isWord(t[j]) || (j+1 < n && isNumSep(t[j]) && isDigit(t[j+1]))) {
		return -1
	}
	if j+1 == n && isNumSep(t[j]) && !s.final {
		s.more(i)
		return -1
	}
	if !validNANP(t[area:area+3], t[exch:exch+3]) {
		return -1
	}
	s.emit(detPhone, i, j)
	return j
}
