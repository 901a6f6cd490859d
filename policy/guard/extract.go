package guard

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// node describes where text sits in one JSON value, so the walker can pick
// out what the provider will read in the same pass that validates the body.
// A nil node means "validate only".
type node struct {
	// text: a string value here is extracted.
	text bool
	// all: every string value in this subtree is extracted (tool-call
	// inputs, JSON schemas). Object keys are not: rewriting one would change
	// the structure the provider sees.
	all bool
	// elem is the node for each element when the value is an array.
	elem *node
	// fields are the members read when the value is an object; other
	// members are validated only.
	fields []field
}

// field is one named member of an object node.
type field struct {
	name string
	node *node
}

// child returns the node for the member key, and the path segment to push
// ("" in all-mode, where paths stop at the subtree root). Names match
// case-insensitively, with Unicode simple folding (so "ſ" is "s" and the
// Kelvin sign "k"): that is how Go's encoding/json, used by some
// OpenAI-compatible servers, matches struct fields, and such a server would
// read "Messages" or "meſſages" as messages.
func (n *node) child(key []byte) (*node, string) {
	if n == nil {
		return nil, ""
	}
	if n.all {
		return n, ""
	}
	for i := range n.fields {
		if bytes.EqualFold(key, []byte(n.fields[i].name)) {
			return n.fields[i].node, n.fields[i].name
		}
	}
	return nil, ""
}

// loc is one extracted string: the byte span of its JSON token in the body
// (quotes included), so redaction can rewrite just that token, and its path.
type loc struct {
	start, end int32
	flags      uint8
	path       int32 // index into walker.nodes; -1 is the root
}

// pathNode is one materialized path segment: a member name or, when index
// is >= 0, an array index.
type pathNode struct {
	parent int32
	index  int32
	name   string
}

// frame is one segment of the walker's current path. node is the
// pathNode it was materialized as, or -1 while no loc under it exists.
type frame struct {
	name  string
	index int32
	node  int32
}

// MaxDepth is the deepest nesting of objects and arrays a body may have. The
// top-level object counts as depth 1. Real bodies nest fewer than 20 levels;
// the cap bounds recursion on hostile input.
const MaxDepth = 128

// smallKeys is how many keys an object may have before duplicate detection
// switches from a linear scan to a map, keeping wide objects linear.
const smallKeys = 16

// walker validates a body with the shared lexer and records the locs its
// schema selects. Its syntax errors wrap ErrInvalidJSON (and ErrTooDeep). It
// is reused through the scan-state pool; every slice it holds is reset, not
// freed, between bodies.
type walker struct {
	jsonlex.Lexer
	locs   []loc
	frames []frame
	nodes  []pathNode
	keys   [][]byte // keys of the objects currently open, innermost last
	mat    int      // frames[:mat] are materialized
}

// reset prepares the walker for body b.
func (w *walker) reset(b []byte) {
	w.Lexer.Reset(b, ErrInvalidJSON, ErrTooDeep)
	w.locs = w.locs[:0]
	w.frames = w.frames[:0]
	w.nodes = w.nodes[:0]
	clear(w.keys)
	w.keys = w.keys[:0]
	w.mat = 0
}

// walk validates b as one JSON object (MaxDepth deep at most, no duplicate
// keys in any object) and extracts the strings root selects. Syntax errors
// wrap ErrInvalidJSON; a duplicate key is ErrDuplicateKey with its offset.
func (w *walker) walk(b []byte, root *node) error {
	w.reset(b)
	w.SkipWS()
	if w.Pos >= len(b) {
		w.Fail("unexpected end of input")
		return w.Err
	}
	if b[w.Pos] != '{' {
		if w.value(nil, 0) && w.End() {
			return ErrNotObject
		}
		return w.Err
	}
	if !w.object(root, 1) || !w.End() {
		return w.Err
	}
	return nil
}

// value walks one JSON value at w.Pos; depth counts the containers around it.
func (w *walker) value(n *node, depth int) bool {
	if w.Pos >= len(w.B) {
		return w.Fail("unexpected end of input")
	}
	switch c := w.B[w.Pos]; {
	case c == '{':
		return w.object(n, depth+1)
	case c == '[':
		return w.array(n, depth+1)
	case c == '"':
		start := w.Pos
		flags, ok := w.Str()
		if ok && n != nil && (n.text || n.all) {
			w.locs = append(w.locs, loc{start: int32(start), end: int32(w.Pos), flags: flags, path: w.pathID()})
		}
		return ok
	case c == 't':
		return w.Literal("true")
	case c == 'f':
		return w.Literal("false")
	case c == 'n':
		return w.Literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return w.Number()
	default:
		return w.Fail("invalid character")
	}
}

