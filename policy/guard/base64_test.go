package guard

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

func b64std(s string) string    { return base64.StdEncoding.EncodeToString([]byte(s)) }
func b64raw(s string) string    { return base64.RawStdEncoding.EncodeToString([]byte(s)) }
func b64url(s string) string    { return base64.URLEncoding.EncodeToString([]byte(s)) }
func b64rawURL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// wrapped returns s cut into lines of col characters joined by sep, as the
// base64 tool (76) and PEM (64) print it.
func wrapped(s string, col int, sep string) string {
	var lines []string
	for len(s) > col {
		lines = append(lines, s[:col])
		s = s[col:]
	}
	return strings.Join(append(lines, s), sep)
}

// A secret inside a base64 run is found whatever its byte alignment in the
// plaintext, and the match covers the run (from the separator after which
// it decodes, when text is glued to it), so redaction removes all of the
// encoding.
func TestBase64Secrets(t *testing.T) {
	p := allPlan(t)
	// Binary data that is no secret: every byte value, several times.
	var bin []byte
	for i := range 3000 {
		bin = append(bin, byte(i*7))
	}
	// The key's encoding crosses column 76 (and 64).
	straddle := strings.Repeat("x", 50) + " " + fakeAWS + " " + strings.Repeat("y", 40)
	tests := []struct {
		name, text string
		want       []string
	}{
		{"alignment 0", "x " + b64std(fakeAWS) + " y", []string{"secret.aws_access_key=" + b64std(fakeAWS)}},
		{"alignment 1", b64std("="+fakeAWS) + ".", []string{"secret.aws_access_key=" + b64std("="+fakeAWS)}},
		{"alignment 2", b64std(": "+fakeAWS) + ".", []string{"secret.aws_access_key=" + b64std(": "+fakeAWS)}},
		{"url-safe with - and _", b64rawURL("\xfb\xff\xbe " + fakeAWS + " \xfb\xff"), []string{"secret.aws_access_key=" + b64rawURL("\xfb\xff\xbe "+fakeAWS+" \xfb\xff")}},
		{"standard with + and /", b64std("\xfb\xff\xbe " + fakeAWS + " \xfb\xff"), []string{"secret.aws_access_key=" + b64std("\xfb\xff\xbe "+fakeAWS+" \xfb\xff")}},
		{"glued to a url path", "GET https://example.com/v1/" + b64rawURL(fakeAWS), []string{"secret.aws_access_key=" + b64rawURL(fakeAWS)}},
		{"in a kubernetes secret", "data:\n  tls.key: " + b64std(fakePEM+"\n") + "\n", []string{"secret.private_key=" + b64std(fakePEM+"\n")}},
		{"in non-ascii text", "ключ: " + b64std(fakeGitHub) + " — вот", []string{"secret.github_token=" + b64std(fakeGitHub)}},
		{"glued with a dash", "id-" + b64std("x "+fakeAWS), []string{"secret.aws_access_key=" + b64std("x "+fakeAWS)}},
		{"after a data url", "data:text/plain;base64," + b64std("token="+fakeStripe), []string{"secret.stripe_key=" + b64std("token="+fakeStripe)}},
		{"wrapped at 76, key across the break", "$ base64 creds\n" + wrapped(b64std(straddle), 76, "\n") + "\n$ ", []string{"secret.aws_access_key=" + wrapped(b64std(straddle), 76, "\n")}},
		{"wrapped at 64 with crlf", wrapped(b64std(straddle), 64, "\r\n") + "\r\n", []string{"secret.aws_access_key=" + wrapped(b64std(straddle), 64, "\r\n")}},
		{"indented yaml block", "tls.key: |\n    " + wrapped(b64std(straddle), 76, "\n    ") + "\nnext: 1", []string{"secret.aws_access_key=" + wrapped(b64std(straddle), 76, "\n    ")}},
		{"short lines are not one run", "x\n" + wrapped(b64std(straddle), 12, "\n"), nil},
		{"binary", "img " + b64std(string(bin)) + " end", nil},
		{"hex digest", "sha256 " + strings.Repeat("0123456789abcdef", 4), nil},
		{"long identifiers", "AbstractSingletonProxyFactoryBean_with_a_very_long_name/and/a/path-too", nil},
		{"too short to hold a key", b64std(fakeAWS[:16]), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, detect(t, p, tc.text))
		})
	}
}

// A run longer than maxB64Run is not decoded, and the scan of one stays
// cheap; a run just under it is decoded.
func TestBase64RunBound(t *testing.T) {
	p := allPlan(t)
	secret := "key " + fakeAWS + " "
	pad := strings.Repeat("padding text ", (maxB64Run/4*3-len(secret))/13)
	under := b64std(pad + secret)
	require.LessOrEqual(t, len(under), maxB64Run)
	require.Equal(t, []string{"secret.aws_access_key=" + under}, detect(t, p, under))
	over := b64std(pad + pad + secret)
	require.Greater(t, len(over), maxB64Run)
	require.Empty(t, detect(t, p, over))
}

// Redaction replaces the whole run in the forwarded body.
func TestBase64Redaction(t *testing.T) {
	e := allEngine(t)
	enc := b64std("aws_access_key_id = " + fakeAWS)
	r, err := e.ScanRequest("redact", llm.ChatCompletions, chat("decode this: "+enc+" please"))
	require.NoError(t, err)
	require.Equal(t, DecisionRedact, r.Decision)
	require.True(t, json.Valid(r.NewBody))
	require.Equal(t, []string{"decode this: [AWS_ACCESS_KEY_1] please"}, contents(t, r.NewBody))

	r, err = e.ScanRequest("block", llm.ChatCompletions, chat(enc))
	require.NoError(t, err)
	require.Equal(t, DecisionBlock, r.Decision)
	require.Equal(t, "r.secret.aws_access_key", r.BlockedBy)
}

// A base64 secret split across stream chunks anywhere, or pushed a byte at
// a time, is redacted as in one piece.
func TestBase64Stream(t *testing.T) {
	e := allEngine(t)
	wrap := wrapped(b64std(strings.Repeat("z", 40)+" "+fakeStripe+" "+strings.Repeat("z", 40)), 64, "\n  ")
	text := "here: /api/" + b64rawURL("k="+fakeAWS) + " and " + b64std(fakeGitHub) + ".\nkey:\n  " + wrap + "\nend"
	want := "here: /[AWS_ACCESS_KEY_1] and [GITHUB_TOKEN_1].\nkey:\n  [STRIPE_KEY_1]\nend"
	require.Equal(t, want, redactFinal(t, e.profiles["redact"], text))
	for cut := 0; cut <= len(text); cut++ {
		got, _, _ := streamChunks(t, e, "redact", text[:cut], text[cut:])
		require.Equal(t, want, got, "cut at %d", cut)
	}
	var chunks []string
	for i := range len(text) {
		chunks = append(chunks, text[i:i+1])
	}
	got, _, _ := streamChunks(t, e, "redact", chunks...)
	require.Equal(t, want, got)
}

// A profile without secret detectors does not decode base64.
func TestBase64OnlyForSecrets(t *testing.T) {
	e := newEngine(t, ProfileConfig{Name: "pii", Rules: []RuleConfig{{ID: "e", Detector: "pii.email", Action: "redact"}}})
	require.False(t, e.profiles["pii"].plan.b64)
	require.True(t, allPlan(t).b64)
}
