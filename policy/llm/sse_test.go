package llm

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sseEvent is a dispatched event, copied out of the parser's buffers.
type sseEvent struct{ Event, Data string }

// feedSSE runs a fresh parser over chunks, then Flush, and returns the
// events it emitted.
func feedSSE(chunks ...[]byte) ([]sseEvent, *SSEParser) {
	var p SSEParser
	var got []sseEvent
	emit := func(event, data []byte) { got = append(got, sseEvent{string(event), string(data)}) }
	for _, c := range chunks {
		p.Feed(c, emit)
	}
	p.Flush(emit)
	return got, &p
}

// refSSE is a direct, non-incremental reading of the WHATWG event stream
// rules over a whole stream (plus the Flush rule for a last event without
// a blank line), used as the oracle for SSEParser.
func refSSE(stream []byte) []sseEvent {
	var lines []string
	s := string(stream)
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	if len(lines) > 0 {
		lines[0] = strings.TrimPrefix(lines[0], "\uFEFF")
	}
	var out []sseEvent
	var data []string
	event, has := "", false
	dispatch := func() {
		if has {
			out = append(out, sseEvent{event, strings.Join(data, "\n")})
		}
		data, event, has = nil, "", false
	}
	for _, l := range lines {
		if l == "" {
			dispatch()
			continue
		}
		if l[0] == ':' {
			continue
		}
		name, value, found := strings.Cut(l, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch name {
		case "data":
			data, has = append(data, value), true
		case "event":
			event = value
		}
	}
	dispatch()
	return out
}

func TestSSEParser(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{"one event", "data: hello\n\n", []sseEvent{{"", "hello"}}},
		{"many events one chunk", "data: a\n\ndata: b\n\nevent: x\ndata: c\n\n", []sseEvent{{"", "a"}, {"", "b"}, {"x", "c"}}},
		{"crlf", "event: e\r\ndata: a\r\n\r\ndata: b\r\n\r\n", []sseEvent{{"e", "a"}, {"", "b"}}},
		{"bare cr", "event: e\rdata: a\r\rdata: b\r\r", []sseEvent{{"e", "a"}, {"", "b"}}},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []sseEvent{{"", "a\nb\nc"}}},
		{"cr then lf is one ending", "data: a\r\n\ndata: b\n\n", []sseEvent{{"", "a"}, {"", "b"}}},
		{"multi-line data", "data: {\"a\":\ndata: 1}\n\n", []sseEvent{{"", "{\"a\":\n1}"}}},
		{"no space after colon", "data:x\n\n", []sseEvent{{"", "x"}}},
		{"only one space removed", "data:  x \n\n", []sseEvent{{"", " x "}}},
		{"empty data line", "data\n\n", []sseEvent{{"", ""}}},
		{"empty data value", "data:\n\n", []sseEvent{{"", ""}}},
		{"two empty data lines", "data\ndata\n\n", []sseEvent{{"", "\n"}}},
		{"colon in value", "data: a: b\n\n", []sseEvent{{"", "a: b"}}},
		{"comments", ": keep-alive\n\n: OPENROUTER PROCESSING\ndata: a\n: mid\n\n", []sseEvent{{"", "a"}}},
		{"ignored fields", "id: 7\nretry: 100\nfoo: bar\ndatum: x\nDATA: y\ndata: a\n\n", []sseEvent{{"", "a"}}},
		{"event without data not dispatched", "event: ping\n\ndata: a\n\n", []sseEvent{{"", "a"}}},
		{"event type resets", "event: x\ndata: a\n\ndata: b\n\n", []sseEvent{{"x", "a"}, {"", "b"}}},
		{"last event type wins", "event: x\nevent: y\ndata: a\n\n", []sseEvent{{"y", "a"}}},
		{"event with empty value", "event:\ndata: a\n\n", []sseEvent{{"", "a"}}},
		{"bom stripped", "\uFEFFdata: a\n\n", []sseEvent{{"", "a"}}},
		{"bom only on first line", "data: a\n\n\uFEFFdata: b\n\n", []sseEvent{{"", "a"}}},
		{"no trailing blank line", "data: a\n\ndata: b\n", []sseEvent{{"", "a"}, {"", "b"}}},
		{"unterminated last line", "data: a\n\nevent: e\ndata: b", []sseEvent{{"", "a"}, {"e", "b"}}},
		{"unterminated without data", "data: a\n\nevent: e", []sseEvent{{"", "a"}}},
		{"blank lines only", "\n\n\r\n\r", nil},
		{"empty", "", nil},
		{"openai done", "data: {\"x\":1}\n\ndata: [DONE]\n\n", []sseEvent{{"", `{"x":1}`}, {"", "[DONE]"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, p := feedSSE([]byte(tc.in))
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.want, refSSE([]byte(tc.in)), "oracle")
			require.Zero(t, p.Dropped())
		})
	}
}

