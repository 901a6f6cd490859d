package guard

import (
	"bytes"
	"encoding/base64"
)

// Bounds on secret lengths.
const (
	// maxTokenBody is the longest body accepted after a token prefix.
	maxTokenBody = 255
	// maxJWT is the longest JWT matched (all parts and dots).
	maxJWT = 8192
	// maxPEM bounds a PEM block; real private keys are under 10 KiB.
	maxPEM = 64 << 10
)

// tokenSpec is a secret made of a fixed prefix and a body from one character
// class, with a length range. The byte after the body must not be a word
// character or a body character, so a longer token is not cut in two.
type tokenSpec struct {
	det      detID
	prefix   string
	body     uint16 // ccXXX mask
	min, max int
	// check, if set, validates the body further.
	check func(body []byte) bool
}

// tokenSpecs lists the prefix-anchored secrets. Within one two-byte key
// they are tried in this order, so more specific prefixes come first
// (sk-ant- before sk-).
var tokenSpecs = []tokenSpec{
	// AWS access key ids: long-term (AKIA), temporary (ASIA) and older
	// prefixes; 20 characters in all.
	{det: detAWS, prefix: "AKIA", body: ccUpper | ccDigit, min: 16, max: 16},
	{det: detAWS, prefix: "ASIA", body: ccUpper | ccDigit, min: 16, max: 16},
	{det: detAWS, prefix: "ABIA", body: ccUpper | ccDigit, min: 16, max: 16},
	{det: detAWS, prefix: "ACCA", body: ccUpper | ccDigit, min: 16, max: 16},
	{det: detAWS, prefix: "A3T", body: ccUpper | ccDigit, min: 17, max: 17},
	// GitHub: classic tokens (personal, OAuth, user-to-server,
	// server-to-server, refresh) and fine-grained personal access tokens.
	{det: detGitHub, prefix: "ghp_", body: ccAlnum, min: 36, max: maxTokenBody},
	{det: detGitHub, prefix: "gho_", body: ccAlnum, min: 36, max: maxTokenBody},
	{det: detGitHub, prefix: "ghu_", body: ccAlnum, min: 36, max: maxTokenBody},
	{det: detGitHub, prefix: "ghs_", body: ccAlnum, min: 36, max: maxTokenBody},
	{det: detGitHub, prefix: "ghr_", body: ccAlnum, min: 36, max: maxTokenBody},
	{det: detGitHub, prefix: "github_pat_", body: ccWord, min: 22, max: maxTokenBody},
	// Slack: bot, user, workspace, refresh, legacy and app-level tokens, and
	// incoming-webhook URLs.
	{det: detSlack, prefix: "xoxb-", body: ccAlnum | ccDash, min: 10, max: maxTokenBody, check: hasDigit},
	{det: detSlack, prefix: "xoxp-", body: ccAlnum | ccDash, min: 10, max: maxTokenBody, check: hasDigit},
	{det: detSlack, prefix: "xoxa-", body: ccAlnum | ccDash, min: 10, max: maxTokenBody, check: hasDigit},
	{det: detSlack, prefix: "xoxr-", body: ccAlnum | ccDash, min: 10, max: maxTokenBody, check: hasDigit},
	{det: detSlack, prefix: "xoxs-", body: ccAlnum | ccDash, min: 10, max: maxTokenBody, check: hasDigit},
	{det: detSlack, prefix: "xoxe-", body: ccAlnum | ccDash, min: 10, max: maxTokenBody, check: hasDigit},
	{det: detSlack, prefix: "xapp-", body: ccAlnum | ccDash, min: 10, max: maxTokenBody, check: hasDigit},
	{det: detSlack, prefix: "hooks.slack.com/services/", body: ccWord | ccSlash, min: 20, max: maxTokenBody, check: slackHook},
	// Stripe: secret and restricted keys, live and test, and webhook
	// signing secrets. Publishable keys (pk_) are public by design.
	{det: detStripe, prefix: "sk_live_", body: ccAlnum, min: 16, max: maxTokenBody},
	{det: detStripe, prefix: "sk_test_", body: ccAlnum, min: 16, max: maxTokenBody},
	{det: detStripe, prefix: "rk_live_", body: ccAlnum, min: 16, max: maxTokenBody},
	{det: detStripe, prefix: "rk_test_", body: ccAlnum, min: 16, max: maxTokenBody},
	{det: detStripe, prefix: "whsec_", body: ccAlnum, min: 24, max: maxTokenBody},
	// Google API keys: AIza and 35 URL-safe characters.
	{det: detGoogle, prefix: "AIza", body: ccB64URL, min: 35, max: 35},
	// Anthropic before OpenAI: both start with "sk-".
	{det: detAnthropic, prefix: "sk-ant-", body: ccB64URL, min: 32, max: maxTokenBody},
	// OpenAI: project, service-account, admin and legacy user keys. The
	// body must mix upper case, lower case and digits, which random keys
	// do and prose such as "sk-learn-is-a-python-library" does not.
	{det: detOpenAI, prefix: "sk-proj-", body: ccB64URL, min: 20, max: maxTokenBody, check: mixed},
	{det: detOpenAI, prefix: "sk-svcacct-", body: ccB64URL, min: 20, max: maxTokenBody, check: mixed},
	{det: detOpenAI, prefix: "sk-admin-", body: ccB64URL, min: 20, max: maxTokenBody, check: mixed},
	{det: detOpenAI, prefix: "sk-None-", body: ccB64URL, min: 20, max: maxTokenBody, check: mixed},
	{det: detOpenAI, prefix: "sk-", body: ccB64URL, min: 32, max: maxTokenBody, check: legacyOpenAI},
}

