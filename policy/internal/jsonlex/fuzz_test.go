package jsonlex

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// errText is the only shape a Lexer error may have: a fixed reason and an
// offset, never input bytes.
var errText = regexp.MustCompile(`^invalid json: [a-z ',:-]+ at offset [0-9]+$`)

// FuzzStr checks Str against encoding/json on one string token: the same
// verdict, flags that never miss an escape or a non-ASCII byte, and Unquote
// decoding as encoding/json does with lossy meeting refLossy.
func FuzzStr(f *testing.F) {
	for _, s := range []string{`""`, `"abc"`, `"a\"b\\c\/"`, `"\u00e9\ud83d\ude00"`, `"\ud83d"`, "\"\xff\"",
		`"unterminated`, `"bad \q escape"`, "\"ctl\x01\"", `"\u12"`, `"é" `, `"x" y`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' {
			return
		}
		var l Lexer
		l.Reset(b, errInvalid, errDeep)
		flags, ok := l.Str()
		if !ok {
			require.False(t, json.Valid(b))
			require.ErrorIs(t, l.Err, errInvalid)
			require.Regexp(t, errText, l.Err.Error())
			return
		}
		raw := b[1 : l.Pos-1]
		end := l.End()
		require.Equal(t, json.Valid(b), end)
		if flags&Escaped == 0 {
			require.NotContains(t, string(raw), `\`)
		}
		if flags&NonASCII == 0 {
			require.True(t, isASCII(raw))
		}
		if !end {
			return
		}
		var want string
		require.NoError(t, json.Unmarshal(b, &want))
		got, lossy := Unquote(nil, raw)
		require.Equal(t, want, string(got))
		require.Equal(t, refLossy(raw), lossy)
	})
}

// FuzzNumber checks Number against encoding/json on one number token.
func FuzzNumber(f *testing.F) {
	for _, s := range []string{`0`, `-0.0e-0`, `123.456E+789`, `-`, `01`, `1.`, `1.e5`, `1e`, `1e+`, `1 2`, `--1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
			return
		}
		var l Lexer
		l.Reset(b, errInvalid, errDeep)
		ok := l.Number()
		require.Equal(t, json.Valid(b), ok && l.End())
		if !ok {
			require.Regexp(t, errText, l.Err.Error())
		}
	})
}

// FuzzAppendQuoted checks that AppendQuoted always writes one valid JSON
// string that decodes, by encoding/json and by Unquote, to the value
// encoding/json would have written, and that the string and []byte forms
// agree.
func FuzzAppendQuoted(f *testing.F) {
	for _, s := range []string{"", "plain", `"\`, "\x00\x1f\x7f", "é😀", "\u2028\u2029", "\xff\xfe", "a\xe2\x82"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendQuoted(nil, s)
		require.Equal(t, out, AppendQuoted(nil, []byte(s)))
		require.True(t, utf8.Valid(out))
		require.False(t, bytes.ContainsAny(out, "\u2028\u2029"))
		ref, err := json.Marshal(s)
		require.NoError(t, err)
		var want string
		require.NoError(t, json.Unmarshal(ref, &want))

		var l Lexer
		l.Reset(out, errInvalid, errDeep)
		flags, ok := l.Str()
		require.True(t, ok)
		require.Equal(t, len(out), l.Pos)
		got, lossy := Unquote(nil, out[1:len(out)-1])
		require.False(t, lossy, "AppendQuoted output decodes without replacement")
		require.Equal(t, want, string(got))
		if flags == 0 {
			require.Equal(t, want, string(out[1:len(out)-1]))
		}
	})
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
