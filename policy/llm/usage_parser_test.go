package llm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readFixture returns testdata/usage/name.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "usage", name))
	require.NoError(t, err)
	return b
}

// runUsage feeds chunks to a new parser and finishes it.
func runUsage(e Endpoint, streaming bool, chunks ...[]byte) *UsageParser {
	u := NewUsageParser(e, streaming)
	for _, c := range chunks {
		u.Feed(c)
	}
	u.Finish()
	return u
}

// splitEvery cuts b into chunks of n bytes (the last may be shorter).
func splitEvery(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, b[:k])
		b = b[k:]
	}
	return out
}

// chunkings returns b whole and cut in the ways Envoy may deliver it.
func chunkings(b []byte) map[string][][]byte {
	out := map[string][][]byte{
		"whole":  {b},
		"1 byte": splitEvery(b, 1),
		"7 byte": splitEvery(b, 7),
	}
	for seed := range uint64(5) {
		out["random "+string(rune('a'+seed))] = randomChunks(rand.New(rand.NewPCG(seed, 99)), b, 300)
	}
	return out
}

func TestUsageParserFixtures(t *testing.T) {
	tests := []struct {
		file      string
		endpoint  Endpoint
		streaming bool
		want      Usage
		seen      bool
		model     string
	}{
		{"openai_chat_stream_usage.sse", ChatCompletions, true,
			Usage{InputTokens: 93, CachedInputTokens: 1024, OutputTokens: 46}, true, "gpt-4o-2024-08-06"},
		{"openai_chat_stream.sse", ChatCompletions, true, Usage{}, false, "gpt-4o-2024-08-06"},
		{"azure_chat_stream_usage.sse", ChatCompletions, true,
			Usage{InputTokens: 9, OutputTokens: 2}, true, "gpt-4o-2024-11-20"},
		{"openai_chat.json", ChatCompletions, false,
			Usage{InputTokens: 128, CachedInputTokens: 1920, OutputTokens: 23}, true, "gpt-4o-mini-2024-07-18"},
		{"openai_completions.json", Completions, false,
			Usage{InputTokens: 5, OutputTokens: 7}, true, "gpt-3.5-turbo-instruct:20230824-v2"},
		{"openai_completions_stream_usage.sse", Completions, true,
			Usage{InputTokens: 6, OutputTokens: 7}, true, "gpt-3.5-turbo-instruct"},
		{"openai_embeddings.json", Embeddings, false, Usage{InputTokens: 17}, true, "text-embedding-3-small"},
		{"openai_responses.json", Responses, false,
			Usage{InputTokens: 328, OutputTokens: 52}, true, "gpt-4.1-2025-04-14"},
		{"openai_responses_stream.sse", Responses, true,
			Usage{InputTokens: 256, CachedInputTokens: 1280, OutputTokens: 9}, true, "gpt-4.1-2025-04-14"},
		{"anthropic_messages.json", Messages, false,
			Usage{InputTokens: 2095, CachedInputTokens: 14336, OutputTokens: 503}, true, "claude-sonnet-4-20250514"},
		{"anthropic_stream.sse", Messages, true,
			Usage{InputTokens: 472, CacheWriteTokens: 1894, CachedInputTokens: 12041, OutputTokens: 87}, true, "claude-sonnet-4-20250514"},
		// message_delta repeats the input count, grown by the web search.
		{"anthropic_stream_tools.sse", Messages, true,
			Usage{InputTokens: 10682, OutputTokens: 510}, true, "claude-opus-4-1-20250805"},
		// The error event ends usage: the later message_delta is ignored.
		{"anthropic_stream_error.sse", Messages, true,
			Usage{InputTokens: 25, OutputTokens: 1}, true, "claude-3-5-haiku-20241022"},
		// The caller decides the mode from content-type; a stream read as
		// JSON is not JSON.
		{"openai_chat_stream_usage.sse", ChatCompletions, false, Usage{}, false, ""},
		{"openai_chat.json", Models, false, Usage{}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.endpoint.String(), func(t *testing.T) {
			body := readFixture(t, tc.file)
			bodies := map[string][]byte{"lf": body}
			if tc.streaming {
				bodies["crlf"] = bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
			}
			for ending, b := range bodies {
				for name, chunks := range chunkings(b) {
					u := runUsage(tc.endpoint, tc.streaming, chunks...)
					got, seen := u.Usage()
					require.Equal(t, tc.seen, seen, "%s %s", ending, name)
					require.Equal(t, tc.want, got, "%s %s", ending, name)
					require.Equal(t, tc.model, u.Model(), "%s %s", ending, name)
				}
			}
		})
	}
}

