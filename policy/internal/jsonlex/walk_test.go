package jsonlex

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// member is what an Object walk reports for one member.
type member struct {
	token string // the key token, quotes included
	key   string // the decoded key
	flags uint8
	value string // the value's raw bytes
}

// walkObject walks the object at the start of s (after whitespace) and
// returns its members, whether the walk ended at '}', and the lexer.
func walkObject(s string) ([]member, bool, *Lexer) {
	l := lex(s)
	l.SkipWS()
	o := l.Object()
	var got []member
	for o.Next() {
		m := member{token: s[o.KeyStart:o.KeyEnd], key: string(o.Key()), flags: o.KeyFlags}
		start := l.Pos
		if !l.Value(1) {
			return got, o.Done(), l
		}
		m.value = s[start:l.Pos]
		got = append(got, m)
	}
	return got, o.Done(), l
}

func TestObject(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		members []member
		pos     int    // Pos afterwards
		err     string // "" when the walk ends at '}'
	}{
		{name: "empty", in: `{}`, pos: 2},
		{name: "empty with space", in: " { \n } x", pos: 6},
		{name: "members", in: `{"a":1,"bc":[true],"d":{"e":null}}`, pos: 34, members: []member{
			{token: `"a"`, key: "a", value: `1`},
			{token: `"bc"`, key: "bc", value: `[true]`},
			{token: `"d"`, key: "d", value: `{"e":null}`},
		}},
		{name: "whitespace around tokens", in: "{ \"a\" :\t\"x\" ,\r\n\"b\": 2 }", pos: 23, members: []member{
			{token: `"a"`, key: "a", value: `"x"`},
			{token: `"b"`, key: "b", value: `2`},
		}},
		{name: "escaped and non-ascii keys decode", in: `{"é":2,"mod\u0065l":1,"\ud800":3}`, pos: 34, members: []member{
			{token: `"é"`, key: "é", flags: NonASCII, value: `2`},
			{token: `"mod\u0065l"`, key: "model", flags: Escaped, value: `1`},
			{token: `"\ud800"`, key: "\uFFFD", flags: Escaped, value: `3`},
		}},
		{name: "end of input after brace", in: `{`, pos: 1, err: "invalid json: expected object key at offset 1"},
		{name: "key not a string", in: `{1:2}`, pos: 1, err: "invalid json: expected object key at offset 1"},
		{name: "unterminated key", in: `{"ab`, pos: 4, err: "invalid json: unterminated string at offset 4"},
		{name: "missing colon", in: `{"a" 1}`, pos: 5, err: "invalid json: expected ':' after object key at offset 5"},
		{name: "trailing comma", in: `{"a":1,}`, pos: 7, members: []member{{token: `"a"`, key: "a", value: `1`}},
			err: "invalid json: expected object key at offset 7"},
		{name: "wrong closing", in: `{"a":1]`, pos: 6, members: []member{{token: `"a"`, key: "a", value: `1`}},
			err: "invalid json: expected ',' or closing bracket at offset 6"},
		{name: "end of input after member", in: `{"a":1 `, pos: 7, members: []member{{token: `"a"`, key: "a", value: `1`}},
			err: "invalid json: unexpected end of input at offset 7"},
		{name: "error in a value", in: `{"a":tru}`, pos: 5, err: "invalid json: invalid literal at offset 5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			members, done, l := walkObject(tc.in)
			require.Equal(t, tc.members, members)
			require.Equal(t, tc.pos, l.Pos)
			if tc.err == "" {
				require.True(t, done)
				require.NoError(t, l.Err)
				return
			}
			require.False(t, done)
			require.EqualError(t, l.Err, tc.err)
		})
	}
}

func TestArray(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		elems []string
		pos   int
		err   string
	}{
		{name: "empty", in: `[]`, pos: 2},
		{name: "empty with space", in: "[ \t]", pos: 4},
		{name: "elements", in: `[1, "a" ,{"b":[]},null]`, pos: 23, elems: []string{`1`, `"a"`, `{"b":[]}`, `null`}},
		{name: "end of input after bracket", in: `[`, pos: 1, err: "invalid json: unexpected end of input at offset 1"},
		{name: "trailing comma", in: `[1,]`, pos: 3, elems: []string{`1`}, err: "invalid json: invalid character at offset 3"},
		{name: "wrong closing", in: `[1}`, pos: 2, elems: []string{`1`}, err: "invalid json: expected ',' or closing bracket at offset 2"},
		{name: "missing comma", in: `[1 2]`, pos: 3, elems: []string{`1`}, err: "invalid json: expected ',' or closing bracket at offset 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := lex(tc.in)
			a := l.Array()
			var elems []string
			for a.Next() {
				start := l.Pos
				if !l.Value(1) {
					break
				}
				elems = append(elems, tc.in[start:l.Pos])
			}
			require.Equal(t, tc.elems, elems)
			require.Equal(t, tc.pos, l.Pos)
			require.Equal(t, tc.err == "", a.Done())
			if tc.err == "" {
				require.NoError(t, l.Err)
			} else {
				require.EqualError(t, l.Err, tc.err)
			}
		})
	}
}

