package translate_test

import (
	"strings"
	"testing"

	"github.com/tollgate-ai/tollgate/policy/translate"
)

// request4KiB is a chat request of about 4 KiB: a system prompt, a few turns with a tool
// call and its result, and two tools.
var request4KiB = func() []byte {
	para := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 18) // ~810 bytes
	return []byte(`{"model":"claude-haiku","max_tokens":512,"temperature":0.3,"stream":true,"stream_options":{"include_usage":true},` +
		`"messages":[{"role":"system","content":"You are a helpful assistant. ` + para + `"},` +
		`{"role":"user","content":"` + para + `"},` +
		`{"role":"assistant","content":"Let me look that up.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"search","arguments":"{\"query\":\"fox\"}"}}]},` +
		`{"role":"tool","tool_call_id":"call_1","content":"` + para + `"},` +
		`{"role":"user","content":[{"type":"text","text":"` + para + `"}]}],` +
		`"tools":[{"type":"function","function":{"name":"search","description":"Search the web","parameters":{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}}},` +
		`{"type":"function","function":{"name":"now","description":"The time"}}],"tool_choice":"auto"}`)
}()

// BenchmarkChatToMessages4KiB translates a 4 KiB chat request.
func BenchmarkChatToMessages4KiB(b *testing.B) {
	if _, err := translate.ChatToMessages(request4KiB, translate.RequestOptions{MaxTokens: 1024}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(request4KiB)))
	for b.Loop() {
		if _, err := translate.ChatToMessages(request4KiB, translate.RequestOptions{MaxTokens: 1024}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatStreamChunk translates one streamed chunk holding one text delta event, as
// Anthropic sends them, in a stream already started.
func BenchmarkChatStreamChunk(b *testing.B) {
	start := []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	chunk := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" the quick brown fox\"}}\n\n")
	r := translate.NewChatResponse(200, true, translate.ResponseOptions{IncludeUsage: true, Created: 1})
	if _, err := r.Feed(start); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		out, err := r.Feed(chunk)
		if err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
}