// TestUsageParserAnthropicAborted cuts the stream at every byte: usage is
// what was seen, input from message_start and output from the last complete
// message_delta (message_start's provisional count before it).
func TestUsageParserAnthropicAborted(t *testing.T) {
	body := readFixture(t, "anthropic_stream.sse")
	startEnd := bytes.Index(body, []byte(`"service_tier":"standard"}}}`)) + len(`"service_tier":"standard"}}}`)
	deltaEnd := bytes.Index(body, []byte(`{"output_tokens":87}}`)) + len(`{"output_tokens":87}}`)
	require.Greater(t, deltaEnd, startEnd)
	for n := 0; n <= len(body); n++ {
		u := runUsage(Messages, true, splitEvery(body[:n], 13)...)
		got, seen := u.Usage()
		switch {
		case n < startEnd:
			require.False(t, seen, "cut at %d", n)
			require.Equal(t, Usage{}, got, "cut at %d", n)
		case n < deltaEnd:
			require.True(t, seen, "cut at %d", n)
			require.Equal(t, Usage{InputTokens: 472, CacheWriteTokens: 1894, CachedInputTokens: 12041, OutputTokens: 1}, got, "cut at %d", n)
		default:
			require.True(t, seen, "cut at %d", n)
			require.Equal(t, Usage{InputTokens: 472, CacheWriteTokens: 1894, CachedInputTokens: 12041, OutputTokens: 87}, got, "cut at %d", n)
		}
	}
}

// TestUsageParserOpenAIAborted: without the final usage chunk there is no
// usage, whatever else was seen.
func TestUsageParserOpenAIAborted(t *testing.T) {
	for _, tc := range []struct {
		file     string
		endpoint Endpoint
		last     string // the end of the usage-bearing JSON
	}{
		{"openai_chat_stream_usage.sse", ChatCompletions, `"rejected_prediction_tokens":0}},"obfuscation":"tW"}`},
		{"openai_responses_stream.sse", Responses, `"user":null,"metadata":{}}}` + "\n\n"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body := readFixture(t, tc.file)
			end := bytes.LastIndex(body, []byte(tc.last)) + len(strings.TrimRight(tc.last, "\n"))
			for n := 0; n <= len(body); n++ {
				u := runUsage(tc.endpoint, true, splitEvery(body[:n], 29)...)
				_, seen := u.Usage()
				require.Equal(t, n >= end, seen, "cut at %d", n)
			}
		})
	}
}