// nest returns a value nested depth containers deep: arrays, objects, or
// both in turn.
func nest(depth int, objects func(level int) bool) string {
	var open, closing strings.Builder
	for i := range depth {
		if objects(i) {
			open.WriteString(`{"a":`)
		} else {
			open.WriteString(`[`)
		}
	}
	for i := depth - 1; i >= 0; i-- {
		if objects(i) {
			closing.WriteString(`}`)
		} else {
			closing.WriteString(`]`)
		}
	}
	return open.String() + "1" + closing.String()
}

func TestValueDepth(t *testing.T) {
	for name, objects := range map[string]func(int) bool{
		"arrays":  func(int) bool { return false },
		"objects": func(int) bool { return true },
		"mixed":   func(i int) bool { return i%2 == 1 },
	} {
		t.Run(name, func(t *testing.T) {
			l := lex(nest(MaxDepth, objects))
			require.True(t, l.Value(0) && l.End())
			require.NoError(t, l.Err)

			l = lex(nest(MaxDepth+1, objects))
			require.False(t, l.Value(0))
			require.ErrorIs(t, l.Err, errInvalid)
			require.ErrorIs(t, l.Err, errDeep)
			before := string(l.B[:l.Pos])
			require.Equal(t, MaxDepth, strings.Count(before, "[")+strings.Count(before, "{"))
			require.Contains(t, "[{", string(l.B[l.Pos]), "the error is at the container past the limit")
		})
	}
}

// TestWalkAfterEnd: once a walk has ended, at the closing byte or at an
// error, Next keeps returning false and consumes nothing.
func TestWalkAfterEnd(t *testing.T) {
	for _, in := range []string{`{"a":1}x`, `{"a" 1}`, `{"a":1,}`} {
		l := lex(in)
		o := l.Object()
		for o.Next() {
			if !l.Value(1) {
				break
			}
		}
		pos, done := l.Pos, o.Done()
		require.False(t, o.Next(), in)
		require.Equal(t, pos, l.Pos, in)
		require.Equal(t, done, o.Done(), in)
	}
	l := lex(`[1]x`)
	a := l.Array()
	for a.Next() {
		require.True(t, l.Value(1))
	}
	require.True(t, a.Done())
	require.False(t, a.Next())
	require.Equal(t, 3, l.Pos)
}

// TestWalkNoAllocs: walking a body whose keys need no decoding allocates
// nothing, so the parsers built on it keep their zero-allocation paths.
func TestWalkNoAllocs(t *testing.T) {
	body := []byte(`{"model":"m","messages":[` + strings.Repeat(`{"role":"user","content":"hello é"},`, 50) + `{}],"n":1}`)
	allocs := testing.AllocsPerRun(20, func() {
		if n, ok := countMembers(body); !ok || n != 3 {
			t.Fatal("walk failed")
		}
	})
	require.Zero(t, allocs)
}

// countMembers validates the object b and counts its members, reading each key.
func countMembers(b []byte) (int, bool) {
	var l Lexer
	l.Reset(b, errInvalid, errDeep)
	o := l.Object()
	n := 0
	for o.Next() {
		if len(o.Key()) == 0 || !l.Value(1) {
			return n, false
		}
		n++
	}
	return n, o.Done()
}

// FuzzWalk checks a validator built on Object and Array against
// encoding/json: the same verdict, and for a top-level object the same
// members in the same order, keys decoded alike and values byte for byte.
func FuzzWalk(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,{"b":null}],"c":"d"}`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `{"\u0061":1,"é":2}`,
		` { "a" : [ ] , "b" : { } } `, `{"a":1]`, `[{"a":1}}`, "{\"\xff\":1}", `{"a":1}{`, `"x"`, strings.Repeat("[", 130) + strings.Repeat("]", 130)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Lexer
		l.Reset(b, errInvalid, errDeep)
		l.SkipWS()
		ok := l.Value(0) && l.End()
		if bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) <= MaxDepth {
			require.Equal(t, json.Valid(b), ok)
		} else if !ok && json.Valid(b) {
			require.ErrorIs(t, l.Err, errDeep)
		}
		if !ok {
			require.Error(t, l.Err)
			require.Regexp(t, errText, l.Err.Error())
			return
		}
		require.NoError(t, l.Err)
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return
		}
		members, done, _ := walkObject(string(b))
		require.True(t, done)
		dec := json.NewDecoder(bytes.NewReader(b))
		_, err := dec.Token()
		require.NoError(t, err)
		for i := 0; dec.More(); i++ {
			key, err := dec.Token()
			require.NoError(t, err)
			var v json.RawMessage
			require.NoError(t, dec.Decode(&v))
			require.Less(t, i, len(members))
			require.Equal(t, key, members[i].key)
			require.Equal(t, string(v), strings.TrimSpace(members[i].value))
		}
	})
}
