package llm

import (
	"bytes"
	"fmt"
)

// Names of the top-level fields that cap a request's output tokens. They are
// the values Request.MaxTokensField takes and the fields WithMaxTokens sets.
const (
	// FieldMaxTokens is max_tokens: Anthropic Messages (required), OpenAI
	// legacy Completions, and OpenAI Chat's deprecated cap.
	FieldMaxTokens = "max_tokens"
	// FieldMaxCompletionTokens is OpenAI Chat Completions' current cap,
	// reasoning tokens included.
	FieldMaxCompletionTokens = "max_completion_tokens"
	// FieldMaxOutputTokens is OpenAI Responses' cap.
	FieldMaxOutputTokens = "max_output_tokens"
)

// maxFields is indexed like editSpans.max.
var maxFields = [...]string{FieldMaxTokens, FieldMaxCompletionTokens, FieldMaxOutputTokens}

// maxFieldIndex returns the index of name in maxFields, or -1.
func maxFieldIndex(name string) int {
	for i, f := range maxFields {
		if f == name {
			return i
		}
	}
	return -1
}

// span delimits a JSON value in a body; end is 0 when the value is absent
// (no value can end at offset 0).
type span struct{ start, end int }

// editSpans records, during ParseRequest's single pass, where the budgeting
// fields sit so they can be rewritten without another scan. Offsets refer
// to the parsed body only.
type editSpans struct {
	bodyLen  int
	open     int     // offset of the top-level '{'
	last     int     // end of the last top-level member's value; 0 if none
	max      [3]span // value of each max token field, indexed like maxFields
	opts     span    // value of stream_options
	optsKind byte    // first byte of that value: '{', 'n' (null) or other
	optsLast int     // inside a stream_options object: end of its last member's value; 0 if empty
	include  span    // value of include_usage inside a stream_options object
}

// maxTokens scans the value of a top-level max token field (maxFields[i]).
func (p *requestParser) maxTokens(i int, dup bool) bool {
	s := &p.s
	name := maxFields[i]
	if dup {
		p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, name))
	}
	start := s.Pos
	n, isCount := int64(0), false
	if s.Pos >= len(s.B) {
		return s.Value(1) // reports the end of input
	}
	switch c := s.B[s.Pos]; {
	case c == 'n':
		// OpenAI documents these caps as "integer or null"; null is
		// the default.
		if !s.Literal("null") {
			return false
		}
	case c == '-' || (c >= '0' && c <= '9'):
		if !s.Number() {
			return false
		}
		if n, isCount = parseCount(s.B[start:s.Pos]); !isCount {
			p.setFieldErr(fmt.Errorf("%w: %q must be a non-negative integer", ErrInvalidField, name))
		}
	default:
		p.setFieldErr(fmt.Errorf("%w: %q must be a non-negative integer", ErrInvalidField, name))
		return s.Value(1)
	}
	if !dup {
		p.req.edits.max[i] = span{start, s.Pos}
		if isCount && (!p.haveMax || n > p.req.MaxTokens) {
			p.req.MaxTokens, p.req.MaxTokensField = n, name
			p.haveMax = true
		}
	}
	return true
}

// parseCount parses a scanned JSON number that must be a plain non-negative
// integer fitting int64: no sign, fraction or exponent. Providers reject
// fractional caps, and Tollgate must not budget for a value it reads
// differently from the provider.
func parseCount(raw []byte) (int64, bool) {
	var n int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, len(raw) > 0
}

// streamOptions scans the value of the top-level stream_options member,
// looking one level into an object for include_usage. Values nested deeper
// go through the generic scanner, so the body is still read once.
func (p *requestParser) streamOptions(dup bool) bool {
	s := &p.s
	if dup {
		p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, "stream_options"))
	}
	start := s.Pos
	if s.Pos >= len(s.B) || s.B[s.Pos] != '{' {
		ok := s.Value(1)
		if ok && !dup {
			p.req.edits.opts = span{start, s.Pos}
			p.req.edits.optsKind = s.B[start]
		}
		return ok
	}
	last := 0
	var include span
	o := s.Object()
	for o.Next() {
		isInclude := string(o.Key()) == "include_usage"
		valueStart := s.Pos
		if !s.Value(2) {
			return false
		}
		if isInclude {
			if include.end > 0 {
				p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, "stream_options.include_usage"))
			} else {
				include = span{valueStart, s.Pos}
			}
		}
		last = s.Pos
	}
	if !o.Done() {
		return false
	}
	if !dup {
		e := &p.req.edits
		e.opts, e.optsKind, e.optsLast, e.include = span{start, s.Pos}, '{', last, include
		p.req.IncludeUsage = include.end > 0 && string(s.B[include.start:include.end]) == "true"
	}
	return true
}

