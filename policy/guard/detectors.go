package guard

import "slices"

// detID indexes a detector within a compiled profile: built-in detectors
// first, in the order below, then the profile's custom detectors.
type detID uint16

// Built-in detectors.
const (
	detEmail detID = iota
	detPhone
	detCard
	detIBAN
	detSSN
	detIP
	detAWS
	detGitHub
	detSlack
	detStripe
	detGoogle
	detOpenAI
	detAnthropic
	detJWT
	detPEM
	detTollgate
	detInjection
	numBuiltin
)

// detInfo describes a detector: its public id, the placeholder label used
// when redacting ([LABEL_n]) and the longest match it can produce, which
// bounds what a stream scanner holds back for it.
type detInfo struct {
	id     string
	label  string
	maxLen int
}

// builtins is indexed by detID.
var builtins = [numBuiltin]detInfo{
	detEmail:     {"pii.email", "EMAIL", 64 + 1 + 255},
	detPhone:     {"pii.phone", "PHONE", 40},
	detCard:      {"pii.card", "CARD", 32},
	detIBAN:      {"pii.iban", "IBAN", 48},
	detSSN:       {"pii.us_ssn", "US_SSN", 16},
	detIP:        {"pii.ip", "IP", 48},
	detAWS:       {"secret.aws_access_key", "AWS_ACCESS_KEY", 24},
	detGitHub:    {"secret.github_token", "GITHUB_TOKEN", 12 + maxTokenBody},
	detSlack:     {"secret.slack_token", "SLACK_TOKEN", 32 + maxTokenBody},
	detStripe:    {"secret.stripe_key", "STRIPE_KEY", 8 + maxTokenBody},
	detGoogle:    {"secret.google_api_key", "GOOGLE_API_KEY", 40},
	detOpenAI:    {"secret.openai_key", "OPENAI_KEY", 12 + maxTokenBody},
	detAnthropic: {"secret.anthropic_key", "ANTHROPIC_KEY", 8 + maxTokenBody},
	detJWT:       {"secret.jwt", "JWT", maxJWT},
	detPEM:       {"secret.private_key", "PRIVATE_KEY", maxPEM},
	detTollgate:  {"secret.tollgate_key", "TOLLGATE_KEY", 72},
	detInjection: {"injection.phrase", "INJECTION", maxPhrase},
}

// Detectors returns the ids of the built-in detectors, in a stable order.
// Custom detectors are named "custom.<name>" by the profile that defines
// them.
func Detectors() []string {
	ids := make([]string, len(builtins))
	for i, d := range builtins {
		ids[i] = d.id
	}
	return ids
}

// builtinByID returns the detID of a built-in detector id.
func builtinByID(id string) (detID, bool) {
	for i, d := range builtins {
		if d.id == id {
			return detID(i), true
		}
	}
	return 0, false
}

// Character classes of ASCII bytes.
const (
	ccDigit uint16 = 1 << iota
	ccUpper
	ccLower
	ccUnder // '_'
	ccDash  // '-'
	ccHex
	ccLocal // extra email local-part characters: . % + -
	ccSpace // ' ', \t, \n, \r
	ccSlash // '/'

	ccAlnum  = ccDigit | ccUpper | ccLower
	ccWord   = ccAlnum | ccUnder
	ccB64URL = ccWord | ccDash
)

var ctype = func() (t [256]uint16) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= ccDigit | ccHex
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= ccUpper
		t[c+'a'-'A'] |= ccLower
	}
	for c := 'A'; c <= 'F'; c++ {
		t[c] |= ccHex
		t[c+'a'-'A'] |= ccHex
	}
	t['_'] |= ccUnder
	t['-'] |= ccDash | ccLocal
	for _, c := range ".%+" {
		t[c] |= ccLocal
	}
	for _, c := range " \t\n\r" {
		t[c] |= ccSpace
	}
	t['/'] |= ccSlash
	return t
}()

func is(c byte, class uint16) bool { return ctype[c]&class != 0 }
func isDigit(c byte) bool          { return c-'0' < 10 }
func isAlnum(c byte) bool          { return ctype[c]&ccAlnum != 0 }
func isWord(c byte) bool           { return ctype[c]&ccWord != 0 }
func isUpper(c byte) bool          { return c-'A' < 26 }
func isSpace(c byte) bool          { return ctype[c]&ccSpace != 0 }
func isLocal(c byte) bool          { return ctype[c]&(ccWord|ccLocal) != 0 }
func lower(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}

// Trigger classes: what the main loop does at a byte.
const (
	tWord  uint8 = 1 << iota // [A-Za-z0-9_]: word-start processing
	tAt                      // '@': email
	tPlus                    // '+': E.164 phone
	tParen                   // '(': NANP phone "(415) 555-2671"
	tColon                   // ':': IPv6 starting with "::"
	tDash                    // '-': PEM "-----BEGIN"
	tLit                     // first byte of a custom literal that is not a word byte
)

// anchorKind says how an anchor is verified.
type anchorKind uint8

const (
	akToken    anchorKind = iota // a tokenSpec: prefix + body charset
	akIBAN                       // country code + check digits
	akJWT                        // eyJ...
	akTollgate                   // tgk_...
	akPhrase                     // injection phrase
	akLiteral                    // custom literal
)

