package guard

import (
	"bytes"
	"encoding/binary"
)

// Tollgate virtual keys (policy/keys): "tgk_", a 12-character id, "_" and
// 49 characters, all base62 (keys.TokenPattern).
const (
	vkPrefix = "tgk_"
	vkIDLen  = 12
	vkSecLen = 49
	vkLen    = len(vkPrefix) + vkIDLen + 1 + vkSecLen
)

// ContainsVirtualKey reports whether body holds a Tollgate virtual key
// anywhere, in any spelling a reader would take for one: as raw bytes, in
// a JSON string after unescaping (\u0074gk_…), after a second layer of
// \uXXXX escapes, without invisible characters (zero-width spaces, soft
// hyphens) and in NFKC (full-width forms), the normalization detectors use.
// A key in a forwarded body would hand a Tollgate credential to the
// provider, so callers refuse such a body whatever the guardrail profile.
//
// It costs one pass over the body and allocates nothing when the body is
// ASCII without \u escapes (see mayDisguise); otherwise each JSON string
// that holds escapes or non-ASCII text is decoded and normalized, with
// pooled scratch space. Strings are found by their quotes, which is exact
// for valid JSON (callers parse the body first); a body that is not JSON
// (a string does not lex, or text sits between strings) is normalized as a
// whole.
func ContainsVirtualKey(body []byte) bool {
	if hasVirtualKey(body) {
		return true
	}
	if !mayDisguise(body) {
		return false
	}
	st := getState()
	defer putState(st)
	lx := &st.w.Lexer
	lx.Reset(body, ErrInvalidJSON, ErrTooDeep)
	whole := func() bool {
		norm, _ := st.z.normalize(body)
		return hasVirtualKey(norm)
	}
	for {
		j := bytes.IndexByte(body[lx.Pos:], '"')
		if j < 0 {
			j = len(body) - lx.Pos
		}
		// Between strings, JSON has no text: a byte there that could
		// disguise a key means the body is not JSON.
		if mayDisguise(body[lx.Pos : lx.Pos+j]) {
			return whole()
		}
		if lx.Pos+j == len(body) {
			return false
		}
		start := lx.Pos + j
		lx.Pos = start
		flags, ok := lx.Str()
		if !ok {
			return whole()
		}
		if flags == 0 {
			continue // its raw bytes are its text: covered by the search above
		}
		norm, _ := st.z.normalize(st.decode(body, loc{start: int32(start), end: int32(lx.Pos), flags: flags}))
		if hasVirtualKey(norm) {
			return true
		}
	}
}

// hasVirtualKey reports whether t contains a string of the key's format.
// It looks for the '_' after "tgk", rarer in text than a 't'.
func hasVirtualKey(t []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(t[i:], '_')
		if j < 0 {
			return false
		}
		i += j
		if i >= 3 && string(t[i-3:i]) == "tgk" && isVirtualKey(t[i-3:]) {
			return true
		}
		i++
	}
}

// isVirtualKey reports whether t starts with a key (t starts with vkPrefix).
func isVirtualKey(t []byte) bool {
	if len(t) < vkLen {
		return false
	}
	for k, c := range t[len(vkPrefix):vkLen] {
		if k == vkIDLen {
			if c != '_' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// mayDisguise reports whether b holds bytes that decoding or normalization
// could turn into part of a key, or drop from between its characters: a
// non-ASCII byte, a control byte other than JSON whitespace, a \u escape
// (also after an escaped backslash: "\\u0074" is a second layer), or a \b
// or \f escape (decoded to control characters the normalizer drops). The
// common escapes \" \n \t \/ cannot disguise a key. Eight bytes at a time
// until one of those bytes may be near.
func mayDisguise(b []byte) bool {
	for i := 0; i < len(b); {
		if i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			bs := x ^ (loBits * '\\')
			del := x ^ (loBits * 0x7f)
			if (x|((bs-loBits)&^bs)|((del-loBits)&^del)|((x-loBits*0x20)&^x))&hiBits == 0 {
				i += 8
				continue
			}
		}
		switch c := b[i]; {
		case c >= 0x80 || dropByte(c):
			return true
		case c == '\\' && i+1 < len(b):
			switch b[i+1] {
			case 'u', 'b', 'f':
				return true
			case '\\':
				if i+2 < len(b) && b[i+2] == 'u' {
					return true
				}
			}
			i += 2
		default:
			i++
		}
	}
	return false
}