// fits reports whether body is plausibly the slice r was parsed from.
func (e *editSpans) fits(body []byte) bool {
	return e.bodyLen > 0 && len(body) == e.bodyLen && body[e.open] == '{' &&
		(e.opts.end == 0 || body[e.opts.start] == e.optsKind)
}

// WithIncludeUsage returns body with stream_options.include_usage set to
// true, as Edits.IncludeUsage describes; every other byte is unchanged, and
// body itself is returned if include_usage already is true. A
// stream_options that is not an object or null is ErrInvalidField; a body
// other than the one r was parsed from is ErrBodyMismatch. It is one
// rewrite: r's offsets do not apply to the result, so several rewrites go
// through one Edits list instead.
func (r Request) WithIncludeUsage(body []byte) ([]byte, error) {
	var e Edits
	if err := e.Reset(&r, body); err != nil {
		return nil, err
	}
	if err := e.IncludeUsage(); err != nil {
		return nil, err
	}
	return e.Apply(), nil
}

// WithMaxTokens returns body with the top-level field set to n, as
// Edits.SetMaxTokens describes; every other byte is unchanged, and body
// itself is returned if the value already reads n. For a field other than
// FieldMaxTokens, FieldMaxCompletionTokens and FieldMaxOutputTokens, a
// negative n or a body other than the one r was parsed from it returns nil
// rather than a body whose cap was not set. It is one rewrite: several go
// through one Edits list instead.
func (r Request) WithMaxTokens(body []byte, field string, n int64) []byte {
	var e Edits
	if e.Reset(&r, body) != nil || !e.SetMaxTokens(field, n) {
		return nil
	}
	return e.Apply()
}

// MaxChoices bounds n and best_of: OpenAI refuses more than 128 choices, and a larger count
// would only serve to overflow a reservation.
const MaxChoices = 128

// choices scans the value of n or best_of: a non-negative integer (at most MaxChoices) or
// null. Anything else is ErrInvalidField, so Tollgate never reserves for a count it reads
// differently from the provider (a fractional 50.0 that a lenient server reads as 50).
func (p *requestParser) choices(name string, dup bool) bool {
	s := &p.s
	if dup {
		p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, name))
	}
	if s.Pos < len(s.B) && s.B[s.Pos] == 'n' {
		return s.Literal("null")
	}
	start := s.Pos
	if s.Pos >= len(s.B) || !(s.B[s.Pos] == '-' || s.B[s.Pos] >= '0' && s.B[s.Pos] <= '9') {
		p.setFieldErr(fmt.Errorf("%w: %q must be a non-negative integer", ErrInvalidField, name))
		return s.Value(1)
	}
	if !s.Number() {
		return false
	}
	n, ok := parseCount(s.B[start:s.Pos])
	if !ok || n > MaxChoices {
		p.setFieldErr(fmt.Errorf("%w: %q must be an integer from 0 to %d", ErrInvalidField, name, MaxChoices))
		return true
	}
	p.req.Choices = max(p.req.Choices, n)
	return true
}

// include scans the Responses "include" member: an array of strings naming extra output.
// An entry mentioning logprobs (message.output_text.logprobs) asks for per-token text;
// anything that is not an array of strings is treated as asking for it too, since the
// provider's reading of it cannot be known.
func (p *requestParser) include() bool {
	s := &p.s
	if s.Pos >= len(s.B) {
		return s.Value(1)
	}
	switch s.B[s.Pos] {
	case 'n':
		return s.Literal("null")
	case '[':
	default:
		p.wantLogprobs("include")
		return s.Value(1)
	}
	a := s.Array()
	for a.Next() {
		if s.Pos >= len(s.B) || s.B[s.Pos] != '"' {
			p.wantLogprobs("include")
			if !s.Value(2) {
				return false
			}
			continue
		}
		v, ok := s.StrValue()
		if !ok {
			return false
		}
		if bytes.Contains(bytes.ToLower(v), []byte("logprob")) {
			p.wantLogprobs("include")
		}
	}
	return a.Done()
}
