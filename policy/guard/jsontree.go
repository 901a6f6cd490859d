package guard

import (
	"bytes"
	"slices"
	"unicode/utf8"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// jnode is one value of an event parsed by jtree: byte spans into the event,
// never copies of it.
type jnode struct {
	start, end   int32 // the value's bytes (a string's quotes included)
	kstart, kend int32 // the member's key token, quotes included; 0, 0 when not a member
	child, next  int32 // first child and next sibling; -1 when none
	kind         byte  // '{', '[', '"', '0' (number), 't', 'f', 'n'
	flags        uint8 // jsonlex.Escaped, jsonlex.NonASCII of a string value
	kflags       uint8 // the same for the key
}

// jtree is a flat, span-based parse of one small JSON document (an SSE
// event's data), built with the walker's strict lexer so the redactor can
// read a few members and patch a few values while leaving every other byte
// as it came. Its slices are reused from event to event.
//
// Member lookups match names case-insensitively, as the walker does: a Go
// client decoding the event with encoding/json would read "Content" as
// content. A lookup that matches two members sets bad, and the caller treats
// the event as unreadable, since clients disagree on which one wins.
type jtree struct {
	w     walker // the lexer; locs, paths and keys are unused
	nodes []jnode
	bad   bool
}

// parse parses b as exactly one JSON value (MaxDepth deep at most, no
// duplicate key in any object). The root is node 0. Errors wrap
// ErrInvalidJSON or are ErrDuplicateKey.
func (t *jtree) parse(b []byte) error {
	t.w.reset(b)
	t.nodes = t.nodes[:0]
	t.bad = false
	t.w.SkipWS()
	if t.w.Pos >= len(b) {
		t.w.Fail("unexpected end of input")
		return t.w.Err
	}
	if _, ok := t.value(0); !ok || !t.w.End() {
		return t.w.Err
	}
	return nil
}

// release drops the reference to the last event, whose memory belongs to
// the SSE parser.
func (t *jtree) release() { t.w.reset(nil) }

// value parses the value at the lexer's position; depth counts the
// containers around it.
func (t *jtree) value(depth int) (int32, bool) {
	w := &t.w
	if w.Pos >= len(w.B) {
		return -1, w.Fail("unexpected end of input")
	}
	i := int32(len(t.nodes))
	t.nodes = append(t.nodes, jnode{start: int32(w.Pos), child: -1, next: -1})
	var ok bool
	switch c := w.B[w.Pos]; {
	case c == '{':
		t.nodes[i].kind = '{'
		ok = t.object(i, depth+1)
	case c == '[':
		t.nodes[i].kind = '['
		ok = t.array(i, depth+1)
	case c == '"':
		var flags uint8
		flags, ok = w.Str()
		t.nodes[i].kind, t.nodes[i].flags = '"', flags
	case c == '-' || (c >= '0' && c <= '9'):
		t.nodes[i].kind, ok = '0', w.Number()
	default: // 't', 'f' and 'n' are their literals' kinds
		t.nodes[i].kind, ok = c, w.Scalar()
	}
	t.nodes[i].end = int32(w.Pos)
	return i, ok
}

// object parses the members of the object node i.
func (t *jtree) object(i int32, depth int) bool {
	w := &t.w
	if depth > MaxDepth {
		return w.TooDeep()
	}
	var big map[string]struct{}
	prev, members := int32(-1), 0
	o := w.Object()
	for o.Next() {
		if t.duplicate(i, o.Key(), members, &big) {
			if w.Err == nil {
				w.Err = ErrDuplicateKey
			}
			return false
		}
		members++
		c, ok := t.value(depth)
		if !ok {
			return false
		}
		t.nodes[c].kstart, t.nodes[c].kend, t.nodes[c].kflags = int32(o.KeyStart), int32(o.KeyEnd), o.KeyFlags
		t.link(i, prev, c)
		prev = c
	}
	return o.Done()
}

// array parses the elements of the array node i.
func (t *jtree) array(i int32, depth int) bool {
	w := &t.w
	if depth > MaxDepth {
		return w.TooDeep()
	}
	prev := int32(-1)
	a := w.Array()
	for a.Next() {
		c, ok := t.value(depth)
		if !ok {
			return false
		}
		t.link(i, prev, c)
		prev = c
	}
	return a.Done()
}

// duplicate reports whether object i, which has n members so far, already
// has key (decoded). Small objects compare with their members; past
// smallKeys a set takes over, keeping wide objects linear.
func (t *jtree) duplicate(i int32, key []byte, n int, big *map[string]struct{}) bool {
	if *big == nil && n < smallKeys {
		for c := t.nodes[i].child; c >= 0; c = t.nodes[c].next {
			if bytes.Equal(t.key(c), key) {
				return true
			}
		}
		return false
	}
	if *big == nil {
		*big = make(map[string]struct{}, 4*smallKeys)
		for c := t.nodes[i].child; c >= 0; c = t.nodes[c].next {
			(*big)[string(t.key(c))] = struct{}{}
		}
	}
	if _, ok := (*big)[string(key)]; ok {
		return true
	}
	(*big)[string(key)] = struct{}{}
	return false
}

// key returns the decoded key of member node c.
func (t *jtree) key(c int32) []byte {
	nd := &t.nodes[c]
	return jsonlex.CanonicalKey(t.w.B[nd.kstart+1:nd.kend-1], nd.kflags)
}

// link appends child c to parent i after prev.
func (t *jtree) link(i, prev, c int32) {
	if prev < 0 {
		t.nodes[i].child = c
	} else {
		t.nodes[prev].next = c
	}
}

// kind returns the kind of node n, 0 for -1.
func (t *jtree) kind(n int32) byte {
	if n < 0 {
		return 0
	}
	return t.nodes[n].kind
}

// member returns the member name of object n, -1 when n is not an object or
// has no such member.
func (t *jtree) member(n int32, name string) int32 {
	if t.kind(n) != '{' {
		return -1
	}
	found := int32(-1)
	for c := t.nodes[n].child; c >= 0; c = t.nodes[c].next {
		nd := &t.nodes[c]
		if nd.kflags == 0 && int(nd.kend-nd.kstart-2) != len(name) {
			// ASCII case folding keeps the length (names are ASCII).
			continue
		}
		if bytes.EqualFold(t.key(c), []byte(name)) {
			if found >= 0 {
				t.bad = true
				return -1
			}
			found = c
		}
	}
	return found
}

// path follows the members segs from n: the last one's node, -1 when one is
// missing.
func (t *jtree) path(n int32, segs []string) int32 {
	for _, s := range segs {
		if n = t.member(n, s); n < 0 {
			return -1
		}
	}
	return n
}

// seq reads node n as a sequence number: a non-negative integer of at most
// 15 digits. ok is false for anything else.
func (t *jtree) seq(n int32) (int64, bool) {
	if t.kind(n) != '0' {
		return 0, false
	}
	raw := t.raw(n)
	if len(raw) == 0 || len(raw) > 15 || (len(raw) > 1 && raw[0] == '0') {
		return 0, false
	}
	var v int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// emptyArray reports whether n is an array without elements.
func (t *jtree) emptyArray(n int32) bool {
	return t.kind(n) == '[' && t.nodes[n].child < 0
}

// raw returns the bytes of node n (nil for -1).
func (t *jtree) raw(n int32) []byte {
	if n < 0 {
		return nil
	}
	return t.w.B[t.nodes[n].start:t.nodes[n].end]
}

// text returns the decoded value of string node n: its raw bytes when they
// need no decoding, else a decoded copy in *scratch.
func (t *jtree) text(n int32, scratch *[]byte) []byte {
	nd := t.nodes[n]
	raw := t.w.B[nd.start+1 : nd.end-1]
	if nd.flags == 0 || (nd.flags == jsonlex.NonASCII && utf8.Valid(raw)) {
		return raw
	}
	*scratch, _ = jsonlex.Unquote((*scratch)[:0], raw)
	return *scratch
}

// is reports whether n is a string whose value is s.
func (t *jtree) is(n int32, s string) bool {
	if t.kind(n) != '"' {
		return false
	}
	nd := t.nodes[n]
	raw := t.w.B[nd.start+1 : nd.end-1]
	if nd.flags&jsonlex.Escaped == 0 {
		return string(raw) == s
	}
	dec, _ := jsonlex.Unquote(nil, raw)
	return string(dec) == s
}

// index reads node n as a small non-negative integer (an array index in
// the provider's numbering): def when n is absent, ok false when it is not
// such a number.
func (t *jtree) index(n int32, def int) (int, bool) {
	if n < 0 {
		return def, true
	}
	if t.kind(n) != '0' {
		return 0, false
	}
	raw := t.raw(n)
	if len(raw) == 0 || len(raw) > 6 {
		return 0, false
	}
	v := 0
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// edit replaces src[start:end] (an insertion when start == end) with the
// bytes buf[off:off+n] of an editor.
type edit struct {
	start, end int32
	off, n     int32
}

// editor collects the edits of one event and applies them in one copy.
type editor struct {
	edits []edit
	buf   []byte
}

func (e *editor) reset() {
	e.edits = e.edits[:0]
	e.buf = e.buf[:0]
}

// size returns the length of a source of srcLen bytes with the edits
// applied.
func (e *editor) size(srcLen int) int {
	for _, ed := range e.edits {
		srcLen += int(ed.n) - int(ed.end-ed.start)
	}
	return srcLen
}

// mapPos returns where source offset p lands once the edits are applied; p
// is not inside an edit (the start of one is fine).
func (e *editor) mapPos(p int32) int {
	d := int32(0)
	for _, ed := range e.edits {
		if ed.start < p {
			d += ed.n - (ed.end - ed.start)
		}
	}
	return int(p + d)
}

// replace replaces src[start:end] with b.
func (e *editor) replace(start, end int32, b []byte) {
	e.edits = append(e.edits, edit{start: start, end: end, off: int32(len(e.buf)), n: int32(len(b))})
	e.buf = append(e.buf, b...)
}

// replaceQuoted replaces src[start:end] with s as a JSON string.
func (e *editor) replaceQuoted(start, end int32, s []byte) {
	off := len(e.buf)
	e.buf = jsonlex.AppendQuoted(e.buf, s)
	e.edits = append(e.edits, edit{start: start, end: end, off: int32(off), n: int32(len(e.buf) - off)})
}

// apply appends src with the edits applied to dst. Edits must not overlap;
// insertions at one offset keep the order they were made in.
func (e *editor) apply(dst, src []byte) []byte {
	slices.SortStableFunc(e.edits, func(a, b edit) int { return int(a.start - b.start) })
	prev := int32(0)
	for _, ed := range e.edits {
		dst = append(dst, src[prev:ed.start]...)
		dst = append(dst, e.buf[ed.off:ed.off+ed.n]...)
		prev = ed.end
	}
	return append(dst, src[prev:]...)
}

// members builds the text of object members to insert: `"k":v,"k2":v2`.
type members []byte

func (m *members) add(name string, value []byte) {
	if len(*m) > 0 {
		*m = append(*m, ',')
	}
	*m = append(*m, '"')
	*m = append(*m, name...)
	*m = append(*m, '"', ':')
	*m = append(*m, value...)
}

// insertInto inserts text (members of object n, or elements of array n) at
// the end of container n, after a comma when it already has children.
func (t *jtree) insertInto(e *editor, n int32, text []byte) {
	nd := t.nodes[n]
	off := len(e.buf)
	if nd.child >= 0 {
		e.buf = append(e.buf, ',')
	}
	e.buf = append(e.buf, text...)
	e.edits = append(e.edits, edit{start: nd.end - 1, end: nd.end - 1, off: int32(off), n: int32(len(e.buf) - off)})
}