// anchor is one thing that can start at a word start (or at a tLit byte)
// whose first two bytes form the key it is filed under.
type anchor struct {
	kind anchorKind
	det  detID
	idx  int32 // index into tokenSpecs, phrases or plan.lits
	alt  int32 // for a phrase: which alternative of its first slot
}

// plan is a profile's compiled matcher: trigger tables for the enabled
// detectors only, so a disabled detector costs nothing.
type plan struct {
	on       []bool // by detID
	dets     []detInfo
	cls      [256]uint8
	pairBits [1 << 16 / 64]uint64 // key -> has anchors (fits in L1)
	pairIdx  []uint16             // key -> index into lists
	lists    [][]anchor           // lists[0] is empty
	first    [256]bool            // bytes that start some anchor (stream holds)
	lits     []literal
	regexes  []customRegex
	numeric  bool // any of phone, card, ssn, ip, which read digit clusters
	b64      bool // any secret detector, which base64 runs are decoded for
	maxHold  int  // the longest match of any enabled detector but PEM
}

// newPlan builds the plan for the enabled detectors; custom detectors are
// added by the caller before finish.
func newPlan(dets []detInfo, on []bool) *plan {
	p := &plan{on: on, dets: dets, pairIdx: make([]uint16, 1<<16), lists: [][]anchor{nil}}
	for c := range 256 {
		if isWord(byte(c)) {
			p.cls[c] |= tWord
		}
	}
	if on[detEmail] {
		p.cls['@'] |= tAt
	}
	if on[detPhone] {
		p.cls['+'] |= tPlus
		p.cls['('] |= tParen
	}
	if on[detIP] {
		p.cls[':'] |= tColon
	}
	if on[detPEM] {
		p.cls['-'] |= tDash
	}
	p.numeric = on[detPhone] || on[detCard] || on[detSSN] || on[detIP]
	for d := detAWS; d <= detTollgate; d++ {
		p.b64 = p.b64 || on[d]
	}
	for i, ts := range tokenSpecs {
		if on[ts.det] {
			p.addAnchor(ts.prefix[:2], false, anchor{kind: akToken, det: ts.det, idx: int32(i)})
		}
	}
	if on[detJWT] {
		p.addAnchor("ey", false, anchor{kind: akJWT, det: detJWT})
	}
	if on[detTollgate] {
		p.addAnchor("tg", false, anchor{kind: akTollgate, det: detTollgate})
	}
	if on[detIBAN] {
		for cc := range ibanLengths {
			p.addAnchor(cc, false, anchor{kind: akIBAN, det: detIBAN})
		}
	}
	if on[detInjection] {
		for i, ph := range phrases {
			for k, alt := range ph[0].alts {
				p.addAnchor(alt[:2], true, anchor{kind: akPhrase, det: detInjection, idx: int32(i), alt: int32(k)})
			}
		}
	}
	return p
}

// anchorsAt returns the anchors filed under the two bytes at t[i:].
func (p *plan) anchorsAt(t []byte, i int) []anchor {
	return p.lists[p.pairIdx[uint16(t[i])<<8|uint16(t[i+1])]]
}

// addAnchor files a under the two-byte key, in every ASCII case variant
// when fold is set.
func (p *plan) addAnchor(key string, fold bool, a anchor) {
	variants := []string{key}
	if fold {
		lo, up := func(c byte) byte { return lower(c) }, func(c byte) byte {
			if c-'a' < 26 {
				return c - 'a' + 'A'
			}
			return c
		}
		variants = []string{
			string([]byte{lo(key[0]), lo(key[1])}), string([]byte{up(key[0]), lo(key[1])}),
			string([]byte{lo(key[0]), up(key[1])}), string([]byte{up(key[0]), up(key[1])}),
		}
	}
	for _, v := range variants {
		k := uint16(v[0])<<8 | uint16(v[1])
		if p.pairIdx[k] == 0 {
			p.pairIdx[k] = uint16(len(p.lists))
			p.lists = append(p.lists, nil)
		}
		if l := &p.lists[p.pairIdx[k]]; !slices.Contains(*l, a) {
			*l = append(*l, a)
		}
		p.pairBits[k>>6] |= 1 << (k & 63)
		p.first[v[0]] = true
		if !isWord(v[0]) {
			p.cls[v[0]] |= tLit
		}
	}
}

// finish computes the stream hold bound once every detector is added.
func (p *plan) finish() {
	for id, on := range p.on {
		if on && detID(id) != detPEM {
			p.maxHold = max(p.maxHold, p.dets[id].maxLen)
		}
	}
	p.maxHold = max(p.maxHold, minHold)
	if p.b64 {
		p.maxHold = max(p.maxHold, b64Hold)
	}
}

// minHold is the smallest stream hold bound: enough for the trailing word
// and a PEM header.
const minHold = 128

// b64Hold is the stream hold bound when base64 runs are decoded: a run up
// to this long is held whole, which fits any encoded token or key and a
// base64-encoded 2048-bit PEM private key.
const b64Hold = 4096
