package guard

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// redactFinal is the reference: the whole text scanned at once and redacted.
func redactFinal(tb testing.TB, p *profile, text string) string {
	tb.Helper()
	s := &StreamScanner{p: p, counts: make([]int, len(p.Rules))}
	s.sc.p = p.plan
	return string(s.Push([]byte(text))) + string(s.Flush())
}

// streamChunks pushes the chunks and returns the released text and the
// largest number of bytes held back after any push.
func streamChunks(tb testing.TB, e *Engine, profile string, chunks ...string) (string, int, Result) {
	tb.Helper()
	s, err := e.NewStreamScanner(profile, "choices[0].delta.content")
	require.NoError(tb, err)
	var out strings.Builder
	maxHeld := 0
	for _, c := range chunks {
		out.Write(s.Push([]byte(c)))
		maxHeld = max(maxHeld, s.Held())
	}
	out.Write(s.Flush())
	return out.String(), maxHeld, s.Result()
}

// Every positive of the corpus, split at every byte boundary into two
// chunks, is redacted exactly as when the text arrives in one piece.
func TestStreamSplitEveryBoundary(t *testing.T) {
	e := allEngine(t)
	p := e.profiles["redact"]
	for _, tc := range corpus {
		t.Run(tc.det, func(t *testing.T) {
			for _, pos := range tc.pos {
				text := "Sure, here it is: " + pos + " and that is all."
				want := redactFinal(t, p, text)
				require.NotContains(t, want, pos)
				for cut := 0; cut <= len(text); cut++ {
					got, _, res := streamChunks(t, e, "redact", text[:cut], text[cut:])
					require.Equal(t, want, got, "cut at %d", cut)
					require.Equal(t, DecisionRedact, res.Decision)
				}
			}
		})
	}
}

// Byte-at-a-time delivery (the worst case for carry-over) gives the same
// output as one chunk, for a text holding one of everything.
func TestStreamByteAtATime(t *testing.T) {
	e := allEngine(t)
	p := e.profiles["redact"]
	var b strings.Builder
	for _, tc := range corpus {
		for _, pos := range tc.pos {
			b.WriteString("see " + pos + " then\n")
		}
		for _, neg := range tc.neg {
			b.WriteString("not " + neg + " ok\n")
		}
	}
	text := b.String()
	want := redactFinal(t, p, text)
	chunks := make([]string, len(text))
	for i := range len(text) {
		chunks[i] = text[i : i+1]
	}
	got, _, _ := streamChunks(t, e, "redact", chunks...)
	require.Equal(t, want, got)
}

// Clean prose is released as it arrives, holding back at most the trailing
// partial word.
func TestStreamCleanHoldBack(t *testing.T) {
	e := allEngine(t)
	text := strings.Repeat("The quarterly figures were derived from the adjusted ledger, as before. ", 40)
	var chunks []string
	for i := 0; i < len(text); i += 7 {
		chunks = append(chunks, text[i:min(i+7, len(text))])
	}
	got, maxHeld, res := streamChunks(t, e, "redact", chunks...)
	require.Equal(t, text, got)
	require.LessOrEqual(t, maxHeld, 16)
	require.Equal(t, DecisionAllow, res.Decision)
	require.Empty(t, res.Findings)
}

// A block rule on a stream redacts and reports Redact; audit only counts;
// dry run changes nothing and reports the configured action.
func TestStreamActions(t *testing.T) {
	e := newEngine(t,
		ProfileConfig{Name: "block", Rules: []RuleConfig{{ID: "no-aws", Detector: "secret.aws_access_key", Action: "block"}}},
		ProfileConfig{Name: "audit", Rules: []RuleConfig{{ID: "see-aws", Detector: "secret.aws_access_key", Action: "audit"}}},
		ProfileConfig{Name: "dry", DryRun: true, Rules: []RuleConfig{{ID: "no-aws", Detector: "secret.aws_access_key", Action: "block"}}},
	)
	text := "key " + fakeAWS + " and again " + fakeAWS + "."
	got, _, res := streamChunks(t, e, "block", text[:10], text[10:])
	require.Equal(t, "key [AWS_ACCESS_KEY_1] and again [AWS_ACCESS_KEY_1].", got)
	require.Equal(t, []Finding{{RuleID: "no-aws", Detector: "secret.aws_access_key", Action: Redact, Count: 2, Path: "choices[0].delta.content"}}, res.Findings)

	got, _, res = streamChunks(t, e, "audit", text[:10], text[10:])
	require.Equal(t, text, got)
	require.Equal(t, DecisionAllow, res.Decision)
	require.Equal(t, 2, res.Findings[0].Count)

	got, _, res = streamChunks(t, e, "dry", text)
	require.Equal(t, text, got)
	require.Equal(t, DecisionAllow, res.Decision)
	require.Equal(t, DecisionRedact, res.Intended)
	require.Equal(t, Block, res.Findings[0].Action)
}

// A PEM block longer than the hold bound is redacted in parts: nothing of
// it is released.
func TestStreamLongPEM(t *testing.T) {
	e := newEngine(t, ProfileConfig{Name: "p", Rules: []RuleConfig{{ID: "pem", Detector: "secret.private_key", Action: "redact"}}})
	line := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 2) + "\n"
	body := strings.Repeat(line, 300)
	text := "key:\n-----BEGIN RSA PRIVATE KEY-----\n" + body + "-----END RSA PRIVATE KEY-----\nbye"
	var chunks []string
	for i := 0; i < len(text); i += 50 {
		chunks = append(chunks, text[i:min(i+50, len(text))])
	}
	got, maxHeld, _ := streamChunks(t, e, "p", chunks...)
	require.NotContains(t, got, "QUJD")
	require.NotContains(t, got, "END RSA")
	require.True(t, strings.HasPrefix(got, "key:\n[PRIVATE_KEY_"), got)
	require.True(t, strings.HasSuffix(got, "\nbye"), got)
	require.Less(t, maxHeld, 4*e.profiles["p"].plan.maxHold+64)
}

// Multi-byte characters split across chunks are never cut, and full-width
// digits split across chunks are still found.
func TestStreamUTF8Split(t *testing.T) {
	e := allEngine(t)
	text := "card ４１１１ １１１１ １１１１ １１１１ — ok ünïcödé"
	want := redactFinal(t, e.profiles["redact"], text)
	require.Contains(t, want, "[CARD_1]")
	for cut := 0; cut <= len(text); cut++ {
		got, _, _ := streamChunks(t, e, "redact", text[:cut], text[cut:])
		require.Equal(t, want, got, "cut at %d", cut)
	}
}
