package guard

import (
	"bytes"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// Bounds on what one SSERedactor holds.
const (
	// maxHeldBytes caps the text held back by all of a stream's scanners
	// together. Past it every open text is flushed (redacted as far as it
	// goes) in synthesized events. One scanner holds at most four times the
	// longest match (see StreamScanner), so only many parallel texts reach
	// it.
	maxHeldBytes = 1 << 20
	// maxOpenTexts caps the texts (choices, tool calls, content blocks,
	// output parts) open at once. The text of one more is dropped and
	// recorded as a scan failure.
	maxOpenTexts = 512
	// maxTemplate caps the copy of an event kept to synthesize a flush event
	// in its image; a larger one is replaced by a minimal event.
	maxTemplate = 16 << 10
	// keepOut is the largest output buffer kept between calls.
	keepOut = 64 << 10
)

// doneData is the data of the OpenAI end-of-stream sentinel event.
var doneData = []byte("[DONE]")

// SSERedactor rewrites one streamed (text/event-stream) response so that
// only text the guardrails have checked leaves, even when a secret is split
// across chunks or events. Create one per response with
// Engine.NewSSERedactor, pass every body chunk to Feed, in order, and call
// Finish at the end of the stream; release exactly what they return.
//
// # Output
//
// Only complete events are released; an event cut across chunks waits for
// the rest. Each is re-serialized as "event: NAME\n" (when it had a type)
// and "data: JSON\n\n": one data line, or one per line of a data value that
// spans lines, so the data is always what was read. "id" and "retry" fields
// are not kept (their text is never scanned). A comment line (": keep-alive") is
// released as a bare ":" line, in order: the keep-alive still arrives, its text
// does not. An event name that is not a plain token ([A-Za-z0-9._-], at most
// 128 bytes, as every provider's are) is a scan failure, like unreadable data.
// The data of an event that carries no text is released
// byte-identical; in an event that does, only the text values change (and,
// where held text is released, members are added), every other byte is
// kept.
//
// # Where the text is
//
// The dialect tables (dialects.go) name the text members; the JSON
// response schemas are built from the same tables.
//
//   - Chat completions: the members of chatFields in choices[i].delta
//     (content, refusal, reasoning_content, reasoning, the legacy
//     function_call.arguments, tool_calls[j].function.arguments): one text
//     per choice index and member (and tool call index).
//   - Completions: choices[i].text.
//   - Responses: every "*.delta" event whose delta is a string
//     (response.output_text, .refusal, .function_call_arguments,
//     .reasoning_summary_text, .reasoning_text, ...; not response.audio),
//     one text per event kind, item_id, output_index, content_index and
//     summary_index. The events that repeat the full text (the matching
//     "*.done", the part, item and response events) are scanned whole,
//     like a JSON response, with the stream's placeholder numbering.
//   - Messages: content_block_delta with text_delta (delta.text),
//     input_json_delta (delta.partial_json) or thinking_delta
//     (delta.thinking), one text per block index; citations_delta
//     citations, message_start and content_block_start are scanned whole.
//
// Under a profile that rewrites responses (a block or redact rule, no dry
// run), every logprobs value is removed: choices[i].logprobs becomes null,
// a Responses event's, part's or item content's logprobs []. They repeat
// the text token by token, outside what redaction rewrites.
//
// # What is held back, and when it is released
//
// Each text goes through a StreamScanner: a delta is replaced by what Push
// releases (possibly ""), so the tail that could still start or continue a
// match (usually the last partial word) is held and released in a later
// delta of the same text. The rest is flushed:
//
//   - chat and completions: in the event that carries the choice's
//     finish_reason, appended to its text (the member, and delta, added when
//     absent); texts still open at "data: [DONE]" or at Finish, in one
//     synthesized event that copies the last text event's envelope (id,
//     model, ...; usage set to null) before [DONE];
//   - Responses: in a synthesized copy of the text's last delta event (its
//     logprobs emptied), just before the matching "*.done", before
//     response.completed, .incomplete or .failed, or at Finish. Released
//     events are renumbered so that sequence_number stays unique and
//     increasing (see responsesEvent);
//   - Messages: in a synthesized content_block_delta (same index and delta
//     type) just before the block's content_block_stop, before
//     message_delta or message_stop, or at Finish.
//
// When the held text of all texts passes 1 MiB, all are flushed at once.
//
// # Actions and failures
//
// As on StreamScanner, a block rule redacts (the status line is gone) and
// Findings report Redact; audit rules only count; under a dry run nothing
// is rewritten and Findings report the configured actions. An event whose
// data is not one readable JSON value (malformed, a duplicate key, members
// that differ only in case where text is read), a text value that is not a
// string, an event over llm.MaxSSEEventSize or a text past the open-text
// cap is a scan failure: every rule gets a Failed finding and, unless every
// rule fails open, the event (or that text) is dropped rather than released
// unchecked.
//
// A profile without rules, under a dry run, or with only audit rules that
// fail open changes nothing: Feed returns its chunk as it came, and the
// events are still scanned for Findings.
//
// Placeholders are numbered once per stream, across its texts and the
// events scanned whole, so a value keeps its number.
//
// Each Feed costs O(len(chunk) + bytes held by the texts it touches). An
// SSERedactor is not safe for concurrent use. Its methods are no-ops on a
// nil receiver (Feed then releases nothing).
type SSERedactor struct {
	p        *profile
	shape    llm.Shape // the endpoint's body shape: which table its events are read by
	observe  bool      // nothing is rewritten or dropped: the input is released as is
	failOpen bool      // every rule fails open: unreadable events are released
	finished bool

	sse     llm.SSEParser
	emit    func(event, data []byte) // r.onEvent, bound once
	dropped int

	// Comment tracking: the parser drops comment lines, so the redactor
	// follows line starts itself and feeds the parser up to the end of each
	// comment before releasing it, which keeps comments in order.
	lineStart bool
	inComment bool
	skipLF    bool

	out   []byte // released by the current call
	tree  jtree
	ed    editor
	ted   editor // builds Responses templates
	dec   []byte // decoded strings
	typ   []byte // a decoded "type" member
	evbuf []byte // an event with its edits applied
	kbuf  []byte

	texts map[streamKey]*textStream
	open  []*textStream // the open texts, oldest first
	free  []*StreamScanner
	held  int // bytes held by the open texts' scanners

	counts  []int // per rule: matches in streamed text (shared by the scanners)
	whole   []int // per rule: matches in events scanned whole
	repeat  []int // per rule: most matches in one event that repeats streamed text
	evCount []int
	failed  bool
	ph      placeholders

	// Responses: the last sequence number released, and what renumbering
	// added to the provider's (see responsesEvent).
	lastSeq int64
	seqOff  int64

	// chat and completions
	slots   []chatSlot
	choices []chatChoice
	env     []byte // the last text event without its choices value
	envAt   int    // where that value was
	envName []byte
	hasEnv  bool
}

// NewSSERedactor returns a redactor for one streamed response of endpoint
// ep under the named profile. The endpoint's body shape (llm.Spec.Guard)
// must stream: chat, completions, Responses or Messages; others are
// ErrUnsupportedEndpoint.
func (e *Engine) NewSSERedactor(profile string, ep llm.Endpoint) (*SSERedactor, error) {
	p, ok := e.profiles[profile]
	if !ok {
		return nil, ErrUnknownProfile
	}
	shape := ep.Spec().Guard
	switch shape {
	case llm.ShapeChat, llm.ShapeCompletions, llm.ShapeResponses, llm.ShapeMessages:
	default:
		return nil, ErrUnsupportedEndpoint
	}
	n := len(p.Rules)
	r := &SSERedactor{
		p: p, shape: shape, lineStart: true,
		counts: make([]int, n), whole: make([]int, n), repeat: make([]int, n), evCount: make([]int, n),
		texts: map[streamKey]*textStream{}, lastSeq: -1,
	}
	r.emit = r.onEvent
	auditOnly, allOpen := true, true
	for _, rule := range p.Rules {
		auditOnly = auditOnly && rule.Action == Audit
		allOpen = allOpen && rule.FailOpen
	}
	r.failOpen = allOpen
	r.observe = n == 0 || p.DryRun || (auditOnly && allOpen)
	return r, nil
}

// Feed reads the next chunk of the body and returns the bytes to release in
// its place (possibly none). The returned slice is the caller's.
func (r *SSERedactor) Feed(chunk []byte) []byte {
	if r == nil || r.finished {
		return nil
	}
	r.out = r.out[:0]
	r.feedLines(chunk)
	r.checkDropped()
	if r.observe {
		return bytes.Clone(chunk)
	}
	return r.take()
}

// Finish ends the stream: an event the body left unterminated is read as
// complete, and every text still held is released, redacted. Later calls
// release nothing.
func (r *SSERedactor) Finish() []byte {
	if r == nil || r.finished {
		return nil
	}
	r.out = r.out[:0]
	r.sse.Flush(r.emit)
	r.checkDropped()
	r.flushAll(true)
	r.finished = true
	if r.observe {
		return nil
	}
	return r.take()
}

// Findings reports per rule what the stream held so far, in profile order
// with an empty Path (the shape of Result.Totals): never any text. The
// Responses events that repeat streamed text are not counted twice: a
// rule's count is its streamed matches or the matches of the richest
// repeating event, whichever is larger.
func (r *SSERedactor) Findings() []Finding {
	if r == nil {
		return nil
	}
	var out []Finding
	for i, rule := range r.p.Rules {
		n := max(r.counts[i]+r.whole[i], r.repeat[i])
		if n == 0 && !r.failed {
			continue
		}
		act := rule.Action
		if act == Block && !r.p.DryRun {
			act = Redact
		}
		out = append(out, Finding{RuleID: rule.ID, Detector: rule.Detector, Action: act, Count: n, Failed: r.failed})
	}
	return out
}

// take returns a copy of the output and keeps the buffer unless it grew
// large.
func (r *SSERedactor) take() []byte {
	if len(r.out) == 0 {
		return nil
	}
	out := bytes.Clone(r.out)
	if cap(r.out) > keepOut {
		r.out = nil
	}
	return out
}

// checkDropped records events the parser dropped for their size: they are
// never released, and their text went unscanned.
func (r *SSERedactor) checkDropped() {
	if d := r.sse.Dropped(); d != r.dropped {
		r.dropped = d
		r.failed = true
	}
}

// feedLines passes chunk to the SSE parser, split after each comment line
// so that the comment is released after the events before it.
func (r *SSERedactor) feedLines(chunk []byte) {
	start, i := 0, 0
	if r.skipLF && len(chunk) > 0 {
		// The last chunk ended in '\r'; a '\n' here ends no further line.
		r.skipLF = false
		if chunk[0] == '\n' {
			i = 1
		}
	}
	nextLF, nextCR := -1, -1
	for i < len(chunk) {
		if r.lineStart {
			r.lineStart = false
			r.inComment = chunk[i] == ':'
		}
		if nextLF < i {
			nextLF = indexFrom(chunk, i, '\n')
		}
		if nextCR < i {
			nextCR = indexFrom(chunk, i, '\r')
		}
		end := min(nextLF, nextCR)
		if end == len(chunk) {
			break
		}
		next := end + 1
		if chunk[end] == '\r' {
			switch {
			case next == len(chunk):
				r.skipLF = true
			case chunk[next] == '\n':
				next++
			}
		}
		r.lineStart = true
		if r.inComment {
			r.sse.Feed(chunk[start:next], r.emit)
			start = next
			r.inComment = false
			if !r.observe {
				// A keep-alive still arrives, but not its text: comments are not scanned.
				r.out = append(r.out, ':', '\n')
			}
		}
		i = next
	}
	if start < len(chunk) {
		r.sse.Feed(chunk[start:], r.emit)
	}
}

// indexFrom returns the index of the first c in b at or after i, or len(b).
func indexFrom(b []byte, i int, c byte) int {
	if j := bytes.IndexByte(b[i:], c); j >= 0 {
		return i + j
	}
	return len(b)
}

// onEvent handles one complete event. data is valid only during the call.
func (r *SSERedactor) onEvent(name, data []byte) {
	if !plainEventName(name) {
		r.unreadable(name, data)
		return
	}
	if bytes.Equal(data, doneData) {
		r.flushAll(true)
		r.writeEvent(name, data)
		return
	}
	switch r.shape {
	case llm.ShapeChat, llm.ShapeCompletions:
		r.chatEvent(name, data)
	case llm.ShapeResponses:
		r.responsesEvent(name, data)
	case llm.ShapeMessages:
		r.messagesEvent(name, data)
	}
	r.tree.release()
	if r.held > maxHeldBytes {
		r.flushAll(false)
	}
}

// writeEvent releases one event. A data value that spans lines is written
// as one data line per line, which a client joins back with '\n'.
func (r *SSERedactor) writeEvent(name, data []byte) {
	if r.observe {
		return
	}
	if len(name) > 0 {
		r.out = append(r.out, "event: "...)
		r.out = append(r.out, name...)
		r.out = append(r.out, '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		r.out = append(r.out, "data: "...)
		r.out = append(r.out, line...)
		r.out = append(r.out, '\n')
		if !more {
			break
		}
		data = rest
	}
	r.out = append(r.out, '\n')
}

// unreadable handles an event whose text cannot be read: a scan failure,
// released as it came only when every rule fails open.
func (r *SSERedactor) unreadable(name, data []byte) {
	r.failed = true
	if r.failOpen {
		r.writeEvent(name, data)
	}
}

// plainEventName reports whether an SSE event name is a plain token (or absent): text there
// is not scanned, so only names no secret can hide in are released.
func plainEventName(name []byte) bool {
	if len(name) > 128 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
