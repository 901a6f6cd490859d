package llm

import "github.com/tollgate-ai/tollgate/policy/internal/jsonlex"

// MaxDepth is the deepest nesting of objects and arrays that ParseRequest and
// ValidJSON accept. The top-level object counts as depth 1. Real chat bodies
// nest fewer than 20 levels; the cap bounds recursion on hostile input.
const MaxDepth = jsonlex.MaxDepth

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
	return s.Value(0) && s.End()
}

// countArray scans a top-level member's array value (at s.Pos) and counts its
// elements.
func (s *scanner) countArray() (int, bool) {
	n := 0
	a := s.Array()
	for a.Next() {
		if !s.Value(2) {
			return n, false
		}
		n++
	}
	return n, a.Done()
}
