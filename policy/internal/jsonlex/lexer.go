// Package jsonlex holds the strict RFC 8259 lexing primitives that policy/llm
// and policy/guard build their single-pass JSON readers on: whitespace,
// separators, literals, numbers and strings over a byte slice, plus decoding
// and encoding of string values the way encoding/json does.
//
// Object and Array walk the members and elements of a container without a
// callback: each caller scans the values itself and records what it needs
// (spans, paths, duplicate keys) in the same pass. A Lexer never allocates on
// success; its first syntax error is kept in Err with the byte offset and a
// fixed reason, never the offending bytes, and wraps the sentinels the
// caller's package exports, so errors.Is keeps working against that package.
package jsonlex

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Flags that Lexer.Str reports about a string it scanned.
const (
	// Escaped means the string holds at least one backslash escape, so its
	// raw bytes differ from its value.
	Escaped uint8 = 1 << iota
	// NonASCII means the string may hold bytes >= 0x80. A false positive is
	// allowed: it only sends the caller down a slower, exact path.
	NonASCII
)

// SWAR constants: one bit or one value in every byte of a 64-bit word.
const (
	loBits = 0x0101010101010101
	hiBits = 0x8080808080808080
)

// Lexer reads JSON tokens from B starting at Pos. Callers drive it: they
// look at B[Pos] to pick a token, call the method that scans it, and may move
// Pos themselves past a '{' or '[' they have checked. A method that meets a
// syntax error records it in Err and returns false; the first error wins.
// Call Reset before use: the zero Lexer has no sentinels to wrap.
type Lexer struct {
	B   []byte // the input
	Pos int    // offset of the next byte to read
	Err error  // the first error, nil while the input is well formed so far

	invalid, tooDeep error // the caller's sentinels, see Reset
}

// Reset points l at the start of b and clears its error. Its syntax errors
// will wrap invalid, and its nesting error both invalid and tooDeep. It
// works in place because callers embed the Lexer in large parser structs,
// and building one by value would copy them.
func (l *Lexer) Reset(b []byte, invalid, tooDeep error) {
	l.B, l.Pos, l.Err, l.invalid, l.tooDeep = b, 0, nil, invalid, tooDeep
}

// Fail records a syntax error at the current offset, unless one is already
// recorded, and returns false so callers can write `return l.Fail(...)`.
// reason must be fixed text, never bytes of the input.
func (l *Lexer) Fail(reason string) bool {
	if l.Err == nil {
		l.Err = fmt.Errorf("%w: %s at offset %d", l.invalid, reason, l.Pos)
	}
	return false
}

// TooDeep records a nesting error at the current offset, wrapping both
// sentinels given to Reset, and returns false. The depth limit is the caller's.
func (l *Lexer) TooDeep() bool {
	if l.Err == nil {
		l.Err = fmt.Errorf("%w: %w at offset %d", l.invalid, l.tooDeep, l.Pos)
	}
	return false
}

// End skips trailing whitespace and checks that nothing else follows.
func (l *Lexer) End() bool {
	l.SkipWS()
	if l.Pos != len(l.B) {
		return l.Fail("unexpected data after top-level value")
	}
	return true
}

// SkipWS advances past the four whitespace bytes RFC 8259 allows.
func (l *Lexer) SkipWS() {
	b, i := l.B, l.Pos
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			l.Pos = i
			return
		}
	}
	l.Pos = i
}

// Colon consumes the ':' after an object key and the whitespace around it.
func (l *Lexer) Colon() bool {
	l.SkipWS()
	if l.Pos >= len(l.B) || l.B[l.Pos] != ':' {
		return l.Fail("expected ':' after object key")
	}
	l.Pos++
	l.SkipWS()
	return true
}

// Literal scans word, which is true, false or null.
func (l *Lexer) Literal(word string) bool {
	if len(l.B)-l.Pos < len(word) || string(l.B[l.Pos:l.Pos+len(word)]) != word {
		return l.Fail("invalid literal")
	}
	l.Pos += len(word)
	return true
}

// Number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at Pos, which
// must hold '-' or a digit. What follows the number is checked by the caller.
func (l *Lexer) Number() bool {
	b, i := l.B, l.Pos
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		l.Pos = i
		return l.Fail("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			l.Pos = j
			return l.Fail("invalid number")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			l.Pos = j
			return l.Fail("invalid number")
		}
		i = j
	}
	l.Pos = i
	return true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// Str scans a string whose opening quote is at Pos and leaves Pos just after
// the closing quote; flags (Escaped, NonASCII) say how the raw bytes between
// the quotes relate to the value. It checks escapes and control bytes but not
// UTF-8, like encoding/json.Valid. Strings can be megabytes of base64, so the
// body is read eight bytes at a time until a quote, backslash or control byte
// shows up.
func (l *Lexer) Str() (flags uint8, ok bool) {
	b, i := l.B, l.Pos+1
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			if x&hiBits != 0 {
				flags |= NonASCII
			}
			if m := specialBytes(x); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			l.Pos = i
			return flags, l.Fail("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			l.Pos = i + 1
			return flags, true
		case c == '\\':
			flags |= Escaped
			n := escapeLen(b[i:])
			if n == 0 {
				l.Pos = i
				return flags, l.Fail("invalid escape in string")
			}
			i += n
		case c < 0x20:
			l.Pos = i
			return flags, l.Fail("control character in string")
		default:
			if c >= 0x80 {
				flags |= NonASCII
			}
			i++
		}
	}
}

// specialBytes returns a mask with the high bit set in the lowest byte of x
// that is '"', '\\' or below 0x20 (bits above that byte may be false
// positives from borrows, which is why callers only use the lowest one).
func specialBytes(x uint64) uint64 {
	q := x ^ (loBits * '"')
	bs := x ^ (loBits * '\\')
	return ((x-loBits*0x20)&^x | (q-loBits)&^q | (bs-loBits)&^bs) & hiBits
}

// escapeLen returns the length of the valid escape sequence at the start of
// b (which begins with a backslash), or 0 if it is invalid or truncated.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if len(b) < 6 {
			return 0
		}
		for _, h := range b[2:6] {
			if HexVal(h) < 0 {
				return 0
			}
		}
		return 6
	default:
		return 0
	}
}

// HexVal returns the value of one hex digit, or -1.
func HexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	default:
		return -1
	}
}
