package guard

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// MaxDepth is the deepest nesting of objects and arrays a body may have. The
// top-level object counts as depth 1. Real bodies nest fewer than 20 levels;
// the cap bounds recursion on hostile input.
const MaxDepth = 128

// Flags that lexer.str reports about a string it scanned.
const (
	// strEscaped: the string holds at least one backslash escape, so its raw
	// bytes differ from its value.
	strEscaped uint8 = 1 << iota
	// strNonASCII: the string may hold bytes >= 0x80 (false positives are
	// allowed; they only send the caller down a slower, exact path).
	strNonASCII
)

// SWAR constants: one bit or one value in every byte of a 64-bit word.
const (
	loBits = 0x0101010101010101
	hiBits = 0x8080808080808080
)

// lexer is a strict RFC 8259 tokenizer over a byte slice. It never allocates
// on success; the first syntax error is kept in err with its byte offset and
// a fixed reason, never the offending bytes.
type lexer struct {
	b   []byte
	pos int
	err error
}

// fail records a syntax error at the current offset and returns false so
// callers can write `return l.fail(...)`.
func (l *lexer) fail(reason string) bool {
	if l.err == nil {
		l.err = fmt.Errorf("%w: %s at offset %d", ErrInvalidJSON, reason, l.pos)
	}
	return false
}

// tooDeep records a nesting error wrapping both ErrInvalidJSON and ErrTooDeep.
func (l *lexer) tooDeep() bool {
	if l.err == nil {
		l.err = fmt.Errorf("%w: %w at offset %d", ErrInvalidJSON, ErrTooDeep, l.pos)
	}
	return false
}

// end skips trailing whitespace and checks that nothing else follows.
func (l *lexer) end() bool {
	l.skipWS()
	if l.pos != len(l.b) {
		return l.fail("unexpected data after top-level value")
	}
	return true
}

// skipWS advances past the four whitespace bytes RFC 8259 allows.
func (l *lexer) skipWS() {
	b, i := l.b, l.pos
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			l.pos = i
			return
		}
	}
	l.pos = i
}

// colon consumes the ':' after an object key and the whitespace around it.
func (l *lexer) colon() bool {
	l.skipWS()
	if l.pos >= len(l.b) || l.b[l.pos] != ':' {
		return l.fail("expected ':' after object key")
	}
	l.pos++
	l.skipWS()
	return true
}

// next consumes the separator after a member or element: more is true after
// a ',' (with the following whitespace skipped), false after the closing byte.
func (l *lexer) next(closing byte) (more, ok bool) {
	l.skipWS()
	if l.pos >= len(l.b) {
		return false, l.fail("unexpected end of input")
	}
	switch l.b[l.pos] {
	case ',':
		l.pos++
		l.skipWS()
		return true, true
	case closing:
		l.pos++
		return false, true
	default:
		return false, l.fail("expected ',' or closing bracket")
	}
}

// literal scans true, false or null.
func (l *lexer) literal(word string) bool {
	if len(l.b)-l.pos < len(word) || string(l.b[l.pos:l.pos+len(word)]) != word {
		return l.fail("invalid literal")
	}
	l.pos += len(word)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (l *lexer) number() bool {
	b, i := l.b, l.pos
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		l.pos = i
		return l.fail("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			l.pos = j
			return l.fail("invalid number")
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
			l.pos = j
			return l.fail("invalid number")
		}
		i = j
	}
	l.pos = i
	return true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// str scans a string whose opening quote is at l.pos and leaves l.pos just
// after the closing quote. Strings can be megabytes, so the body is read
// eight bytes at a time until a quote, backslash or control byte shows up.
func (l *lexer) str() (flags uint8, ok bool) {
	b, i := l.b, l.pos+1
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			if x&hiBits != 0 {
				flags |= strNonASCII
			}
			if m := specialBytes(x); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			l.pos = i
			return flags, l.fail("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			l.pos = i + 1
			return flags, true
		case c == '\\':
			flags |= strEscaped
			n := escapeLen(b[i:])
			if n == 0 {
				l.pos = i
				return flags, l.fail("invalid escape in string")
			}
			i += n
		case c < 0x20:
			l.pos = i
			return flags, l.fail("control character in string")
		default:
			if c >= 0x80 {
				flags |= strNonASCII
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
			if hexVal(h) < 0 {
				return 0
			}
		}
		return 6
	default:
		return 0
	}
}

// hexVal returns the value of one hex digit, or -1.
func hexVal(c byte) rune {
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
