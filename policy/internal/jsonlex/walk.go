package jsonlex

import "unicode/utf8"

// The states of a container walk.
const (
	seqOpen   uint8 = iota // just past the opening byte
	seqInside              // an element or member was returned
	seqClosed              // the closing byte was consumed
	seqFailed              // a syntax error was recorded
)

// seq is the walk that arrays and objects share: the separators between
// elements, the closing byte and, in an object, each key and its colon. It
// is one function for both, so that Object.Next and Array.Next inline to a
// single call per element: the walk costs no more calls than a hand-written
// loop.
type seq struct {
	l *Lexer
	// KeyStart and KeyEnd delimit the current member's key token in the
	// input, quotes included (objects only).
	KeyStart, KeyEnd int
	// KeyFlags are the Escaped and NonASCII flags of that key.
	KeyFlags uint8
	state    uint8
}

// next moves to the next element of a container closed by closing (']' or
// '}'): past the separator, and in an object past the key and its colon. It
// reports whether there is one, leaving the lexer at its value; false after
// the closing byte, or once a syntax error is recorded.
func (s *seq) next(closing byte) bool {
	l := s.l
	switch s.state {
	case seqOpen:
		if l.Pos < len(l.B) && l.B[l.Pos] == closing {
			l.Pos++
			s.state = seqClosed
			return false
		}
		s.state = seqInside
	case seqInside:
		l.SkipWS()
		if l.Pos >= len(l.B) {
			s.state = seqFailed
			return l.Fail("unexpected end of input")
		}
		switch l.B[l.Pos] {
		case ',':
			// The whitespace after it is skipped here, so a trailing
			// comma fails on the next element.
			l.Pos++
			l.SkipWS()
		case closing:
			l.Pos++
			s.state = seqClosed
			return false
		default:
			s.state = seqFailed
			return l.Fail("expected ',' or closing bracket")
		}
	default:
		return false
	}
	if closing == ']' {
		return true
	}
	if l.Pos >= len(l.B) || l.B[l.Pos] != '"' {
		s.state = seqFailed
		return l.Fail("expected object key")
	}
	s.KeyStart = l.Pos
	flags, ok := l.Str()
	s.KeyEnd, s.KeyFlags = l.Pos, flags
	if ok && l.Pos < len(l.B) && l.B[l.Pos] == ':' { // compact JSON, without the call to Colon
		l.Pos++
		l.SkipWS()
		return true
	}
	if !ok || !l.Colon() {
		s.state = seqFailed
		return false
	}
	return true
}

// Array walks the elements of one JSON array. The caller scans each element
// itself, so the walk costs no closure and no allocation:
//
//	a := l.Array()
//	for a.Next() {
//		// scan the element at l.Pos
//	}
//	return a.Done()
type Array struct{ s seq }

// Array starts a walk over the array whose '[' is at l.Pos; the caller has
// checked that byte and its nesting depth.
func (l *Lexer) Array() Array {
	l.Pos++
	l.SkipWS()
	return Array{seq{l: l}}
}

// Next reports whether there is another element, leaving the lexer at its
// first byte. It returns false after the closing ']' or a syntax error, which
// Done tells apart.
func (a *Array) Next() bool { return a.s.next(']') }

// Done reports whether the walk ended at the closing ']', rather than at a
// syntax error. Call it once Next has returned false.
func (a *Array) Done() bool { return a.s.state == seqClosed }

// Object walks the members of one JSON object. Next scans each key and the
// colon after it, leaving the lexer at the member's value for the caller to
// scan, so the walk costs no closure and no allocation:
//
//	o := l.Object()
//	for o.Next() {
//		key := o.Key()
//		// scan the value at l.Pos
//	}
//	return o.Done()
type Object struct{ seq }

// Object starts a walk over the object whose '{' is at l.Pos; the caller has
// checked that byte and its nesting depth.
func (l *Lexer) Object() Object {
	l.Pos++
	l.SkipWS()
	return Object{seq{l: l}}
}

// Next reports whether there is another member. It scans the member's key
// (recorded in KeyStart, KeyEnd and KeyFlags) and the colon, leaving the
// lexer at the first byte of the value. It returns false after the closing
// '}' or a syntax error, which Done tells apart.
func (o *Object) Next() bool { return o.next('}') }

// Done reports whether the walk ended at the closing '}', rather than at a
// syntax error. Call it once Next has returned false.
func (o *Object) Done() bool { return o.state == seqClosed }

// RawKey returns the current key's bytes between its quotes.
func (o *Object) RawKey() []byte { return o.l.B[o.KeyStart+1 : o.KeyEnd-1] }

// Key returns the current key decoded, for comparing keys (see CanonicalKey).
func (o *Object) Key() []byte { return CanonicalKey(o.RawKey(), o.KeyFlags) }

// StrValue scans the string at l.Pos, which must start with '"', and returns its contents
// decoded as CanonicalKey decodes a key: the raw bytes when nothing needs decoding.
func (l *Lexer) StrValue() ([]byte, bool) {
	start := l.Pos
	flags, ok := l.Str()
	if !ok {
		return nil, false
	}
	return CanonicalKey(l.B[start+1:l.Pos-1], flags), true
}

// CanonicalKey returns the decoded form of a key's raw contents (flags as Str
// reported them), used to compare keys: the raw bytes themselves when no
// decoding is needed (the common case, no allocation), otherwise a decoded
// copy. Decoding follows encoding/json, so keys that a Go provider would
// merge compare equal.
func CanonicalKey(raw []byte, flags uint8) []byte {
	if flags == 0 { // inlined: most keys are plain ASCII
		return raw
	}
	return decodeKey(raw, flags)
}

// decodeKey is CanonicalKey for a key with escapes or non-ASCII bytes.
func decodeKey(raw []byte, flags uint8) []byte {
	if flags&Escaped == 0 && utf8.Valid(raw) {
		return raw
	}
	dec, _ := Unquote(make([]byte, 0, len(raw)), raw)
	return dec
}

// MaxDepth is the deepest nesting of objects and arrays that Value accepts;
// a top-level container counts as depth 1. Real bodies nest fewer than 20
// levels; the cap bounds recursion on hostile input.
const MaxDepth = 128

// Value scans one JSON value at l.Pos, nested at most MaxDepth deep; depth is
// the number of containers already open around it.
func (l *Lexer) Value(depth int) bool {
	if l.Pos >= len(l.B) {
		return l.Fail("unexpected end of input")
	}
	c := l.B[l.Pos]
	if c == '"' { // the most common value, without the call to Scalar
		_, ok := l.Str()
		return ok
	}
	if c != '{' && c != '[' {
		return l.Scalar()
	}
	if depth >= MaxDepth {
		return l.TooDeep()
	}
	// A value that fails ends the loop before the closing byte, so Done
	// reports the failure.
	if c == '[' {
		a := l.Array()
		for a.Next() && l.Value(depth+1) {
		}
		return a.Done()
	}
	o := l.Object()
	for o.Next() && l.Value(depth+1) {
	}
	return o.Done()
}

// Scalar scans the string, literal or number at l.Pos, which must be inside
// the input; anything else there (an object or array included) is an
// invalid character.
func (l *Lexer) Scalar() bool {
	switch c := l.B[l.Pos]; {
	case c == '"':
		_, ok := l.Str()
		return ok
	case c == 't':
		return l.Literal("true")
	case c == 'f':
		return l.Literal("false")
	case c == 'n':
		return l.Literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return l.Number()
	default:
		return l.Fail("invalid character")
	}
}
