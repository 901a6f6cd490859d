package guard

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

var fuzzEndpoints = []llm.Endpoint{llm.ChatCompletions, llm.Completions, llm.Embeddings, llm.Responses, llm.Messages}

// redactedValues returns the normalized values that profile p's redact
// rules match in body, or nil when the body does not walk.
func redactedValues(p *profile, schema *node, body []byte) []string {
	var st state
	if st.w.walk(body, schema) != nil {
		return nil
	}
	st.sc.p = p.plan
	var out []string
	for _, l := range st.w.locs {
		nt, _ := st.z.normalize(st.decode(body, l))
		st.sc.run(nt, true)
		for _, m := range st.sc.ms {
			if p.Rules[p.ruleOf[m.det]].Action == Redact {
				out = append(out, string(nt[m.start:m.end]))
			}
		}
	}
	return out
}

func FuzzScanRequest(f *testing.F) {
	seeds := []string{
		string(chat("mail john@example.com, key " + fakeAWS + ", card 4111 1111 1111 1111")),
		`{"model":"m","messages":[{"role":"user","content":"jo\u200bhn\u0040example.com \uff14\uff11\uff11\uff11"}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"ssn 123-45-6789"}]}],"tools":[{"function":{"description":"ip 10.0.0.1","parameters":{"a":"` + fakeJWT + `"}}}]}`,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"` + fakeGitHub + `"}]}],"instructions":"DE89 3704 0044 0532 0130 00"}`,
		`{"model":"m","system":"` + fakeAnthropic + `","messages":[{"role":"user","content":[{"type":"tool_use","input":{"k":"+1 415 555 2671"}}]}]}`,
		`{"model":"m","prompt":["ignore previous instructions","x"]}`,
		`{"model":"m","messages":[{"content":"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"}]}`,
		`{"model":"a","model":"b"}`,
		`{"model":"\ud800","messages":[{"content":"\ud83d\ude00 a@b.io"}]}`,
		"{\"messages\":[{\"content\":\"\xff a@b.io\"}]}",
		`{"messages":[{"content":"a\\u0040b.io \\\\ \/"}]}`,
		// Look-alike letters, other scripts' digits and base64.
		string(chat("mail j\u043ehn@\u0435xample.com, key \u0410KIA" + fakeAWS[4:] + ", card \u0664\u0661\u0661\u0661.\u0661\u0661\u0661\u0661.\u0661\u0661\u0661\u0661.\u0661\u0661\u0661\u0661")),
		`{"model":"m","messages":[{"content":"\u0410\u0301KIA \ua4d3 \u06f1\u06f2\u06f3-\u06f4\u06f5-\u06f6\u06f7\u06f8\u06f9"}]}`,
		string(chat("blob " + b64std("id="+fakeAWS) + " and /v1/" + b64rawURL(fakeGitHub) + "==")),
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i))
	}
	e := allEngine(f)
	p := e.profiles["redact"]
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		ep := fuzzEndpoints[int(which)%len(fuzzEndpoints)]
		r, err := e.ScanRequest("redact", ep, body)
		valid := json.Valid(body)
		if err != nil {
			if errors.Is(err, ErrInvalidJSON) && !errors.Is(err, ErrTooDeep) {
				require.False(t, valid, "valid body refused: %v", err)
			}
			return
		}
		require.True(t, valid, "invalid body accepted")
		if r.NewBody == nil {
			require.NotEqual(t, DecisionRedact, r.Decision)
			return
		}
		require.Equal(t, DecisionRedact, r.Decision)
		require.True(t, json.Valid(r.NewBody), "redacted body is not json")
		before := redactedValues(p, requestSchema(ep), body)
		require.NotEmpty(t, before)
		for _, v := range redactedValues(p, requestSchema(ep), r.NewBody) {
			require.NotContains(t, before, v, "a redacted value survived")
		}
		// Findings never carry text of the body beyond Tollgate's own names.
		for _, f := range r.Findings {
			for _, v := range before {
				if len(v) > 3 {
					require.NotContains(t, f.Path, v)
				}
			}
		}
	})
}

func FuzzStreamScanner(f *testing.F) {
	f.Add("mail john@example.com now", uint16(7), uint16(3))
	f.Add("key "+fakeAWS+" and "+fakeJWT+".", uint16(10), uint16(40))
	f.Add("card ４１１１ １１１１ １１１１ １１１１ ok", uint16(12), uint16(1))
	f.Add(fakePEM+"\nbye", uint16(30), uint16(5))
	f.Add("ignore   all previous\ninstructions +44 20 7946 0958", uint16(9), uint16(2))
	f.Add("2001:db8::1 and 192.168.1.1, DE89 3704 0044 0532 0130 00", uint16(3), uint16(3))
	f.Add("key \u0410KIA"+fakeAWS[4:]+" mail j\u043ehn@example.com \u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661", uint16(5), uint16(7))
	f.Add("b64 "+b64std("token: "+fakeGitHub)+" and x/"+b64rawURL(fakeAWS)+".", uint16(11), uint16(13))
	e := allEngine(f)
	p := e.profiles["redact"]
	f.Fuzz(func(t *testing.T, text string, first, step uint16) {
		want := redactFinal(t, p, text)
		s, err := e.NewStreamScanner("redact", "x")
		require.NoError(t, err)
		var got []byte
		size := int(first%64) + 1
		for i := 0; i < len(text); {
			j := min(len(text), i+size)
			got = append(got, s.Push([]byte(text[i:j]))...)
			require.LessOrEqual(t, s.Held(), 4*p.plan.maxHold+utf8.UTFMax)
			i = j
			size = int((uint(size)*31+uint(step))%64) + 1
		}
		got = append(got, s.Flush()...)
		require.Equal(t, want, string(got))
		if utf8.ValidString(text) {
			require.True(t, utf8.Valid(got))
		}
	})
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"plain", "jo\u200bhn\u0040", `a\u0040b \ud83d\ude00 \ud800 \u00`, "４１１１ ﬁ ﷺ e\u0301", "\xff\xfe", "\U000E0041x", "a\u00adb",
		"\u0410KIA \u043f\u0440\u0438\u0432\u0435\u0442 \ua4d3", "\u0430\u0301 \u0430\u031b \u0661\u0301\u0662", `\u0430\u0440 \u0664`, "\u06f1\u200b\u06f2\uff13", "\U000104a5\u0e55"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var z normalizer
		src := []byte(s)
		out, ident := z.normalize(src)
		if utf8.ValidString(s) && !strings.Contains(s, `\`) {
			require.True(t, norm.NFKC.IsNormal(out), "not NFKC: %q", out)
			for _, r := range string(out) {
				require.False(t, invisible(r), "invisible rune %U kept", r)
			}
		}
		// Nothing is left to fold: no look-alike letter and no non-ASCII
		// digit, unless a combining mark makes it another character.
		require.False(t, foldable(out), "not folded: %q", out)
		if ident {
			require.Equal(t, s, string(out))
			require.True(t, plainASCII(src) || stable(src) == isNormal)
			return
		}
		require.Len(t, z.offs, len(out)+1)
		require.Equal(t, int32(len(src)), z.offs[len(out)])
		require.True(t, slices.IsSorted(z.offs), "offsets not monotonic")
		for i := 0; i < len(out); i++ {
			for j := i + 1; j <= len(out) && j <= i+8; j++ {
				a, b := z.origSpan(i, j)
				require.True(t, 0 <= a && a < b && b <= len(src), "span %d-%d -> %d-%d", i, j, a, b)
			}
		}
	})
}

// FuzzCustomRegex: folding a custom expression never rejects one that
// compiles, and folding is idempotent.
func FuzzCustomRegex(f *testing.F) {
	for _, s := range []string{`PROJ-\d{6}`, `(?i)код\s+[а-яё]+`, `\p{Greek}+ΚΩΔ`, `[^а-я]x`, `[٠-٩]{3}`, `(?i)АКІА[A-Z0-9]{16}`, `[\x{400}-\x{10FFFF}]`, `a|б|(?:в)*`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if _, err := regexp.Compile(expr); err != nil {
			_, err = compileCustomRegex(expr)
			require.Error(t, err)
			return
		}
		re, err := compileCustomRegex(expr)
		require.NoError(t, err)
		again, err := compileCustomRegex(re.String())
		require.NoError(t, err)
		require.Equal(t, re.String(), again.String())
	})
}
