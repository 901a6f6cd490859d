package jsonlex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		in    string
		lossy bool
	}{
		{`plain`, false},
		{``, false},
		{`a\"b`, false},
		{`\u00e9\u4e2d`, false},
		{`\ud83d\ude00`, false},
		{`\ud83d`, true},
		{`\ud83dx`, true},
		{`\ud83d\u0041`, true},
		{`\ude00\ud83d`, true},
		{`\ud83d\ud83d\ude00`, true},
		{"\xff", true},
		{"a\xe2\x82", true},
		{"\xe2\x82\\n", true}, // a backslash ends a truncated sequence
		{`\/\b\f\n\r\t\\`, false},
		{"é\xed\xa0\x80", true}, // a surrogate encoded in UTF-8 is invalid
		{"\uFFFD", false},       // a real U+FFFD is not a replacement
		{`\ufffd`, false},
		{"é中😀", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			var want string
			require.NoError(t, json.Unmarshal([]byte(`"`+tc.in+`"`), &want))
			got, lossy := Unquote(nil, []byte(tc.in))
			require.Equal(t, want, string(got))
			require.Equal(t, tc.lossy, lossy)
			require.Equal(t, tc.lossy, refLossy([]byte(tc.in)))
		})
	}
}

func TestUnquoteAppends(t *testing.T) {
	dst := append(make([]byte, 0, 64), "prefix:"...)
	out, lossy := Unquote(dst, []byte(`a\tb`))
	require.False(t, lossy)
	require.Equal(t, "prefix:a\tb", string(out))
	require.Same(t, &dst[0], &out[0], "appends in place when capacity allows")
	out, _ = Unquote(nil, nil)
	require.Nil(t, out)
}

// refLossy is the definition Unquote's lossy flag must meet, written
// independently of it: raw (validated string contents) holds an invalid
// UTF-8 byte, or a \u escape of a surrogate that is not a high surrogate
// directly followed by an escaped low one.
func refLossy(raw []byte) bool {
	hex := func(b []byte) uint64 {
		v, err := strconv.ParseUint(string(b[:4]), 16, 32)
		if err != nil {
			panic(err)
		}
		return v
	}
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 {
				return true
			}
			i += n
			continue
		}
		if raw[i+1] != 'u' {
			i += 2
			continue
		}
		v := hex(raw[i+2:])
		i += 6
		switch {
		case v >= 0xDC00 && v <= 0xDFFF:
			return true
		case v >= 0xD800 && v <= 0xDBFF:
			if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
				return true
			}
			if lo := hex(raw[i+2:]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

func TestAppendQuoted(t *testing.T) {
	for _, s := range []string{"", "plain", `"\`, "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é😀", "\u2028\u2029", "\xff\xfe", "a\xe2\x82", "\xed\xa0\x80"} {
		t.Run(fmt.Sprintf("%q", s), func(t *testing.T) {
			out := AppendQuoted(nil, s)
			require.Equal(t, string(out), string(AppendQuoted(nil, []byte(s))), "string and []byte agree")
			require.True(t, json.Valid(out))
			var got string
			require.NoError(t, json.Unmarshal(out, &got))
			// encoding/json replaces each invalid byte with U+FFFD, as
			// AppendQuoted must.
			ref, err := json.Marshal(s)
			require.NoError(t, err)
			var want string
			require.NoError(t, json.Unmarshal(ref, &want))
			require.Equal(t, want, got)
			require.False(t, bytes.ContainsAny(out, "\u2028\u2029"), "line separators must be escaped")
		})
	}
}

func TestAppendQuotedEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\"b\\c", `"a\"b\\c"`},
		{"\n\r\t\x00\x1f", `"\n\r\t\u0000\u001f"`},
		{"\b\f", `"\u0008\u000c"`},
		{"x\xffy", `"x\ufffdy"`},
		{"\u2028|\u2029", `"\u2028|\u2029"`},
		{"é/<>&", `"é/<>&"`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			require.Equal(t, tc.want, string(AppendQuoted([]byte(nil), tc.in)))
			require.Equal(t, "prefix"+tc.want, string(AppendQuoted([]byte("prefix"), []byte(tc.in))))
		})
	}
}

// TestRuneLen compares runeLen with utf8.DecodeRune on every sequence of up
// to three bytes that starts with a non-ASCII byte, and on four-byte
// sequences whose last byte sits at a continuation-range boundary, each
// also truncated; both type arguments are checked.
func TestRuneLen(t *testing.T) {
	check := func(p []byte) {
		r, size := utf8.DecodeRune(p)
		want := size
		if r == utf8.RuneError && size == 1 {
			want = 0
		}
		if got := runeLen(p); got != want {
			t.Fatalf("runeLen(%x) = %d, want %d", p, got, want)
		}
		if got := runeLen(string(p)); got != want {
			t.Fatalf("runeLen(%q) = %d, want %d", p, got, want)
		}
	}
	for c0 := 0x80; c0 <= 0xFF; c0++ {
		check([]byte{byte(c0)})
		for c1 := range 256 {
			check([]byte{byte(c0), byte(c1)})
			if c0 < 0xE0 {
				continue // a two-byte lead reads no further
			}
			for c2 := range 256 {
				check([]byte{byte(c0), byte(c1), byte(c2)})
				if c0 < 0xF0 {
					continue
				}
				for _, c3 := range []byte{0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xFF} {
					check([]byte{byte(c0), byte(c1), byte(c2), c3})
				}
			}
		}
	}
}