func TestUsageParserCases(t *testing.T) {
	const chatUsage = `{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}`
	sse := func(events ...string) string { return strings.Join(events, "\n\n") + "\n\n" }
	chunk := func(usage string) string {
		return `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[],"usage":` + usage + `}`
	}
	tests := []struct {
		name      string
		endpoint  Endpoint
		streaming bool
		body      string
		want      Usage
		seen      bool
	}{
		// OpenAI chat streams.
		{"chat null usage only", ChatCompletions, true, sse(chunk("null"), chunk(" null ")), Usage{}, false},
		{"chat last usage wins", ChatCompletions, true,
			sse(chunk(chatUsage), chunk(`{"prompt_tokens":20,"completion_tokens":5}`)), Usage{InputTokens: 20, OutputTokens: 5}, true},
		{"chat null after usage ignored", ChatCompletions, true,
			sse(chunk(chatUsage), chunk("null"), "data: [DONE]"), Usage{InputTokens: 10, OutputTokens: 3}, true},
		{"chat zero usage is usage", ChatCompletions, true,
			sse(chunk(`{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}`)), Usage{}, true},
		{"chat negative ignored", ChatCompletions, true,
			sse(chunk(chatUsage), chunk(`{"prompt_tokens":-1,"completion_tokens":3}`)), Usage{InputTokens: 10, OutputTokens: 3}, true},
		{"chat negative cached ignored", ChatCompletions, true,
			sse(chunk(`{"prompt_tokens":5,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":-2}}`)), Usage{}, false},
		{"chat absurd ignored", ChatCompletions, true,
			sse(chunk(`{"prompt_tokens":1000000000001,"completion_tokens":3}`)), Usage{}, false},
		{"chat limit accepted", ChatCompletions, true,
			sse(chunk(`{"prompt_tokens":1000000000000,"completion_tokens":3}`)), Usage{InputTokens: 1e12, OutputTokens: 3}, true},
		{"chat int64 overflow ignored", ChatCompletions, true,
			sse(chunk(`{"prompt_tokens":99999999999999999999,"completion_tokens":3}`)), Usage{}, false},
		{"chat fraction ignored", ChatCompletions, true, sse(chunk(`{"prompt_tokens":1.5,"completion_tokens":3}`)), Usage{}, false},
		{"chat exponent ignored", ChatCompletions, true, sse(chunk(`{"prompt_tokens":1e3,"completion_tokens":3}`)), Usage{}, false},
		{"chat string count ignored", ChatCompletions, true, sse(chunk(`{"prompt_tokens":"10","completion_tokens":3}`)), Usage{}, false},
		{"chat usage not object", ChatCompletions, true, sse(chunk(`5`), chunk(`[1]`), chunk(`"x"`), chunk(`true`)), Usage{}, false},
		{"chat nested usage ignored", ChatCompletions, true,
			sse(`data: {"choices":[{"usage":` + chatUsage + `}],"x":{"usage":` + chatUsage + `}}`), Usage{}, false},
		{"chat malformed event", ChatCompletions, true,
			sse(`data: {"usage":`+chatUsage, `data: {"usage":`+chatUsage+`}}`, `data: {"usage":`+chatUsage+`,}`), Usage{}, false},
		{"chat top-level array", ChatCompletions, true, sse(`data: [{"usage":` + chatUsage + `}]`), Usage{}, false},
		{"chat cached above prompt clamped", ChatCompletions, true,
			sse(chunk(`{"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":50}}`)),
			Usage{CachedInputTokens: 10, OutputTokens: 1}, true},
		{"chat null details and counts", ChatCompletions, true,
			sse(chunk(`{"prompt_tokens":7,"completion_tokens":null,"prompt_tokens_details":null}`)), Usage{InputTokens: 7}, true},
		{"chat null prompt ignored", ChatCompletions, true, sse(chunk(`{"prompt_tokens":null,"completion_tokens":3}`)), Usage{}, false},
		{"chat usage split over data lines", ChatCompletions, true,
			"data: {\"usage\":\ndata: " + chatUsage + "}\n\n", Usage{InputTokens: 10, OutputTokens: 3}, true},
		{"chat comments and done", ChatCompletions, true,
			": keep-alive\n\n" + sse(chunk(chatUsage), "data: [DONE]"), Usage{InputTokens: 10, OutputTokens: 3}, true},
		{"chat duplicate usage key last wins", ChatCompletions, true,
			sse(`data: {"usage":{"prompt_tokens":1},"usage":` + chatUsage + `}`), Usage{InputTokens: 10, OutputTokens: 3}, true},
		{"chat last event without blank line", ChatCompletions, true, chunk(chatUsage), Usage{InputTokens: 10, OutputTokens: 3}, true},
		{"chat deep nesting ignored", ChatCompletions, true,
			sse(`data: {"usage":` + chatUsage + `,"x":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`), Usage{}, false},

		// OpenAI Responses streams.
		{"responses incomplete", Responses, true,
			sse("event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\",\"usage\":{\"input_tokens\":4,\"output_tokens\":16}}}"),
			Usage{InputTokens: 4, OutputTokens: 16}, true},
		{"responses failed", Responses, true,
			sse("event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"usage\":{\"input_tokens\":4,\"output_tokens\":0}}}"),
			Usage{InputTokens: 4}, true},
		{"responses type from data", Responses, true,
			sse(`data: {"type":"response.completed","response":{"usage":{"input_tokens":4,"output_tokens":2,"input_tokens_details":{"cached_tokens":3}}}}`),
			Usage{InputTokens: 1, CachedInputTokens: 3, OutputTokens: 2}, true},
		{"responses usage in other event ignored", Responses, true,
			sse("event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"response\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":2}}}"),
			Usage{}, false},
		{"responses event name wins over data type", Responses, true,
			sse("event: response.output_text.delta\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":2}}}"),
			Usage{}, false},
		{"responses top-level usage ignored", Responses, true,
			sse("event: response.completed\ndata: {\"type\":\"response.completed\",\"usage\":{\"input_tokens\":4,\"output_tokens\":2}}"),
			Usage{}, false},

		// Anthropic streams.
		{"anthropic delta null input keeps start", Messages, true,
			sse("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"c\",\"usage\":{\"input_tokens\":30,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}",
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":null,\"cache_read_input_tokens\":0,\"output_tokens\":20}}"),
			Usage{InputTokens: 30, CachedInputTokens: 5, OutputTokens: 20}, true},
		{"anthropic cumulative deltas", Messages, true,
			sse("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}",
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":20}}",
				"event: ping\ndata: {\"type\": \"ping\"}",
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":45}}"),
			Usage{InputTokens: 30, OutputTokens: 45}, true},
		{"anthropic delta without output keeps start", Messages, true,
			sse("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"output_tokens\":2}}}",
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"cache_creation_input_tokens\":8}}"),
			Usage{InputTokens: 30, CacheWriteTokens: 8, OutputTokens: 2}, true},
		{"anthropic bad delta ignored", Messages, true,
			sse("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}",
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":20}}",
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-5}}",
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":2e12}}"),
			Usage{InputTokens: 30, OutputTokens: 20}, true},
		{"anthropic types from data", Messages, true,
			sse(`data: {"type":"message_start","message":{"usage":{"input_tokens":30,"output_tokens":1}}}`,
				`data: {"type":"message_delta","usage":{"output_tokens":9}}`),
			Usage{InputTokens: 30, OutputTokens: 9}, true},
		{"anthropic error from data type", Messages, true,
			sse(`data: {"type":"message_start","message":{"usage":{"input_tokens":30,"output_tokens":1}}}`,
				`data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}`,
				`data: {"type":"message_delta","usage":{"output_tokens":9}}`),
			Usage{InputTokens: 30, OutputTokens: 1}, true},
		{"anthropic usage in other events ignored", Messages, true,
			sse("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"usage\":{\"output_tokens\":9}}",
				"event: message_stop\ndata: {\"type\":\"message_stop\",\"usage\":{\"output_tokens\":9}}"),
			Usage{}, false},
		{"anthropic start without input ignored", Messages, true,
			sse("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"output_tokens\":1}}}"),
			Usage{}, false},
		{"anthropic empty delta ignored", Messages, true,
			sse("event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"server_tool_use\":null}}"),
			Usage{}, false},
		{"anthropic delta alone", Messages, true,
			sse("event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}"),
			Usage{OutputTokens: 9}, true},
		{"anthropic delta before start", Messages, true,
			sse("event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}",
				"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}"),
			Usage{InputTokens: 30, OutputTokens: 9}, true},

		// Non-streamed bodies.
		{"json escaped key", ChatCompletions, false, `{"\u0075sage":` + chatUsage + `}`, Usage{InputTokens: 10, OutputTokens: 3}, true},
		{"json trailing garbage", ChatCompletions, false, `{"usage":` + chatUsage + `} x`, Usage{}, false},
		{"json truncated", ChatCompletions, false, `{"usage":` + chatUsage, Usage{}, false},
		{"json error body", ChatCompletions, false, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, Usage{}, false},
		{"json empty", Embeddings, false, ``, Usage{}, false},
		{"json anthropic null output", Messages, false, `{"usage":{"input_tokens":3,"output_tokens":null}}`, Usage{InputTokens: 3}, true},
		{"json anthropic negative cache", Messages, false, `{"usage":{"input_tokens":3,"cache_read_input_tokens":-1,"output_tokens":2}}`, Usage{}, false},
		{"json responses needs input names", Responses, false, `{"usage":` + chatUsage + `}`, Usage{}, false},
		{"json chat needs prompt tokens", ChatCompletions, false, `{"usage":{"completion_tokens":3}}`, Usage{}, false},
		{"json chat empty usage", ChatCompletions, false, `{"usage":{}}`, Usage{}, false},
		{"json embeddings", Embeddings, false, `{"usage":{"prompt_tokens":8,"total_tokens":8}}`, Usage{InputTokens: 8}, true},
		{"json anthropic needs input", Messages, false, `{"usage":{"output_tokens":2}}`, Usage{}, false},
		{"models has no usage", Models, false, `{"usage":` + chatUsage + `}`, Usage{}, false},
		{"unknown endpoint", EndpointUnknown, true, sse(chunk(chatUsage)), Usage{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for name, chunks := range chunkings([]byte(tc.body)) {
				got, seen := runUsage(tc.endpoint, tc.streaming, chunks...).Usage()
				require.Equal(t, tc.seen, seen, name)
				require.Equal(t, tc.want, got, name)
			}
		})
	}
}

