package llm

import "github.com/tollgate-ai/tollgate/policy/internal/jsonlex"

// MaxDepth is the deepest nesting of objects and arrays that ParseRequest and
// ValidJSON accept. The top-level object counts as depth 1. Real chat bodies
// nest fewer than 20 levels; the cap bounds recursion on hostile input.
const MaxDepth = 128

// scanner is a strict RFC 8259 validator over a byte slice, built on the
// shared lexer: it never allocates on success, and its first syntax error is
// kept in Err with its byte offset and a fixed reason, never the offending
// bytes. Reset it with this package's ErrInvalidJSON and ErrTooDeep.
type scanner struct {
	jsonlex.Lexer
}

// ValidJSON reports whether b is exactly one well-formed JSON value (RFC 8259,
// surrounding whitespace allowed) nested no deeper than MaxDepth. Like
// encoding/json.Valid it does not check that strings are valid UTF-8.
func ValidJSON(b []byte) bool {
	var s scanner
	s.Reset(b, ErrInvalidJSON, ErrTooDeep)
	s.SkipWS()
	return s.value(0) && s.End()
}

// value scans one JSON value starting at s.Pos. depth is the number of
// containers already open around it.
func (s *scanner) value(depth int) bool {
	if s.Pos >= len(s.B) {
		return s.Fail("unexpected end of input")
	}
	switch c := s.B[s.Pos]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, ok := s.Str()
		return ok
	case c == 't':
		return s.Literal("true")
	case c == 'f':
		return s.Literal("false")
	case c == 'n':
		return s.Literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.Number()
	default:
		return s.Fail("invalid character")
	}
}

// object scans an object whose '{' is at s.Pos; depth counts this object.
func (s *scanner) object(depth int) bool {
	if depth > MaxDepth {
		return s.TooDeep()
	}
	o := s.Object()
	for o.Next() {
		if !s.value(depth) {
			return false
		}
	}
	return o.Done()
}

// countArray scans a top-level member's array value (at s.Pos) and counts its
// elements.
func (s *scanner) countArray() (int, bool) {
	n := 0
	a := s.Array()
	for a.Next() {
		if !s.value(2) {
			return n, false
		}
		n++
	}
	return n, a.Done()
}

// array scans an array whose '[' is at s.Pos; depth counts this array.
func (s *scanner) array(depth int) bool {
	if depth > MaxDepth {
		return s.TooDeep()
	}
	a := s.Array()
	for a.Next() {
		if !s.value(depth) {
			return false
		}
	}
	return a.Done()
}
