package guard

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/tollgate-ai/tollgate/policy/llm"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Chat and completions texts: the b of a text's streamKey (a is the choice
// index) is its row in chatFields (completionsFields), or chatTool plus the
// tool call's index for tool call arguments.
const chatTool int32 = 1 << 16

// chatPath is a row of a chat table as the stream reads it: the members
// from the choice's delta (completions: from the choice) or, for tools,
// from an element of delta.tool_calls.
type chatPath struct {
	segs  []string
	tools bool
}

// chatPaths and completionsPaths are chatFields and completionsFields, row
// for row.
var chatPaths, completionsPaths = chatPathsOf(chatFields), chatPathsOf(completionsFields)

func chatPathsOf(fs []chatField) []chatPath {
	var out []chatPath
	for _, c := range fs {
		if rest, ok := strings.CutPrefix(c.path, "tool_calls[]."); ok {
			out = append(out, chatPath{segs: strings.Split(rest, "."), tools: true})
			continue
		}
		out = append(out, chatPath{segs: strings.Split(c.path, ".")})
	}
	return out
}

// paths returns the chat table rows of the redactor's endpoint.
func (r *SSERedactor) paths() []chatPath {
	if r.shape == llm.ShapeCompletions {
		return completionsPaths
	}
	return chatPaths
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
	index    int32
	node     int32
	delta    int32 // the delta (completions: the choice itself)
	tools    int32
	logprobs int32 // a logprobs value to replace, -1 when none
	finish   bool
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
	if len(r.slots) == 0 && !r.anyChoice() {
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
		if ch.logprobs >= 0 {
			nd := t.nodes[ch.logprobs]
			r.ed.replace(nd.start, nd.end, []byte("null"))
		}
	}
	out := r.release(data)
	if len(r.slots) > 0 {
		r.setEnvelope(name, data, choices)
	}
	r.writeEvent(name, out)
}

// anyChoice reports whether a choice of the event ends or has logprobs to
// replace.
func (r *SSERedactor) anyChoice() bool {
	for _, ch := range r.choices {
		if ch.finish || ch.logprobs >= 0 {
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
		ch := chatChoice{index: int32(idx), node: c, delta: c, tools: -1, logprobs: -1}
		// An empty finish_reason, which some compatible servers send on
		// every chunk, is not an end: flushing on it would stop matches
		// from spanning events.
		fin := t.member(c, "finish_reason")
		ch.finish = t.kind(fin) == '"' && len(t.raw(fin)) > 2
		if lp := t.member(c, "logprobs"); r.p.stripLogprobs && lp >= 0 && t.kind(lp) != 'n' {
			ch.logprobs = lp
		}
		if r.shape != llm.ShapeCompletions {
			ch.delta = t.member(c, "delta")
		}
		for i, p := range r.paths() {
			if !p.tools {
				r.addSlot(ch, int32(i), t.path(ch.delta, p.segs))
				continue
			}
			ch.tools = t.member(ch.delta, "tool_calls")
			if t.kind(ch.tools) != '[' {
				continue
			}
			j := 0
			for e := t.nodes[ch.tools].child; e >= 0; e, j = t.nodes[e].next, j+1 {
				ti, ok := t.index(t.member(e, "index"), j)
				if !ok {
					return false
				}
				r.addSlot(ch, chatTool+int32(ti), t.path(e, p.segs))
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
	var ps []pending
	var tools []byte
	for _, ts := range r.openTexts() {
		if ts.key.a != ch.index {
			continue
		}
		out := r.closeText(ts)
		if len(out) == 0 {
			continue
		}
		if ts.key.b >= chatTool {
			tools = r.appendToolCall(tools, ts.key.b-chatTool, out)
			continue
		}
		ps = append(ps, pending{segs: r.paths()[ts.key.b].segs, val: jsonlex.AppendQuoted(nil, out)})
	}
	if len(tools) > 0 {
		switch t.kind(ch.tools) {
		case '[':
			t.insertInto(&r.ed, ch.tools, tools)
		case 0:
			ps = append(ps, pending{segs: []string{"tool_calls"}, val: wrap('[', tools, ']')})
		default:
			r.ed.replace(t.nodes[ch.tools].start, t.nodes[ch.tools].end, wrap('[', tools, ']'))
		}
	}
	if len(ps) == 0 {
		return
	}
	dm := r.place(ch.delta, ps)
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

// pending is a value (JSON) to place at a path of members.
type pending struct {
	segs []string
	val  []byte
}

// place puts each value at its path under object c of the event (-1: an
// object yet to be written). Values under a member c already has go into
// it (the member is replaced when it is not an object); the members c
// lacks are returned, to be added to c by the caller.
func (r *SSERedactor) place(c int32, ps []pending) members {
	t := &r.tree
	var m members
	used := make([]bool, len(ps))
	for i, p := range ps {
		if used[i] {
			continue
		}
		used[i] = true
		if len(p.segs) == 1 {
			m.add(p.segs[0], p.val)
			continue
		}
		name := p.segs[0]
		sub := []pending{{p.segs[1:], p.val}}
		for j := i + 1; j < len(ps); j++ {
			if !used[j] && len(ps[j].segs) > 1 && ps[j].segs[0] == name {
				used[j] = true
				sub = append(sub, pending{ps[j].segs[1:], ps[j].val})
			}
		}
		child := t.member(c, name)
		switch t.kind(child) {
		case '{':
			if sm := r.place(child, sub); len(sm) > 0 {
				t.insertInto(&r.ed, child, sm)
			}
		case 0:
			m.add(name, wrap('{', r.place(-1, sub), '}'))
		default:
			r.ed.replace(t.nodes[child].start, t.nodes[child].end, wrap('{', r.place(-1, sub), '}'))
		}
	}
	return m
}

// appendToolCall appends a tool_calls element carrying text at the tool
// row's path.
func (r *SSERedactor) appendToolCall(dst []byte, index int32, text []byte) []byte {
	if len(dst) > 0 {
		dst = append(dst, ',')
	}
	var segs []string
	for _, p := range r.paths() {
		if p.tools {
			segs = p.segs
		}
	}
	m := r.place(-1, []pending{{segs, jsonlex.AppendQuoted(nil, text)}})
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	dst = append(dst, ',')
	dst = append(dst, m...)
	return append(dst, '}')
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
		index int32
		ps    []pending
		tools []byte
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
		if ts.key.b >= chatTool {
			g.tools = r.appendToolCall(g.tools, ts.key.b-chatTool, out)
			continue
		}
		g.ps = append(g.ps, pending{segs: r.paths()[ts.key.b].segs, val: jsonlex.AppendQuoted(nil, out)})
	}
	if len(groups) == 0 {
		return
	}
	arr := []byte{'['}
	for i, g := range groups {
		if i > 0 {
			arr = append(arr, ',')
		}
		if len(g.tools) > 0 {
			g.ps = append(g.ps, pending{segs: []string{"tool_calls"}, val: wrap('[', g.tools, ']')})
		}
		arr = append(arr, `{"index":`...)
		arr = strconv.AppendInt(arr, int64(g.index), 10)
		if r.shape == llm.ShapeCompletions {
			arr = append(arr, ',')
			arr = append(arr, r.place(-1, g.ps)...)
		} else {
			arr = append(arr, `,"delta":{`...)
			arr = append(arr, r.place(-1, g.ps)...)
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
