package guard

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// loc is one extracted string: the byte span of its JSON token in the body
// (quotes included), so redaction can rewrite just that token, and its path.
// A data URL header is a span inside its token, one byte wider on each side.
type loc struct {
	start, end int32
	flags      uint8
	keep       bool  // never rewritten: see node.keep
	path       int32 // index into walker.nodes; -1 is the root
}

// strip is a value to replace in a rewritten response (see node.strip).
type strip struct {
	start, end int32
	repl       byte
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
// the cap bounds recursion on hostile input. It is the limit policy/llm
// parses requests with, so a body it accepts is never too deep here.
const MaxDepth = jsonlex.MaxDepth

// smallKeys is how many keys an object may have before duplicate detection
// switches from a linear scan to a map, keeping wide objects linear.
const smallKeys = 16

// walker validates a body with the shared lexer and records the locs its
// schema selects. Its syntax errors wrap ErrInvalidJSON (and ErrTooDeep). It
// is reused through the scan-state pool; every slice it holds is reset, not
// freed, between bodies.
type walker struct {
	jsonlex.Lexer
	req    bool // the schema is a request's (see node.req)
	locs   []loc
	strips []strip
	frames []frame
	nodes  []pathNode
	keys   [][]byte // keys of the objects currently open, innermost last
	mat    int      // frames[:mat] are materialized
}

// reset prepares the walker for body b.
func (w *walker) reset(b []byte) {
	w.Lexer.Reset(b, ErrInvalidJSON, ErrTooDeep)
	w.locs = w.locs[:0]
	w.strips = w.strips[:0]
	w.frames = w.frames[:0]
	w.nodes = w.nodes[:0]
	clear(w.keys)
	w.keys = w.keys[:0]
	w.mat = 0
}

// walk validates b as one JSON object (MaxDepth deep at most, no duplicate
// keys in any object) and extracts the strings root selects. Syntax errors
// wrap ErrInvalidJSON; a duplicate key is ErrDuplicateKey with its offset; a
// request value of a kind its position cannot have is ErrUnknownShape.
func (w *walker) walk(b []byte, root *node) error {
	w.reset(b)
	w.req = root != nil && root.req
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

// kindOf returns the kind of the value starting with c.
func kindOf(c byte) uint8 {
	switch c {
	case '"':
		return kStr
	case '[':
		return kArr
	case '{':
		return kObj
	case 'n':
		return kNull
	case 't', 'f':
		return kBool
	default:
		return kNum
	}
}

// value walks one JSON value at w.Pos; depth counts the containers around it.
func (w *walker) value(n *node, depth int) bool {
	if w.Pos >= len(w.B) {
		return w.Fail("unexpected end of input")
	}
	c := w.B[w.Pos]
	if n != nil && n.kinds != 0 && n.kinds&kindOf(c) == 0 {
		if w.req {
			return w.unknownShape(kindOf(c))
		}
		n = allNode
	}
	if n != nil && n.strip != 0 {
		return w.stripped(n.strip, depth)
	}
	switch {
	case c == '{':
		return w.object(n, depth+1)
	case c == '[':
		return w.array(n, depth+1)
	case c == '"':
		start := w.Pos
		flags, ok := w.Str()
		if ok && n != nil && (n.text || n.all || n.keep) {
			if n.bin != binNone && w.binary(n.bin, start, flags) {
				return true
			}
			w.locs = append(w.locs, loc{start: int32(start), end: int32(w.Pos), flags: flags, keep: n.keep, path: w.pathID()})
		}
		return ok
	default:
		return w.Scalar()
	}
}

// unknownShape records ErrUnknownShape for a value of kind k at the current
// path, which names only what the schema defines.
func (w *walker) unknownShape(k uint8) bool {
	if w.Err == nil {
		w.Err = fmt.Errorf("%w: %s is %s", ErrUnknownShape, w.pathString(w.pathID()), kindNames[k])
	}
	return false
}

// stripped walks a value to be replaced by repl ('n': null, '[': []) and
// records the replacement unless the value already is one.
func (w *walker) stripped(repl byte, depth int) bool {
	start := w.Pos
	if !w.value(nil, depth) {
		return false
	}
	v := w.B[start:w.Pos]
	if repl == 'n' && v[0] == 'n' {
		return true
	}
	if repl == '[' && v[0] == '[' && len(bytes.TrimSpace(v[1:len(v)-1])) == 0 {
		return true
	}
	w.strips = append(w.strips, strip{start: int32(start), end: int32(w.Pos), repl: repl})
	return true
}

// object walks an object whose '{' is at w.Pos; depth counts this object.
func (w *walker) object(n *node, depth int) bool {
	if depth > MaxDepth {
		return w.TooDeep()
	}
	base := len(w.keys)
	defer func() {
		clear(w.keys[base:])
		w.keys = w.keys[:base]
	}()
	var big map[string]struct{}
	// A typed binary member (see binTyped) is decided when the object ends.
	typedLoc, typedBinary := -1, false
	o := w.Object()
	for o.Next() {
		key := o.Key()
		if w.duplicate(key, base, &big) {
			if w.Err == nil {
				w.Err = fmt.Errorf("%w at offset %d", ErrDuplicateKey, o.KeyStart)
			}
			return false
		}
		child, name, scanKey := n.child(key, w.req)
		if scanKey {
			w.locs = append(w.locs, loc{start: int32(o.KeyStart), end: int32(o.KeyEnd), flags: o.KeyFlags, keep: true, path: w.pathID()})
		}
		if name != "" && name != idSuffix {
			w.push(name, -1)
		}
		nlocs, vstart := len(w.locs), w.Pos
		ok := w.value(child, depth)
		if name != "" && name != idSuffix {
			w.pop()
		}
		if !ok {
			return false
		}
		switch {
		case child != nil && child.bin == binTyped && len(w.locs) == nlocs+1:
			typedLoc = nlocs
		case n != nil && n.req && name == "type":
			typedBinary = isBinaryType(w.B[vstart:w.Pos])
		}
	}
	if !o.Done() {
		return false
	}
	if typedLoc >= 0 && typedBinary && w.pureBase64(w.locs[typedLoc]) {
		w.locs = slices.Delete(w.locs, typedLoc, typedLoc+1)
	}
	return true
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
	var child *node
	indexed := false
	if n != nil {
		if n.all {
			child = n.free()
		} else {
			child, indexed = n.elem, n.elem != nil
		}
	}
	a := w.Array()
	for i := int32(0); a.Next(); i++ {
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
	}
	return a.Done()
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
	if len(b) == 0 {
		return "(body)"
	}
	return string(b)
}
