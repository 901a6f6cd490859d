package translate

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// JSON reading. Every body and event is first checked whole (check): one RFC 8259 value,
// nested at most jsonlex.MaxDepth deep, no object repeating a key. After that, members and
// elements walk the checked bytes and hand out raw value spans: text values are copied into
// the translation as the JSON tokens they were, byte for byte, so what the guardrails
// scanned is exactly what is sent, and nothing is decoded that is not inspected.

// member is one member of a checked object: its decoded key and its raw value (no
// surrounding whitespace).
type member struct {
	key string
	val []byte
}

// check validates b as one JSON value with no duplicate keys in any object.
func check(b []byte) error {
	var c checker
	c.l.Reset(b, ErrInvalidJSON, ErrTooDeep)
	c.l.SkipWS()
	if !c.value(0) || !c.l.End() {
		if c.dup != nil {
			return c.dup
		}
		return c.l.Err
	}
	return nil
}

type checker struct {
	l   jsonlex.Lexer
	dup error
}

// value checks the value at l.Pos; depth counts the containers around it.
func (c *checker) value(depth int) bool {
	l := &c.l
	if l.Pos >= len(l.B) {
		return l.Fail("unexpected end of input")
	}
	switch l.B[l.Pos] {
	case '[':
		if depth >= jsonlex.MaxDepth {
			return l.TooDeep()
		}
		a := l.Array()
		for a.Next() && c.value(depth+1) {
		}
		return a.Done() && c.dup == nil
	case '{':
		if depth >= jsonlex.MaxDepth {
			return l.TooDeep()
		}
		var keys keySet
		o := l.Object()
		for o.Next() {
			if keys.add(o.Key()) {
				c.dup = fmt.Errorf("%w at offset %d", ErrDuplicateKey, o.KeyStart)
				return false
			}
			if !c.value(depth + 1) {
				return false
			}
		}
		return o.Done()
	default:
		return l.Scalar()
	}
}

// keySet detects duplicate keys in one object: linear for the handful of keys most objects
// have, a map past that, so an object of many keys stays linear in time.
type keySet struct {
	small [8][]byte
	n     int
	big   map[string]struct{}
}

func (ks *keySet) add(k []byte) bool {
	if ks.big != nil {
		if _, ok := ks.big[string(k)]; ok {
			return true
		}
		ks.big[string(k)] = struct{}{}
		return false
	}
	for _, o := range ks.small[:ks.n] {
		if bytes.Equal(o, k) {
			return true
		}
	}
	if ks.n < len(ks.small) {
		ks.small[ks.n] = k
		ks.n++
		return false
	}
	ks.big = make(map[string]struct{}, 4*len(ks.small))
	for _, o := range ks.small {
		ks.big[string(o)] = struct{}{}
	}
	ks.big[string(k)] = struct{}{}
	return false
}

// walker reads checked JSON.
type walker struct{ l jsonlex.Lexer }

// members returns the members of the checked object obj, in order.
func members(obj []byte) []member {
	var w walker
	w.l.Reset(obj, ErrInvalidJSON, ErrTooDeep)
	var out []member
	o := w.l.Object()
	for o.Next() {
		start := w.l.Pos
		w.l.Value(1)
		out = append(out, member{key: string(o.Key()), val: obj[start:w.l.Pos]})
	}
	return out
}

// elements returns the elements of the checked array arr, in order.
func elements(arr []byte) [][]byte {
	var w walker
	w.l.Reset(arr, ErrInvalidJSON, ErrTooDeep)
	var out [][]byte
	a := w.l.Array()
	for a.Next() {
		start := w.l.Pos
		w.l.Value(1)
		out = append(out, arr[start:w.l.Pos])
	}
	return out
}

// pick stores in vals[i] the raw value of the member keys[i] of the checked object obj (nil
// when absent), without allocating: the stream path calls it for every event.
func pick(obj []byte, keys []string, vals [][]byte) {
	clear(vals)
	var w walker
	w.l.Reset(obj, ErrInvalidJSON, ErrTooDeep)
	o := w.l.Object()
	for o.Next() {
		start := w.l.Pos
		w.l.Value(1)
		k := o.Key()
		for i, want := range keys {
			if string(k) == want {
				vals[i] = obj[start:w.l.Pos]
				break
			}
		}
	}
}

// isNull reports an absent member or a JSON null, which OpenAI reads as absent.
func isNull(v []byte) bool { return v == nil || string(v) == "null" }

// isString, isObject, isArray and isBool report the kind of a raw value.
func isString(v []byte) bool { return len(v) > 0 && v[0] == '"' }
func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }
func isArray(v []byte) bool  { return len(v) > 0 && v[0] == '[' }
func isBool(v []byte) bool   { return string(v) == "true" || string(v) == "false" }
func isNumber(v []byte) bool { return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9') }

// str decodes a raw string value; ok is false when v is not a string.
func str(v []byte) (string, bool) {
	if !isString(v) {
		return "", false
	}
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), true
	}
	dec, _ := jsonlex.Unquote(make([]byte, 0, len(raw)), raw)
	return string(dec), true
}

// name returns the decoded contents of a string value (nil when v is not a string) without
// allocating when it holds no escape: event and block types are compared with it on the
// stream path, as switch string(name(v)), which does not allocate either.
func name(v []byte) []byte {
	if !isString(v) {
		return nil
	}
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	dec, _ := jsonlex.Unquote(make([]byte, 0, len(raw)), raw)
	return dec
}

// strIs reports whether v is the JSON string s.
func strIs(v []byte, s string) bool {
	d, ok := str(v)
	return ok && d == s
}

// emptyString reports whether v is the string "".
func emptyString(v []byte) bool { return string(v) == `""` }

// emptyObject reports whether the checked value v is an object without members.
func emptyObject(v []byte) bool {
	return isObject(v) && len(bytes.TrimLeft(v[1:], " \t\r\n")) == 1
}

// count reads a non-negative integer written without fraction or exponent (a token count).
func count(v []byte) (int64, bool) {
	if len(v) == 0 || v[0] < '0' || v[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil && n >= 0
}

// number reads a JSON number.
func number(v []byte) (float64, bool) {
	if !isNumber(v) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return f, err == nil
}

// textOf returns the contents of a raw string token without its quotes: still escaped, so
// several can be joined into one string token.
func textOf(v []byte) []byte { return v[1 : len(v)-1] }

// plainName reports whether a client's key may be named in an error: a short identifier, so
// an error never echoes arbitrary client text.
func plainName(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// path joins a field path and a member key, naming an unusual key generically.
func path(prefix, key string) string {
	if !plainName(key) {
		key = "(unknown field)"
	}
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// index appends an array index to a field path.
func index(prefix string, i int) string { return prefix + "[" + strconv.Itoa(i) + "]" }
