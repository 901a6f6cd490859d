package guard

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// logprobsOf returns every value of a "logprobs" member in the JSON v.
func logprobsOf(tb testing.TB, data string) []any {
	tb.Helper()
	var v any
	require.NoError(tb, json.Unmarshal([]byte(data), &v), data)
	var out []any
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "logprobs" {
					out = append(out, c)
					continue
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// requireNoLogprobs checks that every logprobs value in data is null or
// an empty array, and that there is at least one.
func requireNoLogprobs(tb testing.TB, data string) {
	tb.Helper()
	lps := logprobsOf(tb, data)
	require.NotEmpty(tb, lps, data)
	for _, lp := range lps {
		if lp != nil {
			require.Equal(tb, []any{}, lp, data)
		}
	}
}

// Token logprobs in the shapes the providers send, holding the email the
// text around them shows redacted.
var (
	lpEmail     = sseEmail
	chatLP      = `{"content":[{"token":"` + lpEmail + `","logprob":-0.1,"bytes":[106],"top_logprobs":[{"token":"` + lpEmail + `","logprob":-0.1}]}],"refusal":null}`
	cmplLP      = `{"tokens":["` + lpEmail + `"],"token_logprobs":[-0.1],"top_logprobs":[{"` + lpEmail + `":-0.1}],"text_offset":[0]}`
	respLPArray = `[{"token":"` + lpEmail + `","logprob":-0.1,"bytes":[106],"top_logprobs":[]}]`
)

// A profile that rewrites responses removes logprobs from JSON responses of
// every dialect, clean or not; a dry run and an audit-only profile do not.
func TestLogprobsJSON(t *testing.T) {
	e := newEngine(t,
		ProfileConfig{Name: "redact", Rules: []RuleConfig{{ID: "mail", Detector: "pii.email", Action: "redact"}}},
		ProfileConfig{Name: "block", Rules: []RuleConfig{{ID: "aws", Detector: "secret.aws_access_key", Action: "block"}}},
		ProfileConfig{Name: "dry", DryRun: true, Rules: []RuleConfig{{ID: "mail", Detector: "pii.email", Action: "redact"}}},
		ProfileConfig{Name: "audit", Rules: []RuleConfig{{ID: "mail", Detector: "pii.email", Action: "audit"}}},
	)
	cases := []struct {
		name string
		ep   llm.Endpoint
		body func(text string) string
	}{
		{"chat", llm.ChatCompletions, func(s string) string {
			return `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":` + q(s) + `},"logprobs":` + chatLP + `,"finish_reason":"stop"}]}`
		}},
		{"completions", llm.Completions, func(s string) string {
			return `{"id":"c","object":"text_completion","choices":[{"text":` + q(s) + `,"index":0,"logprobs":` + cmplLP + `,"finish_reason":"stop"}]}`
		}},
		{"responses", llm.Responses, func(s string) string {
			return fmt.Sprintf(respObj, "completed", `{"id":"m","type":"message","role":"assistant","content":[{"type":"output_text","annotations":[],"logprobs":`+respLPArray+`,"text":`+q(s)+`}]}`, "null")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, text := range []string{"Write to " + lpEmail, "Nothing to see here"} {
				body := tc.body(text)
				for _, p := range []string{"redact", "block"} {
					r, err := e.ScanResponseJSON(p, tc.ep, []byte(body))
					require.NoError(t, err)
					require.NotNil(t, r.NewBody, "%s: %s", p, text)
					if p == "redact" {
						require.NotContains(t, string(r.NewBody), "example.com")
					}
					requireNoLogprobs(t, string(r.NewBody))
				}
				for _, p := range []string{"dry", "audit"} {
					r, err := e.ScanResponseJSON(p, tc.ep, []byte(body))
					require.NoError(t, err)
					require.Nil(t, r.NewBody, p)
				}
			}
			// Already empty: nothing to rewrite.
			empty := strings.NewReplacer(chatLP, "null", cmplLP, "null", respLPArray, "[]").Replace(tc.body("clean"))
			r, err := e.ScanResponseJSON("redact", tc.ep, []byte(empty))
			require.NoError(t, err)
			require.Nil(t, r.NewBody)
		})
	}
}

// Streams: every logprobs value of every event (chat and completions
// chunks, Responses deltas, done events, parts, items and the completed
// response) is removed under a rewriting profile, and passes under a dry
// run.
func TestLogprobsSSE(t *testing.T) {
	e := newEngine(t,
		ProfileConfig{Name: "redact", Rules: []RuleConfig{{ID: "mail", Detector: "pii.email", Action: "redact"}}},
		ProfileConfig{Name: "dry", DryRun: true, Rules: []RuleConfig{{ID: "mail", Detector: "pii.email", Action: "redact"}}},
	)
	deltas := tokens("Write to " + lpEmail + " today.")
	chat := strings.ReplaceAll(string(join(chatFx(deltas))), `"logprobs":null`, `"logprobs":`+chatLP)
	cmpl := strings.ReplaceAll(string(join(completionsFx(deltas))), `"logprobs":null`, `"logprobs":`+cmplLP)
	resp := strings.ReplaceAll(string(join(responsesFx(deltas))), `"logprobs":[]`, `"logprobs":`+respLPArray)
	for _, tc := range []struct {
		name   string
		ep     llm.Endpoint
		stream string
	}{{"chat", llm.ChatCompletions, chat}, {"completions", llm.Completions, cmpl}, {"responses", llm.Responses, resp}} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, tc.stream, lpEmail)
			for _, chunks := range [][][]byte{{[]byte(tc.stream)}, bytesOf([]byte(tc.stream))} {
				out, _ := runSSE(t, e, "redact", tc.ep, chunks...)
				require.NotContains(t, string(out), "example.com")
				for _, ev := range parseSSE(t, out) {
					if ev.data == "[DONE]" || !strings.Contains(ev.data, "logprobs") {
						continue
					}
					requireNoLogprobs(t, ev.data)
				}
			}
			out, _ := runSSE(t, e, "dry", tc.ep, []byte(tc.stream))
			require.Equal(t, tc.stream, string(out))
		})
	}
}