// token verifies spec at i and returns the end of the match, or -1.
func (s *scan) token(i int, spec *tokenSpec) int {
	t, n := s.t, len(s.t)
	p := spec.prefix
	if n-i < len(p) {
		if bytes.HasPrefix([]byte(p), t[i:]) {
			s.more(i)
		}
		return -1
	}
	if string(t[i:i+len(p)]) != p {
		return -1
	}
	j := i + len(p)
	k := j
	for k < n && k-j <= spec.max && is(t[k], spec.body) {
		k++
	}
	if k == n && !s.final {
		if k-j <= spec.max {
			s.more(i)
		}
		return -1
	}
	body := k - j
	if body < spec.min || body > spec.max || (k < n && is(t[k], ccWord|spec.body)) {
		return -1
	}
	if spec.check != nil && !spec.check(t[j:k]) {
		return -1
	}
	return k
}

// hasDigit reports whether b holds a decimal digit.
func hasDigit(b []byte) bool {
	for _, c := range b {
		if isDigit(c) {
			return true
		}
	}
	return false
}

// mixed reports whether b holds an upper-case letter, a lower-case letter
// and a digit.
func mixed(b []byte) bool {
	var seen uint16
	for _, c := range b {
		seen |= ctype[c]
	}
	return seen&ccUpper != 0 && seen&ccLower != 0 && seen&ccDigit != 0
}

// legacyOpenAI checks the body of a bare "sk-" key: mixed characters, and
// not an Anthropic key (whose own spec may be disabled in this profile).
func legacyOpenAI(b []byte) bool {
	return !bytes.HasPrefix(b, []byte("ant-")) && mixed(b)
}

// slackHook checks the path of a Slack webhook: T.../B.../secret.
func slackHook(b []byte) bool {
	return len(b) > 0 && b[0] == 'T'
}