// sseSamples returns the SSE fixtures plus a stream that exercises every
// kind of line ending and field.
func sseSamples(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{
		"tricky": []byte("\uFEFF: hi\r\nevent: a\rdata: 1\r\ndata:2\n\r\n" +
			"id: 9\nevent: b\ndata\ndata:  x\r\rretry: 5\n: c\ndata: {\"usage\":null}\n\n" +
			"event: ping\n\n\n\ndata: end"),
	}
	files, err := filepath.Glob("testdata/usage/*.sse")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[filepath.Base(f)] = b
		out[filepath.Base(f)+"/crlf"] = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
		out[filepath.Base(f)+"/cr"] = bytes.ReplaceAll(b, []byte("\n"), []byte("\r"))
	}
	return out
}

func TestSSEParserSplitAnywhere(t *testing.T) {
	for name, stream := range sseSamples(t) {
		t.Run(name, func(t *testing.T) {
			want := refSSE(stream)
			require.NotEmpty(t, want)
			whole, _ := feedSSE(stream)
			require.Equal(t, want, whole)
			for i := 0; i <= len(stream); i++ {
				got, _ := feedSSE(stream[:i], stream[i:])
				require.Equal(t, want, got, "split at %d", i)
			}
			bytewise := make([][]byte, len(stream))
			for i := range stream {
				bytewise[i] = stream[i : i+1]
			}
			got, _ := feedSSE(bytewise...)
			require.Equal(t, want, got, "one byte per chunk")
			r := rand.New(rand.NewPCG(uint64(len(stream)), 7))
			for range 50 {
				got, _ := feedSSE(randomChunks(r, stream, 40)...)
				require.Equal(t, want, got, "random chunks")
			}
		})
	}
}

// TestSSEParserSplitPairs splits a short stream at every pair of positions,
// so a "\r" ending one chunk can meet an empty chunk before its "\n".
func TestSSEParserSplitPairs(t *testing.T) {
	stream := []byte("event: a\r\ndata: 1\r\r\ndata: 2\r\n\r\n:c\rdata:3\r")
	want := refSSE(stream)
	require.Equal(t, []sseEvent{{"a", "1"}, {"", "2"}, {"", "3"}}, want)
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j++ {
			got, _ := feedSSE(stream[:i], stream[i:j], nil, stream[j:])
			require.Equal(t, want, got, "split at %d and %d", i, j)
		}
	}
}

