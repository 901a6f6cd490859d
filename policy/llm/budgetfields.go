package llm

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
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
// true, so an OpenAI Chat Completions or Completions stream ends with a
// usage chunk that UsageParser can settle the budget from. Every other byte
// is unchanged:
//   - include_usage already true: body itself is returned;
//   - stream_options absent: "stream_options":{"include_usage":true} is
//     appended as the last top-level member;
//   - stream_options null: the null becomes {"include_usage":true};
//   - stream_options an object: include_usage is appended as its last
//     member, or its value (false, null or anything else) becomes true.
//
// A stream_options that is not an object or null is ErrInvalidField.
// body must be the slice r was parsed from, otherwise ErrBodyMismatch. The
// result is valid JSON whenever body parsed, but r's offsets do not apply
// to it: parse it again before another rewrite. OpenAI refuses
// stream_options on requests that do not stream, so call this only when
// r.Stream is true.
func (r Request) WithIncludeUsage(body []byte) ([]byte, error) {
	e := &r.edits
	if !e.fits(body) {
		return nil, ErrBodyMismatch
	}
	if r.IncludeUsage {
		return body, nil
	}
	const member = `"include_usage":true`
	switch {
	case e.opts.end == 0:
		return e.addMember(body, `"stream_options":{`+member+`}`), nil
	case e.optsKind == 'n':
		return splice(body, e.opts.start, e.opts.end, "", `{`+member+`}`), nil
	case e.optsKind != '{':
		return nil, fmt.Errorf("%w: %q must be an object", ErrInvalidField, "stream_options")
	case e.include.end > 0:
		return splice(body, e.include.start, e.include.end, "", "true"), nil
	case e.optsLast > 0:
		return splice(body, e.optsLast, e.optsLast, ",", member), nil
	default:
		at := e.opts.start + 1
		return splice(body, at, at, "", member), nil
	}
}

// WithMaxTokens returns body with the top-level field set to n: the value
// is replaced if the field is present (null included) and the member is
// appended otherwise; every other byte is unchanged, and body itself is
// returned if the value already reads n. field must be one of FieldMaxTokens,
// FieldMaxCompletionTokens and FieldMaxOutputTokens, n must be non-negative,
// and body must be the slice r was parsed from; otherwise WithMaxTokens
// returns nil rather than a body whose cap was not set.
//
// Request.MaxTokens is the largest cap present, so to lower it set every
// field that is present, parsing the result again between calls (r's
// offsets do not apply to the result).
func (r Request) WithMaxTokens(body []byte, field string, n int64) []byte {
	i := maxFieldIndex(field)
	e := &r.edits
	if i < 0 || n < 0 || !e.fits(body) {
		return nil
	}
	var buf [20]byte
	num := strconv.AppendInt(buf[:0], n, 10)
	sp := e.max[i]
	if sp.end == 0 {
		return e.addMember(body, `"`+field+`":`+string(num))
	}
	if bytes.Equal(body[sp.start:sp.end], num) {
		return body
	}
	return splice(body, sp.start, sp.end, "", string(num))
}

// addMember appends member ("key":value) as the last top-level member.
func (e *editSpans) addMember(body []byte, member string) []byte {
	if e.last == 0 {
		return splice(body, e.open+1, e.open+1, "", member)
	}
	return splice(body, e.last, e.last, ",", member)
}

// splice returns a new slice holding body with body[start:end] replaced by
// sep followed by insert.
func splice(body []byte, start, end int, sep, insert string) []byte {
	out := make([]byte, 0, len(body)-(end-start)+len(sep)+len(insert))
	out = append(out, body[:start]...)
	out = append(out, sep...)
	out = append(out, insert...)
	return append(out, body[end:]...)
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
		start := s.Pos
		flags, ok := s.Str()
		if !ok {
			return false
		}
		if bytes.Contains(bytes.ToLower(jsonlex.CanonicalKey(s.B[start+1:s.Pos-1], flags)), []byte("logprob")) {
			p.wantLogprobs("include")
		}
	}
	return a.Done()
}