// tollgate verifies a Tollgate virtual key: tgk_, a 12-character id, '_'
// and 49 characters (secret and checksum), all base62. The checksum is not
// verified: a mistyped key still exposes most of a secret.
func (s *scan) tollgate(i int) int {
	const idLen, restLen = 12, 49
	const total = 4 + idLen + 1 + restLen
	t, n := s.t, len(s.t)
	for k := 0; k < total; k++ {
		if i+k >= n {
			s.more(i)
			return -1
		}
		c := t[i+k]
		var ok bool
		switch {
		case k < 4:
			ok = c == "tgk_"[k]
		case k == 4+idLen:
			ok = c == '_'
		default:
			ok = isAlnum(c)
		}
		if !ok {
			return -1
		}
	}
	e := i + total
	if e == n && !s.final {
		s.more(i)
		return -1
	}
	if e < n && isWord(t[e]) {
		return -1
	}
	return e
}

// jwt verifies a JSON Web Token at i: three (or, for JWE, five)
// base64url parts joined by dots, the first decoding to a JSON object
// header with an "alg" or "enc" member, the second to a JSON object. A
// lone base64 blob that happens to start with eyJ is not a JWT.
func (s *scan) jwt(i int) int {
	t, n := s.t, len(s.t)
	if n-i < 3 {
		if bytes.HasPrefix([]byte("eyJ"), t[i:]) {
			s.more(i)
		}
		return -1
	}
	if t[i+2] != 'J' {
		return -1
	}
	var dots [4]int
	nd, k := 0, i
	for {
		ps := k
		for k < n && k-i <= maxJWT && is(t[k], ccB64URL) {
			k++
		}
		if k == n && !s.final {
			if k-i <= maxJWT {
				s.more(i)
			}
			return -1
		}
		if k-i > maxJWT || (k == ps && nd < 2) {
			return -1
		}
		if nd < 4 && k+1 < n && t[k] == '.' && is(t[k+1], ccB64URL) {
			dots[nd] = k
			nd++
			k++
			continue
		}
		if nd < 4 && k+1 == n && t[k] == '.' && !s.final {
			s.more(i)
			return -1
		}
		if nd == 1 && k < n && t[k] == '.' {
			// An unsecured JWT ends with an empty signature: "h.p."
			dots[nd] = k
			nd++
			k++
		}
		break
	}
	if nd != 2 && nd != 4 {
		return -1
	}
	if !jwtHeader(t[i:dots[0]]) || !jwtObject(t[dots[0]+1:dots[1]]) {
		return -1
	}
	return k
}

// jwtHeader decodes a JOSE header and checks it is a JSON object naming an
// algorithm.
func jwtHeader(b []byte) bool {
	var buf [768]byte
	if len(b) > base64.RawURLEncoding.EncodedLen(len(buf)) {
		return false
	}
	b = bytes.TrimRight(b, "=")
	m, err := base64.RawURLEncoding.Decode(buf[:], b)
	if err != nil {
		return false
	}
	h := bytes.TrimSpace(buf[:m])
	return len(h) >= 2 && h[0] == '{' && h[len(h)-1] == '}' &&
		(bytes.Contains(h, []byte(`"alg"`)) || bytes.Contains(h, []byte(`"enc"`)))
}

// jwtObject checks that a base64url part starts with a JSON object.
func jwtObject(b []byte) bool {
	var buf [6]byte
	b = bytes.TrimRight(b, "=")
	if len(b) > 8 {
		b = b[:8]
	}
	if len(b)%4 == 1 {
		b = b[:len(b)-1]
	}
	m, err := base64.RawURLEncoding.Decode(buf[:], b)
	if err != nil {
		return false
	}
	h := bytes.TrimLeft(buf[:m], " \t\r\n")
	return len(h) > 0 && h[0] == '{'
}

// pemBegin and pemEnd frame a PEM block.
const (
	pemBegin = "-----BEGIN "
	pemEnd   = "-----END "
)