func TestUsageParserOversizeJSON(t *testing.T) {
	pad := bytes.Repeat([]byte("x"), 1<<20)
	u := NewUsageParser(ChatCompletions, false)
	u.Feed([]byte(`{"model":"m","pad":"`))
	for range MaxUsageBodySize >> 20 {
		u.Feed(pad)
	}
	u.Feed([]byte(`","usage":{"prompt_tokens":1,"completion_tokens":1}}`))
	require.Nil(t, u.body, "buffer released")
	u.Finish()
	_, seen := u.Usage()
	require.False(t, seen)
	require.Empty(t, u.Model())

	// Just under the cap is read.
	body := make([]byte, 0, MaxUsageBodySize)
	body = append(body, `{"usage":{"prompt_tokens":1,"completion_tokens":1},"pad":"`...)
	body = append(body, bytes.Repeat([]byte("x"), MaxUsageBodySize-len(body)-2)...)
	body = append(body, `"}`...)
	require.Len(t, body, MaxUsageBodySize)
	got, seen := runUsage(ChatCompletions, false, splitEvery(body, 64<<10)...).Usage()
	require.True(t, seen)
	require.Equal(t, Usage{InputTokens: 1, OutputTokens: 1}, got)
}

func TestUsageParserModel(t *testing.T) {
	long := strings.Repeat("m", maxModelLen+1)
	tests := []struct {
		name     string
		endpoint Endpoint
		body     string
		want     string
	}{
		{"escaped", ChatCompletions, "data: {\"model\":\"gpt\\u002d4o\"}\n\n", "gpt-4o"},
		{"first non-empty wins", ChatCompletions, "data: {\"model\":\"\"}\n\ndata: {\"model\":\"a\"}\n\ndata: {\"model\":\"b\"}\n\n", "a"},
		{"not a string", ChatCompletions, "data: {\"model\":5}\n\ndata: {\"model\":\"a\"}\n\n", "a"},
		{"too long", ChatCompletions, "data: {\"model\":\"" + long + "\"}\n\n", ""},
		{"nested ignored for chat", ChatCompletions, "data: {\"x\":{\"model\":\"a\"}}\n\n", ""},
		{"tries are bounded", ChatCompletions, strings.Repeat("data: {\"model\":null}\n\n", maxModelTries) + "data: {\"model\":\"a\"}\n\n", ""},
		{"anthropic message", Messages, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\"}}\n\n", "claude"},
		{"responses response", Responses, "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"model\":\"gpt-4.1\",\"usage\":null}}\n\n", "gpt-4.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, runUsage(tc.endpoint, true, []byte(tc.body)).Model())
		})
	}
}