// object walks an object whose '{' is at w.Pos; depth counts this object.
func (w *walker) object(n *node, depth int) bool {
	if depth > MaxDepth {
		return w.TooDeep()
	}
	w.Pos++
	w.SkipWS()
	if w.Pos < len(w.B) && w.B[w.Pos] == '}' {
		w.Pos++
		return true
	}
	base := len(w.keys)
	defer func() {
		clear(w.keys[base:])
		w.keys = w.keys[:base]
	}()
	var big map[string]struct{}
	for {
		if w.Pos >= len(w.B) || w.B[w.Pos] != '"' {
			return w.Fail("expected object key")
		}
		keyStart := w.Pos
		flags, ok := w.Str()
		if !ok {
			return false
		}
		key := canonicalKey(w.B[keyStart+1:w.Pos-1], flags)
		if w.duplicate(key, base, &big) {
			if w.Err == nil {
				w.Err = fmt.Errorf("%w at offset %d", ErrDuplicateKey, keyStart)
			}
			return false
		}
		if !w.Colon() {
			return false
		}
		child, name := n.child(key)
		if name != "" {
			w.push(name, -1)
		}
		ok = w.value(child, depth)
		if name != "" {
			w.pop()
		}
		if !ok {
			return false
		}
		more, ok := w.Next('}')
		if !ok || !more {
			return ok
		}
	}
}

// duplicate records key in the current object (whose keys start at
// w.keys[base]) and reports whether it was already there.
func (w *walker) duplicate(key []byte, base int, big *map[string]struct{}) bool {
	if *big != nil {
		if _, ok := (*big)[string(key)]; ok {
			return true
		}
		(*big)[string(key)] = struct{}{}
		return false
	}
	for _, k := range w.keys[base:] {
		if bytes.Equal(k, key) {
			return true
		}
	}
	if len(w.keys)-base < smallKeys {
		w.keys = append(w.keys, key)
		return false
	}
	m := make(map[string]struct{}, 4*smallKeys)
	for _, k := range w.keys[base:] {
		m[string(k)] = struct{}{}
	}
	m[string(key)] = struct{}{}
	*big = m
	return false
}

// array walks an array whose '[' is at w.Pos; depth counts this array.
func (w *walker) array(n *node, depth int) bool {
	if depth > MaxDepth {
		return w.TooDeep()
	}
	w.Pos++
	w.SkipWS()
	if w.Pos < len(w.B) && w.B[w.Pos] == ']' {
		w.Pos++
		return true
	}
	var child *node
	indexed := false
	if n != nil {
		if n.all {
			child = n
		} else {
			child, indexed = n.elem, n.elem != nil
		}
	}
	for i := int32(0); ; i++ {
		if indexed {
			w.push("", i)
		}
		ok := w.value(child, depth)
		if indexed {
			w.pop()
		}
		if !ok {
			return false
		}
		more, ok := w.Next(']')
		if !ok || !more {
			return ok
		}
	}
}

// push enters a path segment; pop leaves it.
func (w *walker) push(name string, index int32) {
	w.frames = append(w.frames, frame{name: name, index: index, node: -1})
}

func (w *walker) pop() {
	w.frames = w.frames[:len(w.frames)-1]
	w.mat = min(w.mat, len(w.frames))
}

// pathID materializes the current path (only the frames not yet
// materialized) and returns the id of its last segment.
func (w *walker) pathID() int32 {
	for ; w.mat < len(w.frames); w.mat++ {
		parent := int32(-1)
		if w.mat > 0 {
			parent = w.frames[w.mat-1].node
		}
		f := &w.frames[w.mat]
		w.nodes = append(w.nodes, pathNode{parent: parent, index: f.index, name: f.name})
		f.node = int32(len(w.nodes) - 1)
	}
	if len(w.frames) == 0 {
		return -1
	}
	return w.frames[len(w.frames)-1].node
}

// pathString renders a path id as "messages[2].content[0].text". Only
// names from the schema and indexes appear: never a key from the body.
func (w *walker) pathString(id int32) string {
	var segs [32]int32
	s := segs[:0]
	for ; id >= 0; id = w.nodes[id].parent {
		s = append(s, id)
	}
	var b []byte
	for i := len(s) - 1; i >= 0; i-- {
		pn := w.nodes[s[i]]
		if pn.index >= 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(pn.index), 10)
			b = append(b, ']')
			continue
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, pn.name...)
	}
	return string(b)
}

// canonicalKey returns the decoded form of a key's raw contents, used to
// compare keys: the raw bytes themselves when no decoding is needed (no
// allocation), otherwise a decoded copy. Decoding follows encoding/json, so
// keys a Go provider would merge compare equal.
func canonicalKey(raw []byte, flags uint8) []byte {
	if flags&jsonlex.Escaped == 0 && (flags&jsonlex.NonASCII == 0 || utf8.Valid(raw)) {
		return raw
	}
	dec, _ := jsonlex.Unquote(make([]byte, 0, len(raw)), raw)
	return dec
}
