package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// benchWords are the content pieces of the benchmark streams, one per chunk.
var benchWords = strings.Fields(`The adjusted revenue figure excludes the one-off licence sale
described in section 4; operating margin improved by "two points" because of lower cloud costs,
while headcount stayed flat.\n`)

// benchWord returns the i-th content piece as a JSON string.
func benchWord(i int) []byte { return jsonlex.AppendQuoted(nil, " "+benchWords[i%len(benchWords)]) }

// openAIStream200 returns a 200-chunk Chat Completions stream with
// include_usage, one SSE event per chunk, shaped like the API's: a role
// chunk, 196 content chunks, a finish chunk, the usage chunk and [DONE].
func openAIStream200() [][]byte {
	const head = `data: {"id":"chatcmpl-C4ykV3uW9GxZqLh0vA7s2mN1pQeRt","object":"chat.completion.chunk","created":1755174813,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[`
	chunks := [][]byte{[]byte(head + `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"bY3f"}` + "\n\n")}
	for i := range 196 {
		chunks = append(chunks, fmt.Appendf(nil, "%s{\"index\":0,\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"%s\"}\n\n",
			head, benchWord(i), strings.Repeat("x", i%7)))
	}
	return append(chunks,
		[]byte(head+`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"e1Xy"}`+"\n\n"),
		[]byte(head+`],"usage":{"prompt_tokens":1117,"completion_tokens":196,"total_tokens":1313,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"tW"}`+"\n\n"),
		[]byte("data: [DONE]\n\n"))
}

// anthropicStream200 returns a 200-chunk Messages stream: message_start,
// content_block_start, ping, 194 text deltas, content_block_stop,
// message_delta and message_stop.
func anthropicStream200() [][]byte {
	chunks := [][]byte{
		[]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01A9e3bZ7qT4vWm2xYc8nKpR\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":1894,\"cache_read_input_tokens\":12041,\"cache_creation\":{\"ephemeral_5m_input_tokens\":1894,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n"),
		[]byte("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
		[]byte("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
	}
	for i := range 194 {
		chunks = append(chunks, fmt.Appendf(nil,
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}\n\n",
			benchWord(i)))
	}
	return append(chunks,
		[]byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"),
		[]byte("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":194}}\n\n"),
		[]byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
}

// benchmarkUsageStream feeds a whole stream chunk by chunk per iteration,
// as the ext_proc loop would for one response.
func benchmarkUsageStream(b *testing.B, e Endpoint, chunks [][]byte, want Usage) {
	if len(chunks) != 200 {
		b.Fatalf("%d chunks", len(chunks))
	}
	total := 0
	for _, c := range chunks {
		total += len(c)
	}
	run := func() {
		u := NewUsageParser(e, true)
		for _, c := range chunks {
			u.Feed(c)
		}
		u.Finish()
		if got, ok := u.Usage(); !ok || got != want {
			b.Fatalf("usage %+v %v", got, ok)
		}
	}
	run()
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

func BenchmarkUsageSSE200Chunks(b *testing.B) {
	benchmarkUsageStream(b, ChatCompletions, openAIStream200(),
		Usage{InputTokens: 93, CachedInputTokens: 1024, OutputTokens: 196})
}

func BenchmarkUsageSSEAnthropic200Chunks(b *testing.B) {
	benchmarkUsageStream(b, Messages, anthropicStream200(),
		Usage{InputTokens: 472, CacheWriteTokens: 1894, CachedInputTokens: 12041, OutputTokens: 194})
}

// BenchmarkSSEParserLargeEvent measures one 1 MiB data line (a big
// response.completed event, say) arriving in 16 KiB chunks.
func BenchmarkSSEParserLargeEvent(b *testing.B) {
	stream := concat("event: big\ndata: ", bytes.Repeat([]byte("a"), 1<<20), "\n\n")
	chunks := splitEvery(stream, 16<<10)
	var p SSEParser
	n := 0
	emit := func(_, data []byte) { n += len(data) }
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chunks {
			p.Feed(c, emit)
		}
	}
	if n == 0 {
		b.Fatal("no event")
	}
}

func TestBenchStreams(t *testing.T) {
	for name, chunks := range map[string][][]byte{"openai": openAIStream200(), "anthropic": anthropicStream200()} {
		t.Run(name, func(t *testing.T) {
			events := refSSE(bytes.Join(chunks, nil))
			if len(events) != 200 {
				t.Fatalf("%d events", len(events))
			}
			for _, ev := range events {
				if ev.Data != "[DONE]" && !json.Valid([]byte(ev.Data)) {
					t.Fatalf("invalid json %q", ev.Data)
				}
			}
		})
	}
}
