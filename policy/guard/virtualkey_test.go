package guard

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/width"

	"github.com/tollgate-ai/tollgate/policy/keys"
)

// escapeAll writes every character of s as a \uXXXX escape.
func escapeAll(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// A virtual key is found anywhere in a body, in any spelling a reader takes
// for one; strings that only look alike are not keys.
func TestContainsVirtualKey(t *testing.T) {
	tok, err := keys.Generate(rand.Reader)
	require.NoError(t, err)
	k := tok.Reveal()
	require.Regexp(t, "^"+keys.TokenPattern+"$", k)
	zw := k[:3] + "\u200b" + k[3:20] + "\u00ad" + k[20:]
	found := map[string]string{
		"user":                 `{"model":"m","messages":[],"user":"` + k + `"}`,
		"metadata":             `{"model":"m","metadata":{"note":"key ` + k + ` here"}}`,
		"metadata key":         `{"model":"m","metadata":{"` + k + `":"x"}}`,
		"content":              `{"model":"m","messages":[{"role":"user","content":"use ` + k + `"}]}`,
		"glued to a word":      `{"input":"x` + k + `y"}`,
		"escaped prefix":       `{"user":"\u0074gk_` + k[4:] + `"}`,
		"every char escaped":   `{"user":"` + escapeAll(k) + `"}`,
		"double escaped":       `{"user":"` + strings.ReplaceAll(escapeAll(k), `\`, `\\`) + `"}`,
		"control escapes":      `{"user":"t\bg\fk_` + k[4:] + `"}`,
		"zero-width raw":       `{"user":"` + zw + `"}`,
		"zero-width escaped":   `{"user":"` + strings.ReplaceAll(strings.ReplaceAll(zw, "\u200b", `\u200b`), "\u00ad", `\u00ad`) + `"}`,
		"full-width":           `{"user":"` + width.Widen.String(k) + `"}`,
		"in a tool argument":   `{"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":"{\"k\":\"` + k + `\"}"}}]}]}`,
		"not JSON":             "key=" + k,
		"not JSON, zero-width": "key=" + zw,
		"array body, escaped":  `["` + escapeAll(k) + `"]`,
	}
	for name, body := range found {
		require.True(t, ContainsVirtualKey([]byte(body)), name)
	}
	notFound := map[string]string{
		"clean":             string(chat("hello there, nothing to see")),
		"prefix alone":      `{"user":"keys look like tgk_<id>_<secret>"}`,
		"one char short":    `{"user":"` + k[:len(k)-1] + `"}`,
		"id too short":      `{"user":"` + k[:10] + k[11:] + `x"}`,
		"wrong separator":   `{"user":"` + k[:16] + "-" + k[17:] + `"}`,
		"non-ASCII, clean":  `{"user":"Zürich – ﬁgures \u00e9 \\ \"q\""}`,
		"split across keys": `{"a":"` + k[:30] + `","b":"` + k[30:] + `"}`,
		"uppercase":         `{"user":"` + strings.ToUpper(k) + `"}`,
	}
	for name, body := range notFound {
		require.False(t, ContainsVirtualKey([]byte(body)), name)
	}
}

// A clean ASCII body costs no allocation, common escapes (\" \n)
// included: it never leaves the fast path. (Bodies with \u escapes or
// non-ASCII text use pooled scratch space; see
// BenchmarkContainsVirtualKey4KiBNonASCII.)
func TestContainsVirtualKeyAllocs(t *testing.T) {
	plain := []byte(`{"model":"m","messages":[{"role":"user","content":"Say \"hi\" to tgk_ users.\nThen\t\\n stop / go"}]}`)
	require.False(t, mayDisguise(plain))
	require.Zero(t, testing.AllocsPerRun(20, func() { ContainsVirtualKey(plain) }))
}

func BenchmarkContainsVirtualKey4KiB(b *testing.B) {
	body := benchChat(b, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		ContainsVirtualKey(body)
	}
}

func BenchmarkContainsVirtualKey4KiBNonASCII(b *testing.B) {
	body := []byte(strings.ReplaceAll(string(benchChat(b, 4096)), "figures", "ﬁgures \\u00e9"))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		ContainsVirtualKey(body)
	}
}

// FuzzContainsVirtualKey: never panics, finds a key spliced raw into any
// body, and agrees with a plain search on bodies that cannot disguise one.
func FuzzContainsVirtualKey(f *testing.F) {
	k := "tgk_" + "0123456789ab" + "_" + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq1ymyFo"
	for _, s := range []string{`{"user":"` + k + `"}`, `{"user":"\u0074gk_x"}`, string(chat("hello")), "tgk_", `{"a":"\u200b"}`, "\xff\\"} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, at uint16) {
		got := ContainsVirtualKey(body)
		if !mayDisguise(body) {
			require.Equal(t, hasVirtualKey(body), got)
		}
		i := int(at) % (len(body) + 1)
		spliced := append(append(append([]byte(nil), body[:i]...), k...), body[i:]...)
		require.True(t, ContainsVirtualKey(spliced))
	})
}