// randomChunks cuts b into chunks of 0 to maxLen bytes.
func randomChunks(r *rand.Rand, b []byte, maxLen int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(r.IntN(maxLen+1), len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// TestSSEParserDoesNotRetainChunk overwrites each chunk after Feed, as an
// ext_proc loop reusing its receive buffer would.
func TestSSEParserDoesNotRetainChunk(t *testing.T) {
	stream := []byte("event: message_delta\ndata: {\"usage\":{\"output_tokens\":87}}\n\ndata: second\n\n")
	want := refSSE(stream)
	for i := 0; i <= len(stream); i++ {
		var p SSEParser
		var got []sseEvent
		emit := func(event, data []byte) { got = append(got, sseEvent{string(event), string(data)}) }
		for _, part := range [][]byte{stream[:i], stream[i:]} {
			buf := bytes.Clone(part)
			p.Feed(buf, emit)
			for k := range buf {
				buf[k] = 'X'
			}
		}
		p.Flush(emit)
		require.Equal(t, want, got, "split at %d", i)
	}
}

func TestSSEParserOversizeEvent(t *testing.T) {
	big := bytes.Repeat([]byte("A"), MaxSSEEventSize)
	atCap := append([]byte("data:"), big[:MaxSSEEventSize-len("data:")]...)
	tests := []struct {
		name   string
		stream []byte
		want   []sseEvent
		drops  int
	}{
		{
			name:   "one long line",
			stream: concat("data: a\n\ndata: ", big, "\n\ndata: b\n\n"),
			want:   []sseEvent{{"", "a"}, {"", "b"}},
			drops:  1,
		},
		{
			name:   "many data lines",
			stream: concat("data: a\n\n", bytes.Repeat([]byte("data: 0123456789abcdef\n"), MaxSSEEventSize/20), "event: x\ndata: tail\n\ndata: b\n\n"),
			want:   []sseEvent{{"", "a"}, {"", "b"}},
			drops:  1,
		},
		{
			name:   "exactly at the cap",
			stream: concat("", atCap, "\n\ndata: b\n\n"),
			want:   []sseEvent{{"", string(atCap[len("data:"):])}, {"", "b"}},
		},
		{
			name:   "unterminated at end",
			stream: concat("data: a\n\ndata: ", big, ""),
			want:   []sseEvent{{"", "a"}},
			drops:  1,
		},
		{
			name:   "long comment counts too",
			stream: concat("data: a\n\n:", big, "\ndata: c\n\ndata: b\n\n"),
			want:   []sseEvent{{"", "a"}, {"", "b"}},
			drops:  1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{len(tc.stream), 1 << 20, 4093} {
				var chunks [][]byte
				for b := tc.stream; len(b) > 0; b = b[min(size, len(b)):] {
					chunks = append(chunks, b[:min(size, len(b))])
				}
				got, p := feedSSE(chunks...)
				require.Equal(t, len(tc.want), len(got), "chunk size %d", size)
				require.Equal(t, tc.want, got, "chunk size %d", size)
				require.Equal(t, tc.drops, p.Dropped(), "chunk size %d", size)
				require.LessOrEqual(t, cap(p.line), MaxSSEEventSize, "buffer bounded")
			}
		})
	}
}

func concat(prefix string, mid []byte, suffix string) []byte {
	out := make([]byte, 0, len(prefix)+len(mid)+len(suffix))
	out = append(out, prefix...)
	out = append(out, mid...)
	return append(out, suffix...)
}

func TestSSEParserReuseAfterFlush(t *testing.T) {
	var p SSEParser
	var got []sseEvent
	emit := func(event, data []byte) { got = append(got, sseEvent{string(event), string(data)}) }
	p.Feed([]byte("event: x\ndata: a\r"), emit)
	p.Flush(emit)
	// The pending "\r" belonged to the first stream: the next stream's
	// leading "\n" is an empty first line of its own, so the BOM on its
	// second line is not stripped and that line is an unknown field.
	p.Feed([]byte("\n\uFEFFdata: b\n\n"), emit)
	p.Flush(emit)
	require.Equal(t, []sseEvent{{"x", "a"}}, got)
	got = nil
	p.Feed([]byte("\uFEFFdata: c\n\n"), emit)
	require.Equal(t, []sseEvent{{"", "c"}}, got)
	p.Feed([]byte("data: d\n\n"), nil) // nil emit is allowed
}
