package jsonlex

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The sentinels a caller package would pass to Reset.
var (
	errInvalid = errors.New("invalid json")
	errDeep    = errors.New("json nesting too deep")
)

func lex(s string) *Lexer {
	var l Lexer
	l.Reset([]byte(s), errInvalid, errDeep)
	return &l
}

func TestTokens(t *testing.T) {
	str := func(l *Lexer) bool { _, ok := l.Str(); return ok }
	lit := func(w string) func(*Lexer) bool { return func(l *Lexer) bool { return l.Literal(w) } }
	num := (*Lexer).Number
	tests := []struct {
		name string
		in   string
		scan func(*Lexer) bool
		pos  int    // Pos afterwards
		err  string // "" when the token is valid
	}{
		{"string", `"abc" `, str, 5, ""},
		{"empty string", `""`, str, 2, ""},
		{"escapes", `"\"\\\/\b\f\n\r\t\u00e9"`, str, 24, ""},
		{"lone surrogate is syntax", `"\ud800"`, str, 8, ""},
		{"invalid utf-8 is not checked", "\"\xff\"", str, 3, ""},
		{"unterminated", `"abc`, str, 4, "invalid json: unterminated string at offset 4"},
		{"unterminated long", `"` + strings.Repeat("a", 20), str, 21, "invalid json: unterminated string at offset 21"},
		{"bad escape", `"a\q"`, str, 2, "invalid json: invalid escape in string at offset 2"},
		{"truncated unicode escape", `"\u00`, str, 1, "invalid json: invalid escape in string at offset 1"},
		{"non-hex unicode escape", `"\u00g0"`, str, 1, "invalid json: invalid escape in string at offset 1"},
		{"backslash at end", `"\`, str, 1, "invalid json: invalid escape in string at offset 1"},
		{"control byte", "\"ab\x1f\"", str, 3, "invalid json: control character in string at offset 3"},
		{"zero", `0`, num, 1, ""},
		{"full number", `-0.5e-10,`, num, 8, ""},
		{"exponent sign", `12E+3]`, num, 5, ""},
		{"leading zero stops", `01`, num, 1, ""},
		{"minus alone", `-`, num, 1, "invalid json: invalid number at offset 1"},
		{"minus letter", `-a`, num, 1, "invalid json: invalid number at offset 1"},
		{"empty fraction", `1.e5`, num, 2, "invalid json: invalid number at offset 2"},
		{"empty exponent", `1e+`, num, 3, "invalid json: invalid number at offset 3"},
		{"true", `true`, lit("true"), 4, ""},
		{"false", `false}`, lit("false"), 5, ""},
		{"null", `null`, lit("null"), 4, ""},
		{"short literal", `nul`, lit("null"), 0, "invalid json: invalid literal at offset 0"},
		{"wrong literal", `trUe`, lit("true"), 0, "invalid json: invalid literal at offset 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := lex(tc.in)
			require.Equal(t, tc.err == "", tc.scan(l))
			require.Equal(t, tc.pos, l.Pos)
			if tc.err == "" {
				require.NoError(t, l.Err)
				return
			}
			require.ErrorIs(t, l.Err, errInvalid)
			require.NotErrorIs(t, l.Err, errDeep)
			require.EqualError(t, l.Err, tc.err)
		})
	}
}

func TestStrFlags(t *testing.T) {
	tests := []struct {
		in    string
		flags uint8
	}{
		{`"plain ascii, long enough for the fast path"`, 0},
		{`"a\nb"`, Escaped},
		{`"\u0041"`, Escaped},
		{`"é"`, NonASCII},
		{`"long ascii prefix then é"`, NonASCII},
		{`"é\n"`, Escaped | NonASCII},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			flags, ok := lex(tc.in).Str()
			require.True(t, ok)
			require.Equal(t, tc.flags, flags)
		})
	}
}

// TestStrBoundaries moves quotes, escapes and control bytes across every
// position of the eight-byte fast path.
func TestStrBoundaries(t *testing.T) {
	for pad := range 24 {
		prefix := strings.Repeat("a", pad)
		for _, tail := range []string{`"`, `\"x"`, `\u0041"`, "\x01\"", "\xc3\xa9\"", `\\"`, `\q"`} {
			body := []byte(`"` + prefix + tail)
			var l Lexer
			l.Reset(body, errInvalid, errDeep)
			_, ok := l.Str()
			require.Equal(t, json.Valid(body), ok && l.End(), "pad %d tail %q", pad, tail)
			if ok {
				var want string
				require.NoError(t, json.Unmarshal(body, &want))
				got, _ := Unquote(nil, body[1:len(body)-1])
				require.Equal(t, want, string(got))
			}
		}
	}
}

