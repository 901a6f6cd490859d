package guard

import (
	"bytes"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/llm"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Chat and completions text fields: the b of a text's streamKey (a is the
// choice index). Tool calls use chatTool plus the tool call's index.
const (
	chatContent int32 = iota
	chatRefusal
	chatReasoningContent
	chatReasoning
	chatFunction // the legacy delta.function_call.arguments
	chatText     // completions: choices[].text
	chatTool
)

// chatDeltaFields names the string members of a delta, by field.
var chatDeltaFields = [...]string{
	chatContent:          "content",
	chatRefusal:          "refusal",
	chatReasoningContent: "reasoning_content",
	chatReasoning:        "reasoning",
}

// chatSlot is a text member present in one event.
type chatSlot struct {
	key    streamKey
	node   int32 // the member's value, of any kind
	finish bool  // the choice ends in this event
}

// chatChoice is one choice of an event, with the containers a flush may
// add members to (-1 when absent).
type chatChoice struct {
	index  int32
	node   int32
	delta  int32
	fn     int32
	tools  int32
	finish bool
}

// chatEvent rewrites one chat completions or completions chunk.
func (r *SSERedactor) chatEvent(name, data []byte) {
	t := &r.tree
	if t.parse(data) != nil {
		r.unreadable(name, data)
		return
	}
	choices := t.member(0, "choices")
	if t.kind(choices) != '[' {
		if t.bad {
			r.unreadable(name, data)
			return
		}
		r.writeEvent(name, data)
		return
	}
	if !r.chatRead(choices) {
		r.unreadable(name, data)
		return
	}
	if len(r.slots) == 0 && !r.anyFinish() {
		r.writeEvent(name, data)
		return
	}
	r.ed.reset()
	for _, s := range r.slots {
		r.chatSlot(s)
	}
	for _, ch := range r.choices {
		if ch.finish {
			r.chatFinish(ch)
		}
	}
	out := r.release(data)
	if len(r.slots) > 0 {
		r.setEnvelope(name, data, choices)
	}
	r.writeEvent(name, out)
}

// anyFinish reports whether a choice of the event ends.
func (r *SSERedactor) anyFinish() bool {
	for _, ch := range r.choices {
		if ch.finish {
			return true
		}
	}
	return false
}

// chatRead collects the choices and text members of an event; false when
// the event cannot be read (an index that is not a small integer, an
// ambiguous member).
func (r *SSERedactor) chatRead(choices int32) bool {
	t := &r.tree
	r.slots, r.choices = r.slots[:0], r.choices[:0]
	pos := 0
	for c := t.nodes[choices].child; c >= 0; c, pos = t.nodes[c].next, pos+1 {
		if t.kind(c) != '{' {
			continue
		}
		idx, ok := t.index(t.member(c, "index"), pos)
		if !ok {
			return false
		}
		ch := chatChoice{index: int32(idx), node: c, delta: -1, fn: -1, tools: -1}
		// An empty finish_reason, which some compatible servers send on
		// every chunk, is not an end: flushing on it would stop matches
		// from spanning events.
		fin := t.member(c, "finish_reason")
		ch.finish = t.kind(fin) == '"' && len(t.raw(fin)) > 2
		if r.ep == llm.Completions {
			r.addSlot(ch, chatText, t.member(c, "text"))
			r.choices = append(r.choices, ch)
			continue
		}
		ch.delta = t.member(c, "delta")
		for f, name := range chatDeltaFields {
			r.addSlot(ch, int32(f), t.member(ch.delta, name))
		}
		ch.fn = t.member(ch.delta, "function_call")
		r.addSlot(ch, chatFunction, t.member(ch.fn, "arguments"))
		ch.tools = t.member(ch.delta, "tool_calls")
		if t.kind(ch.tools) == '[' {
			j := 0
			for e := t.nodes[ch.tools].child; e >= 0; e, j = t.nodes[e].next, j+1 {
				ti, ok := t.index(t.member(e, "index"), j)
				if !ok {
					return false
				}
				r.addSlot(ch, chatTool+int32(ti), t.member(t.member(e, "function"), "arguments"))
			}
		}
		r.choices = append(r.choices, ch)
	}
	return !t.bad
}

func (r *SSERedactor) addSlot(ch chatChoice, field, n int32) {
	if n >= 0 {
		r.slots = append(r.slots, chatSlot{key: streamKey{a: ch.index, b: field}, node: n, finish: ch.finish})
	}
}

// chatSlot replaces one text member's value with what its scanner
// releases, plus, when the choice ends here, everything it still holds.
func (r *SSERedactor) chatSlot(s chatSlot) {
	t := &r.tree
	nd := t.nodes[s.node]
	switch nd.kind {
	case '"':
		text := t.text(s.node, &r.dec)
		var out []byte
		if ts := r.text(s.key); ts != nil {
			out = r.push(ts, text)
			if s.finish {
				out = append(out, r.closeText(ts)...)
			}
		}
		if !bytes.Equal(out, text) {
			r.ed.replaceQuoted(nd.start, nd.end, out)
		}
	case 'n':
		if ts := r.texts[s.key]; ts != nil && s.finish {
			if out := r.closeText(ts); len(out) > 0 {
				r.ed.replaceQuoted(nd.start, nd.end, out)
			}
		}
	default:
		var out []byte
		if ts := r.texts[s.key]; ts != nil && s.finish {
			out = r.closeText(ts)
		}
		r.badValue(s.node, out)
	}
}

// chatFinish releases the held text of the choice's texts that the event
// does not carry, adding the members (and the delta) they need.
func (r *SSERedactor) chatFinish(ch chatChoice) {
	t := &r.tree
	var dm, tools members
	for _, ts := range r.openTexts() {
		if ts.key.a != ch.index {
			continue
		}
		field := ts.key.b
		out := r.closeText(ts)
		if len(out) == 0 {
			continue
		}
		switch {
		case field == chatText:
			var m members
			m.addQuoted("text", out)
			t.insertInto(&r.ed, ch.node, m)
		case field == chatFunction:
			var m members
			m.addQuoted("arguments", out)
			switch t.kind(ch.fn) {
			case '{':
				t.insertInto(&r.ed, ch.fn, m)
			case 0:
				dm.add("function_call", wrap('{', m, '}'))
			default:
				r.ed.replace(t.nodes[ch.fn].start, t.nodes[ch.fn].end, wrap('{', m, '}'))
			}
		case field >= chatTool:
			tools = appendToolCall(tools, field-chatTool, out)
		default:
			dm.addQuoted(chatDeltaFields[field], out)
		}
	}
	if len(tools) > 0 {
		switch t.kind(ch.tools) {
		case '[':
			t.insertInto(&r.ed, ch.tools, tools)
		case 0:
			dm.add("tool_calls", wrap('[', tools, ']'))
		default:
			r.ed.replace(t.nodes[ch.tools].start, t.nodes[ch.tools].end, wrap('[', tools, ']'))
		}
	}
	if len(dm) == 0 {
		return
	}
	switch t.kind(ch.delta) {
	case '{':
		t.insertInto(&r.ed, ch.delta, dm)
	case 0:
		var m members
		m.add("delta", wrap('{', dm, '}'))
		t.insertInto(&r.ed, ch.node, m)
	default:
		r.ed.replace(t.nodes[ch.delta].start, t.nodes[ch.delta].end, wrap('{', dm, '}'))
	}
}

// appendToolCall appends a tool_calls element carrying arguments text.
func appendToolCall(dst []byte, index int32, text []byte) []byte {
	if len(dst) > 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	dst = append(dst, `,"function":{"arguments":`...)
	dst = jsonlex.AppendQuoted(dst, text)
	return append(dst, "}}"...)
}

// wrap returns b between open and close.
func wrap(open byte, b []byte, close byte) []byte {
	out := make([]byte, 0, len(b)+2)
	out = append(out, open)
	out = append(out, b...)
	return append(out, close)
}

// setEnvelope keeps the event (as read: outside choices nothing changes)
// without its choices value, and with a non-null usage made null, as the
// frame of synthesized events.
func (r *SSERedactor) setEnvelope(name, data []byte, choices int32) {
	t := &r.tree
	cs, ce := t.nodes[choices].start, t.nodes[choices].end
	us, ue := int32(-1), int32(-1)
	if u := t.member(0, "usage"); u >= 0 && t.kind(u) != 'n' {
		us, ue = t.nodes[u].start, t.nodes[u].end
	}
	type cut struct {
		start, end int32
		choices    bool
	}
	cuts := [2]cut{{cs, ce, true}, {us, ue, false}}
	if us >= 0 && us < cs {
		cuts[0], cuts[1] = cuts[1], cuts[0]
	}
	r.env = r.env[:0]
	prev := int32(0)
	for _, c := range cuts {
		if c.start < 0 {
			continue
		}
		r.env = append(r.env, data[prev:c.start]...)
		if c.choices {
			r.envAt = len(r.env)
		} else {
			r.env = append(r.env, "null"...)
		}
		prev = c.end
	}
	r.env = append(r.env, data[prev:]...)
	r.envName = append(r.envName[:0], name...)
	r.hasEnv = true
}

// chatFlushAll releases the held text of every open text in one
// synthesized chunk, one choice per choice index.
func (r *SSERedactor) chatFlushAll(close bool) {
	type group struct {
		index     int32
		dm, tools members
	}
	var groups []group
	for _, ts := range r.openTexts() {
		var out []byte
		if close {
			out = r.closeText(ts)
		} else {
			out = r.flush(ts)
		}
		if len(out) == 0 {
			continue
		}
		gi := -1
		for i := range groups {
			if groups[i].index == ts.key.a {
				gi = i
			}
		}
		if gi < 0 {
			groups = append(groups, group{index: ts.key.a})
			gi = len(groups) - 1
		}
		g := &groups[gi]
		switch f := ts.key.b; {
		case f == chatText:
			g.dm.addQuoted("text", out)
		case f == chatFunction:
			var m members
			m.addQuoted("arguments", out)
			g.dm.add("function_call", wrap('{', m, '}'))
		case f >= chatTool:
			g.tools = appendToolCall(g.tools, f-chatTool, out)
		default:
			g.dm.addQuoted(chatDeltaFields[f], out)
		}
	}
	if len(groups) == 0 {
		return
	}
	arr := []byte{'['}
	for i, g := range groups {
		if i > 0 {
			arr = append(arr, ',')
		}
		arr = append(arr, `{"index":`...)
		arr = strconv.AppendInt(arr, int64(g.index), 10)
		if r.ep == llm.Completions {
			arr = append(arr, ',')
			arr = append(arr, g.dm...)
		} else {
			if len(g.tools) > 0 {
				g.dm.add("tool_calls", wrap('[', g.tools, ']'))
			}
			arr = append(arr, `,"delta":{`...)
			arr = append(arr, g.dm...)
			arr = append(arr, '}')
		}
		arr = append(arr, `,"logprobs":null,"finish_reason":null}`...)
	}
	arr = append(arr, ']')
	var ev []byte
	if r.hasEnv {
		ev = append(ev, r.env[:r.envAt]...)
		ev = append(ev, arr...)
		ev = append(ev, r.env[r.envAt:]...)
	} else {
		ev = append(append([]byte(`{"choices":`), arr...), '}')
	}
	r.writeEvent(r.envName, ev)
}