func TestUsageParserLifecycle(t *testing.T) {
	body := readFixture(t, "anthropic_stream.sse")
	mid := bytes.Index(body, []byte("event: content_block_delta"))
	u := NewUsageParser(Messages, true)
	_, seen := u.Usage()
	require.False(t, seen)

	// Usage can be read mid-stream; the parser keeps no chunk.
	buf := bytes.Clone(body[:mid])
	u.Feed(buf)
	clear(buf)
	got, seen := u.Usage()
	require.True(t, seen)
	require.Equal(t, int64(1), got.OutputTokens)
	require.Equal(t, "claude-sonnet-4-20250514", u.Model())

	u.Feed(body[mid:])
	u.Finish()
	u.Finish()
	u.Feed([]byte("event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5000}}\n\n"))
	u.Finish()
	got, _ = u.Usage()
	require.Equal(t, int64(87), got.OutputTokens, "feeds after Finish are ignored")

	// A non-streamed body is only read at Finish.
	j := NewUsageParser(ChatCompletions, false)
	j.Feed(readFixture(t, "openai_chat.json"))
	_, seen = j.Usage()
	require.False(t, seen)
	require.Empty(t, j.Model())
	j.Finish()
	_, seen = j.Usage()
	require.True(t, seen)
}

// TestUsageParserSteadyStateAllocs checks the per-chunk path: once the model
// is known, content chunks are neither decoded nor copied.
func TestUsageParserSteadyStateAllocs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint Endpoint
		first    string
		chunk    string
	}{
		{"openai", ChatCompletions,
			`data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}` + "\n\n",
			`data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}],"usage":null}` + "\n\n"},
		{"anthropic", Messages,
			"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" token\"}}\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := NewUsageParser(tc.endpoint, true)
			u.Feed([]byte(tc.first))
			require.NotEmpty(t, u.Model())
			chunk := []byte(tc.chunk)
			require.Zero(t, testing.AllocsPerRun(100, func() { u.Feed(chunk) }))
			half := len(chunk) / 2
			require.Zero(t, testing.AllocsPerRun(100, func() { u.Feed(chunk[:half]); u.Feed(chunk[half:]) }))
		})
	}
}

