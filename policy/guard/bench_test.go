package guard

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// benchTurns is realistic prompt text: prose with numbers, dates, versions,
// times, a URL, code and a little non-ASCII, so digit clusters, '@'-free
// punctuation and many anchor pairs ("sk", "de", "ig", ...) are exercised.
var benchTurns = []string{
	"Could you explain how the quarterly report's revenue figures were derived, including the \"adjusted\" numbers and any one-off items? Thanks!",
	"Sure. Revenue for Q3 2024 was 12.4M, up 8% from 11.5M; the adjusted figure excludes a 0.3M one-off (see section 4.2, table 7).",
	"Please ignore the rounding in v1.2.3 of the model, and skip the appendix. The meeting is at 10:30 on 2024-10-15 in room 4B.",
	"Here is the snippet: `for i := 0; i < len(xs); i++ { total += xs[i] * 1.05 }` — does it match the spreadsheet at https://example.com/q3?",
	"Résumé of the discussion: the desk in Zürich disagreed; they'd prefer the 2023 baseline (7,450 units) and a 5-year horizon.",
}

// benchChat returns a chat completions body of at least size bytes built
// from benchTurns, with the extra strings spliced into some turns.
func benchChat(tb testing.TB, size int, extra ...string) []byte {
	tb.Helper()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	body := struct {
		Model       string  `json:"model"`
		Messages    []msg   `json:"messages"`
		Temperature float64 `json:"temperature"`
		Stream      bool    `json:"stream"`
		Tools       []any   `json:"tools"`
	}{
		Model: "gpt-4o-2024-08-06", Temperature: 0.2, Stream: true,
		Messages: []msg{{Role: "system", Content: "You are a careful financial analyst. Answer concisely, cite the section you used, and never invent figures."}},
		Tools: []any{map[string]any{"type": "function", "function": map[string]any{
			"name": "lookup_section", "description": "Look up a section of the report by title.",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"title": map[string]any{"type": "string"}}},
		}}},
	}
	for i := 0; ; i++ {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		if len(b) >= size {
			return b
		}
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		content := fmt.Sprintf("(%d) %s", i, benchTurns[i%len(benchTurns)])
		if i < len(extra) {
			content += " " + extra[i]
		}
		body.Messages = append(body.Messages, msg{Role: role, Content: content})
	}
}

func benchScan(b *testing.B, body []byte, want Decision) {
	e := allEngine(b)
	r, err := e.ScanRequest("redact", llm.ChatCompletions, body)
	if err != nil || r.Decision != want {
		b.Fatalf("decision %v, err %v", r.Decision, err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		_, _ = e.ScanRequest("redact", llm.ChatCompletions, body)
	}
}

// BenchmarkScanRequest4KiBClean is the target: a clean 4 KiB prompt
// with every built-in detector on.
func BenchmarkScanRequest4KiBClean(b *testing.B) {
	benchScan(b, benchChat(b, 4096), DecisionAllow)
}

// BenchmarkScanRequest4KiBNoRules is the parse alone: validation, duplicate
// keys and extraction, with a profile that has no rules.
func BenchmarkScanRequest4KiBNoRules(b *testing.B) {
	e := newEngine(b, ProfileConfig{Name: "none"})
	body := benchChat(b, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_, _ = e.ScanRequest("none", llm.ChatCompletions, body)
	}
}

// BenchmarkScanRequest4KiBHits has an email, a phone number, a card and an
// AWS key, all redacted.
func BenchmarkScanRequest4KiBHits(b *testing.B) {
	benchScan(b, benchChat(b, 4096, "mail jane.doe@example.com", "call (415) 555-2671", "card 4111 1111 1111 1111", "key "+fakeAWS), DecisionRedact)
}

// BenchmarkScanRequest200KiB is a long clean prompt.
func BenchmarkScanRequest200KiB(b *testing.B) {
	benchScan(b, benchChat(b, 200<<10), DecisionAllow)
}

// BenchmarkScanRequest4KiBNonASCII is a clean prompt in which every string
// takes the normalization slow path (non-ASCII and escapes).
func BenchmarkScanRequest4KiBNonASCII(b *testing.B) {
	body := benchChat(b, 4096)
	body = []byte(strings.ReplaceAll(string(body), "figures", "ﬁgures \\u00e9"))
	benchScan(b, body, DecisionAllow)
}

// BenchmarkScanRequest4KiBCyrillic is a clean prompt in Russian: every
// string has look-alike letters to fold.
func BenchmarkScanRequest4KiBCyrillic(b *testing.B) {
	body := benchChat(b, 4096)
	var v struct {
		Messages []struct{ Content string }
	}
	if err := json.Unmarshal(body, &v); err != nil {
		b.Fatal(err)
	}
	for i, m := range v.Messages {
		body = []byte(strings.Replace(string(body), m.Content, nonLatinProse[i%7], 1))
	}
	benchScan(b, body, DecisionAllow)
}

// BenchmarkScanRequest4KiBBase64 is a clean prompt with a 1 KiB base64
// blob of clean text, which is decoded and scanned.
func BenchmarkScanRequest4KiBBase64(b *testing.B) {
	blob := b64std(strings.Repeat(benchTurns[0], 6)[:768])
	benchScan(b, benchChat(b, 4096, "attached: "+blob), DecisionAllow)
}

// BenchmarkStream4KiB pushes 4 KiB of clean text in 16-byte deltas.
func BenchmarkStream4KiB(b *testing.B) {
	e := allEngine(b)
	text := []byte(strings.Repeat(benchTurns[0]+" ", 4096/len(benchTurns[0])+1)[:4096])
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		s, _ := e.NewStreamScanner("redact", "x")
		for i := 0; i < len(text); i += 16 {
			s.Push(text[i:min(i+16, len(text))])
		}
		s.Flush()
	}
}

// BenchmarkNaiveRegexps4KiB is the baseline the design avoids: one regular
// expression per detector over every extracted string.
func BenchmarkNaiveRegexps4KiB(b *testing.B) {
	res := []*regexp.Regexp{
		regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`),
		regexp.MustCompile(`(?:\+?1[ .-]?)?\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]?\d{4}`),
		regexp.MustCompile(`\b(?:\d[ -]?){13,19}\b`),
		regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b`),
		regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`),
		regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`),
		regexp.MustCompile(`(?i)\b[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}\b`),
		regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b`),
		regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36,}\b`),
		regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`),
		regexp.MustCompile(`\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}`),
		regexp.MustCompile(`\bAIza[A-Za-z0-9_-]{35}`),
		regexp.MustCompile(`\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}`),
		regexp.MustCompile(`\bsk-ant-[A-Za-z0-9_-]{32,}`),
		regexp.MustCompile(`\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`),
		regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
		regexp.MustCompile(`\btgk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}\b`),
		regexp.MustCompile(`(?i)\b(?:ignore|disregard|forget)\s+(?:all\s+)?(?:the\s+)?(?:previous|prior|above)\s+(?:instructions|prompts|rules)`),
	}
	body := benchChat(b, 4096)
	var w walker
	if err := w.walk(body, chatRequest); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		for _, l := range w.locs {
			text := body[l.start+1 : l.end-1]
			for _, re := range res {
				re.FindAllIndex(text, -1)
			}
		}
	}
}
