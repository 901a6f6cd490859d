package guard

import (
	"net/netip"
)

// maxLocal is the longest email local part (RFC 5321).
const maxLocal = 64

// email verifies an address around the '@' at at: a local part of
// [A-Za-z0-9._%+-] (not starting or ending with '.'), then at least two
// domain labels of [A-Za-z0-9-] and an alphabetic top-level label of two or
// more letters. A trailing '.' (end of sentence) is not part of the match.
func (s *scan) email(at int) int {
	t, n := s.t, len(s.t)
	k := at
	for k > 0 && at-k <= maxLocal && isLocal(t[k-1]) {
		k--
	}
	if at-k > maxLocal {
		return -1
	}
	for k < at && t[k] == '.' {
		k++
	}
	if k == at || t[at-1] == '.' {
		return -1
	}
	j, labels := at+1, 0
	var lastStart, lastEnd int
	for {
		ls := j
		for j < n && j-at <= 255 && (isAlnum(t[j]) || t[j] == '-') {
			j++
		}
		if j == n && !s.final {
			s.more(k)
			return -1
		}
		if j == ls || t[ls] == '-' || t[j-1] == '-' {
			break
		}
		labels++
		lastStart, lastEnd = ls, j
		if j+1 < n && t[j] == '.' && isAlnum(t[j+1]) {
			j++
			continue
		}
		if j+1 == n && t[j] == '.' && !s.final {
			s.more(k)
			return -1
		}
		break
	}
	if labels < 2 || lastEnd-lastStart < 2 {
		return -1
	}
	for _, c := range t[lastStart:lastEnd] {
		if !is(c, ccUpper|ccLower) {
			return -1
		}
	}
	if lastEnd < n && (t[lastEnd] == '_' || t[lastEnd] == '@' || t[lastEnd] == '-') {
		return -1
	}
	s.emit(detEmail, k, lastEnd)
	return lastEnd
}

// maxIPv6 is the longest textual IPv6 address (with an embedded IPv4).
const maxIPv6 = 45

// ipv6 verifies an IPv6 address starting at i (a hex group or "::"). To keep
// clock times, MAC addresses and C++ scopes out, it needs a valid address
// with at least two non-empty groups and at least one decimal digit.
func (s *scan) ipv6(i int) int {
	t, n := s.t, len(s.t)
	j, groups, colons, double, digit, inGroup := i, 0, 0, false, false, false
	for j < n && j-i <= maxIPv6 && (is(t[j], ccHex) || t[j] == ':' || t[j] == '.') {
		switch c := t[j]; {
		case c == ':':
			colons++
			double = double || (j > i && t[j-1] == ':')
			inGroup = false
		case !inGroup:
			inGroup = true
			groups++
			fallthrough
		default:
			digit = digit || isDigit(c)
		}
		j++
	}
	if j == n && !s.final {
		s.more(i)
		return -1
	}
	if j-i > maxIPv6 || (j < n && isWord(t[j])) {
		return -1
	}
	e := j
	for e > i && t[e-1] == '.' {
		e--
	}
	if e-i >= 2 && t[e-1] == ':' && t[e-2] != ':' {
		e--
	}
	// Cheap shape checks before parsing: "::" or six or seven colons.
	if groups < 2 || !digit || !(double || colons >= 6) {
		return -1
	}
	addr, err := netip.ParseAddr(string(t[i:e]))
	if err != nil || !addr.Is6() {
		return -1
	}
	s.emit(detIP, i, e)
	return e
}

// iban verifies an IBAN at i: a country code from the registry, two check
// digits, then uppercase letters and digits to the country's exact length,
// either unbroken or in groups of four separated by single spaces, with a
// valid ISO 7064 mod-97 checksum.
func (s *scan) iban(i int) int {
	t, n := s.t, len(s.t)
	if i+4 > n {
		if !s.final && partialIBAN(t[i:]) {
			s.more(i)
		}
		return -1
	}
	l := ibanLengths[string(t[i:i+2])]
	if l == 0 || !isDigit(t[i+2]) || !isDigit(t[i+3]) {
		return -1
	}
	var buf [34]byte
	copy(buf[:], t[i:i+4])
	cnt, grp, j := 4, 4, i+4
	for cnt < l {
		if j >= n {
			s.more(i)
			return -1
		}
		c := t[j]
		switch {
		case isUpper(c) || isDigit(c):
			buf[cnt] = c
			cnt++
			grp++
			j++
		case c == ' ' && grp == 4 && j+1 < n && (isUpper(t[j+1]) || isDigit(t[j+1])):
			grp = 0
			j++
		case c == ' ' && grp == 4 && j+1 == n:
			s.more(i)
			return -1
		default:
			return -1
		}
	}
	if j == n && !s.final {
		s.more(i)
		return -1
	}
	if j < n && isAlnum(t[j]) {
		return -1
	}
	if !mod97(buf[:l]) {
		return -1
	}
	return j
}

// partialIBAN reports whether b (shorter than four bytes) could begin an
// IBAN.
func partialIBAN(b []byte) bool {
	for k, c := range b {
		if (k < 2 && !isUpper(c)) || (k >= 2 && !isDigit(c)) {
			return false
		}
	}
	return len(b) < 2 || ibanLengths[string(b[:2])] > 0
}

// mod97 checks an IBAN: moved the first four characters to the end, read
// letters as 10..35, the number mod 97 must be 1.
func mod97(iban []byte) bool {
	r := 0
	for k := range iban {
		c := iban[(k+4)%len(iban)]
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A') + 10) % 97
		}
	}
	return r == 1
}

// ibanLengths is the IBAN length of each country in the SWIFT IBAN registry.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
	"DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
	"FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
	"GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
	"IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
	"LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
	"MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
	"PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
	"SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
	"YE": 30,
}