// pem verifies a PEM private key at the '-' at i: a "-----BEGIN ...PRIVATE
// KEY-----" (or "PRIVATE KEY BLOCK", PGP) header, then the body through the
// matching "-----END ...-----" line. Without an END line the match runs over
// the body characters (base64, whitespace, RFC 1421 header lines, and the
// two-character escapes \n \r \t \/ of JSON text nested in a string) that
// follow, so a truncated key is still removed.
func (s *scan) pem(i int) int {
	t, n := s.t, len(s.t)
	if i > 0 && t[i-1] == '-' {
		return -1
	}
	if n-i < len(pemBegin) {
		if bytes.HasPrefix([]byte(pemBegin), t[i:]) {
			s.more(i)
		}
		return -1
	}
	if string(t[i:i+len(pemBegin)]) != pemBegin {
		return -1
	}
	j := i + len(pemBegin)
	ls := j
	for j < n && j-ls <= 40 && (isUpper(t[j]) || isDigit(t[j]) || t[j] == ' ') {
		j++
	}
	if n-j < 5 {
		if !s.final && j-ls <= 40 && bytes.HasPrefix([]byte("-----"), t[j:]) {
			s.more(i)
		}
		return -1
	}
	label := t[ls:j]
	if string(t[j:j+5]) != "-----" ||
		!(bytes.HasSuffix(label, []byte("PRIVATE KEY")) || bytes.HasSuffix(label, []byte("PRIVATE KEY BLOCK"))) {
		return -1
	}
	e, _, open := pemBody(t, j+5, i)
	if open && !s.final {
		s.more(i)
		s.pemOpen = i
		return -1
	}
	s.emit(detPEM, i, e)
	return e
}

// pemBody scans PEM body bytes from j (for a block that began at start) and
// returns the end of the block and whether an END line closed it. Body lines
// are base64, blank, or RFC 1421 headers ("Proc-Type: 4,ENCRYPTED"); a space
// after data on a line that is not a header ends an unclosed block there, so
// prose after a truncated key is kept. Trailing whitespace of an unclosed
// block is not included. open reports that the text ended inside the block,
// which more text could continue.
func pemBody(t []byte, j, start int) (end int, done, open bool) {
	n := len(t)
	data, header := false, false
	for j < n && j-start < maxPEM {
		c := t[j]
		switch {
		case c == '-' && bytes.HasPrefix(t[j:], []byte(pemEnd)):
			k := j + len(pemEnd)
			for k < n && k-j <= 60 && (isUpper(t[k]) || isDigit(t[k]) || t[k] == ' ') {
				k++
			}
			if n-k >= 5 && string(t[k:k+5]) == "-----" {
				return k + 5, true, false
			}
			if n-k < 5 && bytes.HasPrefix([]byte("-----"), t[k:]) {
				return n, false, true
			}
			return trimPEM(t, start, j), false, false
		case c == '\n' || c == '\r':
			data, header = false, false
			j++
		case c == '\\' && j+1 < n && (t[j+1] == 'n' || t[j+1] == 'r'):
			data, header = false, false
			j += 2
		case c == '\\' && j+1 < n && t[j+1] == '/':
			data = true
			j += 2
		case c == '\\' && j+1 == n:
			return trimPEM(t, start, j), false, true
		case c == ' ' || c == '\t':
			k := j
			for k < n && (t[k] == ' ' || t[k] == '\t') {
				k++
			}
			if data && !header && k < n && t[k] != '\n' && t[k] != '\r' && t[k] != '\\' {
				return trimPEM(t, start, j), false, false
			}
			j = k
		case c == ':':
			header = true
			j++
		case isAlnum(c) || c == '+' || c == '/' || c == '=':
			data = true
			j++
		case c == ',' || c == '-':
			j++
		default:
			return trimPEM(t, start, j), false, false
		}
	}
	return trimPEM(t, start, j), false, j >= n
}

// trimPEM drops trailing whitespace and escaped whitespace from an unclosed
// block ending at j.
func trimPEM(t []byte, start, j int) int {
	for j > start {
		switch {
		case isSpace(t[j-1]):
			j--
		case j-2 >= start && t[j-2] == '\\' && (t[j-1] == 'n' || t[j-1] == 'r' || t[j-1] == 't'):
			j -= 2
		default:
			return j
		}
	}
	return j
}
