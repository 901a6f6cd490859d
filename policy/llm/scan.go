package llm

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// MaxDepth is the deepest nesting of objects and arrays that ParseRequest and
// ValidJSON accept. The top-level object counts as depth 1. Real chat bodies
// nest fewer than 20 levels; the cap bounds recursion on hostile input.
const MaxDepth = 128

// Flags that scanner.str reports about a string it scanned.
const (
	// strEscaped: the string holds at least one backslash escape, so its
	// raw bytes differ from its value.
	strEscaped uint8 = 1 << iota
	// strNonASCII: the string may hold bytes >= 0x80 (a false positive is
	// allowed; it only sends the caller down a slower, exact path).
	strNonASCII
)

// SWAR constants: one bit or one value in every byte of a 64-bit word.
const (
	loBits = 0x0101010101010101
	hiBits = 0x8080808080808080
)

// scanner is a strict RFC 8259 validator over a byte slice. It never
// allocates on success; the first syntax error is kept in err with its byte
// offset and a fixed reason, never the offending bytes.
type scanner struct {
	b   []byte
	pos int
	err error
}

// ValidJSON reports whether b is exactly one well-formed JSON value (RFC 8259,
// surrounding whitespace allowed) nested no deeper than MaxDepth. Like
// encoding/json.Valid it does not check that strings are valid UTF-8.
func ValidJSON(b []byte) bool {
	s := scanner{b: b}
	s.skipWS()
	return s.value(0) && s.end()
}

// fail records a syntax error at the current offset and returns false so
// callers can write `return s.fail(...)`.
func (s *scanner) fail(reason string) bool {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s at offset %d", ErrInvalidJSON, reason, s.pos)
	}
	return false
}

// end skips trailing whitespace and checks that nothing else follows.
func (s *scanner) end() bool {
	s.skipWS()
	if s.pos != len(s.b) {
		return s.fail("unexpected data after top-level value")
	}
	return true
}

// skipWS advances past the four whitespace bytes RFC 8259 allows.
func (s *scanner) skipWS() {
	b, i := s.b, s.pos
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			s.pos = i
			return
		}
	}
	s.pos = i
}

// value scans one JSON value starting at s.pos. depth is the number of
// containers already open around it.
func (s *scanner) value(depth int) bool {
	if s.pos >= len(s.b) {
		return s.fail("unexpected end of input")
	}
	switch c := s.b[s.pos]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		return s.fail("invalid character")
	}
}

// tooDeep records a nesting error. It wraps both ErrInvalidJSON and
// ErrTooDeep.
func (s *scanner) tooDeep() bool {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %w at offset %d", ErrInvalidJSON, ErrTooDeep, s.pos)
	}
	return false
}

// object scans an object whose '{' is at s.pos; depth counts this object.
func (s *scanner) object(depth int) bool {
	if depth > MaxDepth {
		return s.tooDeep()
	}
	s.pos++
	s.skipWS()
	if s.pos < len(s.b) && s.b[s.pos] == '}' {
		s.pos++
		return true
	}
	for {
		if s.pos >= len(s.b) || s.b[s.pos] != '"' {
			return s.fail("expected object key")
		}
		if _, ok := s.str(); !ok {
			return false
		}
		if !s.colon() || !s.value(depth) {
			return false
		}
		more, ok := s.next('}')
		if !ok || !more {
			return ok
		}
	}
}

// array scans an array whose '[' is at s.pos; depth counts this array.
// countArray scans a top-level member's array value (at s.pos) and counts its
// elements.
func (s *scanner) countArray() (int, bool) {
	s.pos++ // '['
	s.skipWS()
	if s.pos < len(s.b) && s.b[s.pos] == ']' {
		s.pos++
		return 0, true
	}
	n := 0
	for {
		if !s.value(2) {
			return n, false
		}
		n++
		more, ok := s.next(']')
		if !ok || !more {
			return n, ok
		}
	}
}

func (s *scanner) array(depth int) bool {
	if depth > MaxDepth {
		return s.tooDeep()
	}
	s.pos++
	s.skipWS()
	if s.pos < len(s.b) && s.b[s.pos] == ']' {
		s.pos++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		more, ok := s.next(']')
		if !ok || !more {
			return ok
		}
	}
}

// colon consumes the ':' after an object key and the whitespace around it.
func (s *scanner) colon() bool {
	s.skipWS()
	if s.pos >= len(s.b) || s.b[s.pos] != ':' {
		return s.fail("expected ':' after object key")
	}
	s.pos++
	s.skipWS()
	return true
}

// next consumes the separator after a member or element: more is true after
// a ',' (with the following whitespace skipped, so a trailing comma fails on
// the next element), false after the closing byte.
func (s *scanner) next(closing byte) (more, ok bool) {
	s.skipWS()
	if s.pos >= len(s.b) {
		return false, s.fail("unexpected end of input")
	}
	switch s.b[s.pos] {
	case ',':
		s.pos++
		s.skipWS()
		return true, true
	case closing:
		s.pos++
		return false, true
	default:
		return false, s.fail("expected ',' or closing bracket")
	}
}

// literal scans true, false or null.
func (s *scanner) literal(word string) bool {
	if len(s.b)-s.pos < len(word) || string(s.b[s.pos:s.pos+len(word)]) != word {
		return s.fail("invalid literal")
	}
	s.pos += len(word)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. What follows
// the number is checked by the caller.
func (s *scanner) number() bool {
	b, i := s.b, s.pos
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		s.pos = i
		return s.fail("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			s.pos = j
			return s.fail("invalid number")
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
			s.pos = j
			return s.fail("invalid number")
		}
		i = j
	}
	s.pos = i
	return true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// str scans a string whose opening quote is at s.pos and leaves s.pos just
// after the closing quote. Strings can be megabytes of base64, so the body is
// read eight bytes at a time until a quote, backslash or control byte shows up.
func (s *scanner) str() (flags uint8, ok bool) {
	b, i := s.b, s.pos+1
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
			s.pos = i
			return flags, s.fail("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			s.pos = i + 1
			return flags, true
		case c == '\\':
			flags |= strEscaped
			n := escapeLen(b[i:])
			if n == 0 {
				s.pos = i
				return flags, s.fail("invalid escape in string")
			}
			i += n
		case c < 0x20:
			s.pos = i
			return flags, s.fail("control character in string")
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
