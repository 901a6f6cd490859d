package llm

import (
	"fmt"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Edits collects the rewrites of one request body and applies them in a
// single pass. Every offset refers to the body ParseRequest read, so no
// rewrite needs the body parsed again, however many there are: the upstream
// model, stream_options.include_usage and the output caps. Apply builds the
// new body in one allocation; bytes no edit touches are copied unchanged.
//
// Set it up with Reset; it is meant to live on the caller's stack and is
// not safe for concurrent use.
type Edits struct {
	r        Request // a copy: a pointer kept in e would move the caller's to the heap
	ok       bool    // Reset succeeded
	body     []byte
	list     [maxEdits]edit
	n        int
	appended bool    // a member was appended to the top-level object
	usage    bool    // include_usage is true, in the body or by an edit
	model    bool    // SetModel was called
	maxEdit  [3]int8 // for each max token field, 1 + the index of its edit; 0 if none
}

// maxEdits bounds an edit list: the model, include_usage and the three
// output caps, each edited at most once.
const maxEdits = 5

// edit replaces body[start:end] (an insertion when start == end) with, in
// order: a comma if comma is set, "key": if key is not empty (one of
// Tollgate's own field names, written as is), text, and quoted as a JSON
// string (kindQuoted) or num in decimal (kindNum). The pieces are kept apart
// so that building an edit never allocates.
type edit struct {
	start, end int
	comma      bool
	key        string
	text       string
	quoted     string
	num        int64
	kind       uint8
}

// The kinds of edit text.
const (
	kindText uint8 = iota
	kindQuoted
	kindNum
)

// Reset starts an empty edit list for body, which must be the slice r was
// parsed from (ErrBodyMismatch otherwise).
func (e *Edits) Reset(r *Request, body []byte) error {
	ms, me := r.modelStart, r.modelEnd
	if !r.edits.fits(body) || ms < 0 || me > len(body) || me-ms < 2 || body[ms] != '"' || body[me-1] != '"' {
		*e = Edits{}
		return ErrBodyMismatch
	}
	*e = Edits{r: *r, ok: true, body: body, usage: r.IncludeUsage}
	return nil
}

// add appends an edit. The methods that call it edit each place at most
// once, so the list never overflows.
func (e *Edits) add(ed edit) int {
	e.list[e.n] = ed
	e.n++
	return e.n - 1
}

// addMember appends a member, "key": then the value ed describes, as the
// last top-level member.
func (e *Edits) addMember(key string, ed edit) int {
	sp := &e.r.edits
	ed.start, ed.end, ed.key, ed.comma = sp.last, sp.last, key, true
	if sp.last == 0 {
		ed.start, ed.end, ed.comma = sp.open+1, sp.open+1, e.appended
	}
	e.appended = true
	return e.add(ed)
}

// SetModel replaces the model with model, encoded as a JSON string; nothing
// changes if model is the model the body holds. It reports false, adding no
// edit, for an empty model (which ParseRequest would refuse) and on a second
// call.
func (e *Edits) SetModel(model string) bool {
	if model == "" || !e.ok || e.model {
		return false
	}
	e.model = true
	if model != e.r.Model {
		e.add(edit{start: e.r.modelStart, end: e.r.modelEnd, quoted: model, kind: kindQuoted})
	}
	return true
}

// IncludeUsage sets stream_options.include_usage to true, so an OpenAI Chat
// Completions or Completions stream ends with a usage chunk that UsageParser
// can settle the budget from:
//   - include_usage already true: nothing changes;
//   - stream_options absent: "stream_options":{"include_usage":true} is
//     appended as the last top-level member;
//   - stream_options null: the null becomes {"include_usage":true};
//   - stream_options an object: include_usage is appended as its last
//     member, or its value (false, null or anything else) becomes true.
//
// A stream_options that is not an object or null is ErrInvalidField. OpenAI
// refuses stream_options on requests that do not stream, so call this only
// when the request's Stream is true.
func (e *Edits) IncludeUsage() error {
	if !e.ok {
		return ErrBodyMismatch
	}
	if e.usage {
		return nil
	}
	const member = `"include_usage":true`
	sp := &e.r.edits
	switch {
	case sp.opts.end == 0:
		e.addMember("stream_options", edit{text: `{` + member + `}`})
	case sp.optsKind == 'n':
		e.add(edit{start: sp.opts.start, end: sp.opts.end, text: `{` + member + `}`})
	case sp.optsKind != '{':
		return fmt.Errorf("%w: %q must be an object", ErrInvalidField, "stream_options")
	case sp.include.end > 0:
		e.add(edit{start: sp.include.start, end: sp.include.end, text: "true"})
	case sp.optsLast > 0:
		e.add(edit{start: sp.optsLast, end: sp.optsLast, comma: true, text: member})
	default:
		at := sp.opts.start + 1
		e.add(edit{start: at, end: at, text: member})
	}
	e.usage = true
	return nil
}

// SetMaxTokens sets the top-level output cap field to n: the value is
// replaced if the field is present (null included) and the member is
// appended otherwise; nothing changes if the value already reads n, and a
// later call for the same field overrides an earlier one. It reports false,
// adding no edit, for a field other than FieldMaxTokens,
// FieldMaxCompletionTokens and FieldMaxOutputTokens, or a negative n.
func (e *Edits) SetMaxTokens(field string, n int64) bool {
	i := maxFieldIndex(field)
	if i < 0 || n < 0 || !e.ok {
		return false
	}
	if k := e.maxEdit[i]; k > 0 {
		e.list[k-1].num = n
		return true
	}
	sp := e.r.edits.max[i]
	if sp.end == 0 {
		e.maxEdit[i] = int8(e.addMember(field, edit{num: n, kind: kindNum})) + 1
		return true
	}
	if v, ok := parseCount(e.body[sp.start:sp.end]); ok && v == n {
		return true
	}
	e.maxEdit[i] = int8(e.add(edit{start: sp.start, end: sp.end, num: n, kind: kindNum})) + 1
	return true
}

// maxTokens returns the value of max token field maxFields[i] with the edits
// applied, and whether it is a number (not absent or null).
func (e *Edits) maxTokens(i int) (int64, bool) {
	if k := e.maxEdit[i]; k > 0 {
		return e.list[k-1].num, true
	}
	sp := e.r.edits.max[i]
	return parseCount(e.body[sp.start:sp.end])
}

// HasMaxTokens reports whether the output cap field (FieldMaxTokens,
// FieldMaxCompletionTokens or FieldMaxOutputTokens) holds a number, edits
// applied.
func (e *Edits) HasMaxTokens(field string) bool {
	i := maxFieldIndex(field)
	if i < 0 || !e.ok {
		return false
	}
	_, ok := e.maxTokens(i)
	return ok
}

// CapMaxTokens limits the request's output to n tokens, n > 0: every output
// cap field above n is set to n and, when no field holds a number, field is
// set to n (unless field is ""). It returns the request's cap afterwards
// (its largest cap field, 0 when there is none), and false, having changed
// nothing, for a field SetMaxTokens refuses or an n that is not positive.
func (e *Edits) CapMaxTokens(n int64, field string) (int64, bool) {
	if !e.ok || n <= 0 || field != "" && maxFieldIndex(field) < 0 {
		return 0, false
	}
	largest, found := int64(0), false
	for i, f := range maxFields {
		v, ok := e.maxTokens(i)
		if !ok {
			continue
		}
		if v > n {
			e.SetMaxTokens(f, n)
			v = n
		}
		largest, found = max(largest, v), true
	}
	if !found && field != "" {
		return n, e.SetMaxTokens(field, n)
	}
	return largest, true
}

// Apply returns the body with every edit applied, in one allocation, or the
// body itself when there is none. Edits apply in the order of their offsets;
// insertions at one offset in the order they were made.
func (e *Edits) Apply() []byte {
	if !e.ok {
		return nil
	}
	if e.n == 0 {
		return e.body
	}
	// Insertion sort of a copy, stable: the list holds a handful of edits,
	// and maxEdit indexes it in the order the edits were made.
	var sorted [maxEdits]edit
	list := sorted[:copy(sorted[:], e.list[:e.n])]
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j].start < list[j-1].start; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
	size := len(e.body)
	for _, ed := range list {
		// A comma, a key's quotes and colon; a quoted byte takes at most 6
		// (\u00XX or \ufffd) plus the quotes; a number at most 20 bytes.
		size += 4 + len(ed.key) + len(ed.text) + 2 + 6*len(ed.quoted) + 20 - (ed.end - ed.start)
	}
	out := make([]byte, 0, size)
	prev := 0
	for _, ed := range list {
		out = append(out, e.body[prev:ed.start]...)
		if ed.comma {
			out = append(out, ',')
		}
		if ed.key != "" {
			out = append(out, '"')
			out = append(out, ed.key...)
			out = append(out, '"', ':')
		}
		out = append(out, ed.text...)
		switch ed.kind {
		case kindQuoted:
			out = jsonlex.AppendQuoted(out, ed.quoted)
		case kindNum:
			out = strconv.AppendInt(out, ed.num, 10)
		}
		prev = ed.end
	}
	return append(out, e.body[prev:]...)
}