// TestUsageParserEndedOnlyAtProviderEnd cuts every stream fixture at every
// byte: Ended is false until the provider-defined end event is in the body
// (its marker fully read), and true from there on, for each dialect. A
// stream without its end (the Anthropic error fixture) never ends.
func TestUsageParserEndedOnlyAtProviderEnd(t *testing.T) {
	tests := []struct {
		file     string
		endpoint Endpoint
		marker   string // "" when the stream has no end event
	}{
		{"openai_chat_stream.sse", ChatCompletions, "data: [DONE]"},
		{"openai_chat_stream_usage.sse", ChatCompletions, "data: [DONE]"},
		{"azure_chat_stream_usage.sse", ChatCompletions, "data: [DONE]"},
		{"openai_completions_stream_usage.sse", Completions, "data: [DONE]"},
		{"openai_responses_stream.sse", Responses, "event: response.completed"},
		{"anthropic_stream.sse", Messages, "event: message_stop"},
		{"anthropic_stream_tools.sse", Messages, "event: message_stop"},
		{"anthropic_stream_error.sse", Messages, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := readFixture(t, tc.file)
			at := len(body) + 1 // never
			if tc.marker != "" {
				i := bytes.Index(body, []byte(tc.marker))
				require.GreaterOrEqual(t, i, 0, "fixture lacks its end marker")
				// The end event's data line must be complete (Finish reads an
				// unterminated last line as complete).
				j := bytes.IndexByte(body[i+len(tc.marker):], '\n')
				if tc.marker[0] == 'e' { // "event: ..." then its data line
					j += bytes.IndexByte(body[i+len(tc.marker)+j+1:], '\n') + 1
				}
				at = i + len(tc.marker) + j
			}
			for n := 0; n <= len(body); n++ {
				u := runUsage(tc.endpoint, true, body[:n])
				require.Equal(t, n >= at, u.Ended(), "cut at byte %d of %d (end at %d)", n, len(body), at)
			}
			// Fed in random chunks, the whole stream ends as it should.
			for name, chunks := range chunkings(body) {
				require.Equal(t, tc.marker != "", runUsage(tc.endpoint, true, chunks...).Ended(), name)
			}
		})
	}
}