func TestSeparators(t *testing.T) {
	tests := []struct {
		name string
		in   string
		scan func(*Lexer) bool
		pos  int
		err  string
	}{
		{name: "colon", in: " \t: \r\nx", scan: (*Lexer).Colon, pos: 6},
		{name: "missing colon", in: ` x`, scan: (*Lexer).Colon, pos: 1, err: "invalid json: expected ':' after object key at offset 1"},
		{name: "colon at end", in: ``, scan: (*Lexer).Colon, pos: 0, err: "invalid json: expected ':' after object key at offset 0"},
		{name: "end", in: " \n\t\r", scan: (*Lexer).End, pos: 4},
		{name: "data after value", in: `  x`, scan: (*Lexer).End, pos: 2, err: "invalid json: unexpected data after top-level value at offset 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := lex(tc.in)
			require.Equal(t, tc.err == "", tc.scan(l))
			require.Equal(t, tc.pos, l.Pos)
			if tc.err == "" {
				require.NoError(t, l.Err)
			} else {
				require.EqualError(t, l.Err, tc.err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Run("first error wins", func(t *testing.T) {
		l := lex(`abc`)
		l.Pos = 1
		require.False(t, l.Fail("first"))
		l.Pos = 2
		require.False(t, l.Fail("second"))
		require.False(t, l.TooDeep())
		require.EqualError(t, l.Err, "invalid json: first at offset 1")
	})
	t.Run("too deep wraps both sentinels", func(t *testing.T) {
		l := lex(`[[[`)
		l.Pos = 2
		require.False(t, l.TooDeep())
		require.ErrorIs(t, l.Err, errInvalid)
		require.ErrorIs(t, l.Err, errDeep)
		require.EqualError(t, l.Err, "invalid json: json nesting too deep at offset 2")
	})
	t.Run("caller's sentinels", func(t *testing.T) {
		other := errors.New("other")
		var l Lexer
		l.Reset([]byte(`x`), other, errDeep)
		l.Fail("reason")
		require.ErrorIs(t, l.Err, other)
		require.NotErrorIs(t, l.Err, errInvalid)
	})
	t.Run("reset clears position and error", func(t *testing.T) {
		l := lex(`"unterminated`)
		_, ok := l.Str()
		require.False(t, ok)
		l.Reset([]byte(`"ok"`), errInvalid, errDeep)
		require.Zero(t, l.Pos)
		require.NoError(t, l.Err)
		_, ok = l.Str()
		require.True(t, ok)
		require.True(t, l.End())
	})
	t.Run("no input bytes in errors", func(t *testing.T) {
		const secret = "sk-SECRET"
		for _, in := range []string{`"` + secret, `"` + secret + "\x01", `"` + secret + `\x"`} {
			l := lex(in)
			_, ok := l.Str()
			require.False(t, ok)
			require.NotContains(t, l.Err.Error(), "SECRET")
		}
	})
}

// TestSpecialBytes checks the SWAR mask against a byte-by-byte scan: for
// every byte value at every position, and with a second special byte after
// the first, the lowest flagged byte is the first special one.
func TestSpecialBytes(t *testing.T) {
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	first := func(w [8]byte) int {
		for i, c := range w {
			if special(c) {
				return i
			}
		}
		return -1
	}
	check := func(w [8]byte) {
		m := specialBytes(binary.LittleEndian.Uint64(w[:]))
		got := -1
		if m != 0 {
			got = 0
			for m&0x80 == 0 {
				m >>= 8
				got++
			}
		}
		require.Equal(t, first(w), got, "word %q", w[:])
	}
	for pos := range 8 {
		for c := range 256 {
			w := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
			w[pos] = byte(c)
			check(w)
			for later := pos + 1; later < 8; later++ {
				w2 := w
				w2[later] = '"'
				check(w2)
				w2[later] = 0x00
				check(w2)
			}
		}
	}
}

func TestHexVal(t *testing.T) {
	for c := range 256 {
		want := rune(-1)
		if v, err := strconv.ParseUint(string(rune(c)), 16, 8); err == nil && c < 0x80 {
			want = rune(v)
		}
		require.Equal(t, want, HexVal(byte(c)), fmt.Sprintf("%q", rune(c)))
	}
}
