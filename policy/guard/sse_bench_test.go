package guard

import (
	"strings"
	"testing"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// benchChatStream returns a clean chat completions stream of n content
// chunks (one event each, shaped like OpenAI's), cut where Envoy would
// deliver them: one event per chunk.
func benchChatStream(n int) [][]byte {
	var words []string
	for len(words) < n {
		for _, t := range benchTurns {
			words = append(words, tokens(" "+t)...)
		}
	}
	evs := chatFx(words[:n])
	chunks := make([][]byte, len(evs))
	for i, e := range evs {
		chunks[i] = []byte(e.raw)
	}
	return chunks
}

// BenchmarkSSERedactorChat200 feeds a clean 200-chunk chat stream with
// every built-in detector on; ns/chunk is the cost added to each streamed
// response chunk.
func BenchmarkSSERedactorChat200(b *testing.B) {
	benchStream(b, allEngine(b), "redact", benchChatStream(200))
}

// BenchmarkSSERedactorChat200Hits has an email and a key in the stream.
func BenchmarkSSERedactorChat200Hits(b *testing.B) {
	chunks := benchChatStream(200)
	chunks[50] = []byte(strings.Replace(string(chunks[50]), `"content":"`, `"content":"jane.doe@example.com `, 1))
	chunks[120] = []byte(strings.Replace(string(chunks[120]), `"content":"`, `"content":"`+fakeAWS+` `, 1))
	benchStream(b, allEngine(b), "redact", chunks)
}

// BenchmarkSSERedactorChat200Audit is the pass-through path (audit rules
// that fail open): the input is released as it came and only scanned.
func BenchmarkSSERedactorChat200Audit(b *testing.B) {
	e := newEngine(b, ProfileConfig{Name: "audit", Rules: []RuleConfig{{ID: "aws", Detector: "secret.aws_access_key", Action: "audit", FailOpen: true}}})
	benchStream(b, e, "audit", benchChatStream(200))
}

// BenchmarkSSEParserChat200 is the floor: llm.SSEParser alone.
func BenchmarkSSEParserChat200(b *testing.B) {
	chunks := benchChatStream(200)
	b.ReportAllocs()
	for b.Loop() {
		var p llm.SSEParser
		for _, c := range chunks {
			p.Feed(c, nil)
		}
		p.Flush(nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(chunks)), "ns/chunk")
}

func benchStream(b *testing.B, e *Engine, profile string, chunks [][]byte) {
	size := 0
	for _, c := range chunks {
		size += len(c)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := e.NewSSERedactor(profile, llm.ChatCompletions)
		for _, c := range chunks {
			r.Feed(c)
		}
		r.Finish()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(chunks)), "ns/chunk")
}