// TestUsageParserEndedJSON: a non-streamed body ends when it is one complete
// JSON object; a body cut short does not, and yields no usage.
func TestUsageParserEndedJSON(t *testing.T) {
	for _, tc := range []struct {
		file     string
		endpoint Endpoint
	}{
		{"openai_chat.json", ChatCompletions},
		{"openai_responses.json", Responses},
		{"anthropic_messages.json", Messages},
		{"openai_embeddings.json", Embeddings},
	} {
		body := readFixture(t, tc.file)
		body = bytes.TrimRight(body, "\n")
		require.True(t, runUsage(tc.endpoint, false, body).Ended(), tc.file)
		for n := 0; n < len(body); n++ {
			u := runUsage(tc.endpoint, false, body[:n])
			_, seen := u.Usage()
			require.False(t, u.Ended(), "%s cut at %d", tc.file, n)
			require.False(t, seen, "%s cut at %d", tc.file, n)
		}
	}
}

// TestUsageParserUnnamedEndEvents: compatible servers may omit the SSE event
// field; the JSON type then names the end, and text that merely mentions an
// end event's name does not end the stream.
func TestUsageParserUnnamedEndEvents(t *testing.T) {
	decoy := `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"message_stop \"message_stop\""}}` + "\n\n"
	u := runUsage(Messages, true, []byte(decoy))
	require.False(t, u.Ended())
	u = runUsage(Messages, true, []byte(decoy+`data: {"type":"message_stop"}`+"\n\n"))
	require.True(t, u.Ended())

	rdecoy := `data: {"type":"response.output_text.delta","delta":"\"response.completed\""}` + "\n\n"
	u = runUsage(Responses, true, []byte(rdecoy))
	require.False(t, u.Ended())
	u = runUsage(Responses, true, []byte(rdecoy+`data: {"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":4}}}`+"\n\n"))
	require.True(t, u.Ended())
	got, seen := u.Usage()
	require.True(t, seen)
	require.Equal(t, Usage{InputTokens: 3, OutputTokens: 4}, got)
}

// TestAnthropicOneHourCacheWrites: the one-hour part of a cache write (priced at twice the
// input price, not the five-minute 1.25) is read from cache_creation, in a message and in a
// stream's message_start and message_delta.
func TestAnthropicOneHourCacheWrites(t *testing.T) {
	usage := `{"input_tokens":10,"cache_creation_input_tokens":3000,"cache_read_input_tokens":0,` +
		`"cache_creation":{"ephemeral_5m_input_tokens":2000,"ephemeral_1h_input_tokens":1000},"output_tokens":%d}`
	msg := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":` + fmt.Sprintf(usage, 5) + `}`
	u := runUsage(Messages, false, []byte(msg))
	got, seen := u.Usage()
	require.True(t, seen)
	require.Equal(t, Usage{InputTokens: 10, OutputTokens: 5, CacheWriteTokens: 3000, CacheWrite1hTokens: 1000}, got)

	stream := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":" + strings.Replace(msg, fmt.Sprintf(usage, 5), fmt.Sprintf(usage, 1), 1) + "}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":" + fmt.Sprintf(usage, 40) + "}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	u = runUsage(Messages, true, splitEvery([]byte(stream), 7)...)
	got, seen = u.Usage()
	require.True(t, seen)
	require.Equal(t, Usage{InputTokens: 10, OutputTokens: 40, CacheWriteTokens: 3000, CacheWrite1hTokens: 1000}, got)
}
