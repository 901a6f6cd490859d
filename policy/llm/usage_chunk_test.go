package llm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// filterAll runs a UsageChunkFilter over chunks and returns what it released.
func filterAll(t *testing.T, f *UsageChunkFilter, chunks [][]byte) []byte {
	t.Helper()
	var out []byte
	for _, c := range chunks {
		o, same := f.Feed(c)
		if same {
			require.Equal(t, c, o)
		}
		out = append(out, o...)
	}
	return append(out, f.Finish()...)
}

// TestUsageChunkFilterRemovesOnlyTheUsageChunk: the chunk include_usage adds is removed,
// every other byte passes in order, however the stream is cut (issue 15 item 1).
func TestUsageChunkFilterRemovesOnlyTheUsageChunk(t *testing.T) {
	for _, file := range []string{"openai_chat_stream_usage.sse", "azure_chat_stream_usage.sse", "openai_completions_stream_usage.sse"} {
		body := readFixture(t, file)
		for ending, b := range map[string][]byte{"lf": body, "crlf": bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))} {
			sep := []byte("\n\n")
			if ending == "crlf" {
				sep = []byte("\r\n\r\n")
			}
			var want []byte
			events := bytes.SplitAfter(b, sep)
			removed := 0
			for _, ev := range events {
				if bytes.Contains(ev, []byte(`"choices":[]`)) && bytes.Contains(ev, []byte(`"usage":{`)) {
					removed++
					continue
				}
				want = append(want, ev...)
			}
			require.Equal(t, 1, removed, file)
			for name, chunks := range chunkings(b) {
				var f UsageChunkFilter
				require.Equal(t, string(want), string(filterAll(t, &f, chunks)), "%s %s %s", file, ending, name)
				require.Equal(t, 1, f.Dropped())
			}
			for n := 0; n <= len(b); n++ {
				var f UsageChunkFilter
				require.Equal(t, string(want), string(filterAll(t, &f, [][]byte{b[:n], b[n:]})), "%s %s cut at %d", file, ending, n)
			}
		}
	}
}

// TestUsageChunkFilterPassesEverythingElse: streams without a usage-only chunk pass
// unchanged, and whole-event chunks pass without a copy.
func TestUsageChunkFilterPassesEverythingElse(t *testing.T) {
	body := readFixture(t, "openai_chat_stream.sse")
	var f UsageChunkFilter
	for _, ev := range bytes.SplitAfter(body, []byte("\n\n")) {
		out, same := f.Feed(ev)
		require.True(t, same)
		require.Equal(t, ev, out)
	}
	require.Empty(t, f.Finish())
	for _, ev := range []string{
		`data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`, // usage on a content chunk: kept
		`data: {"choices":[],"usage":null}`,          // no usage object
		`data: {"choices":["x"],"usage":{}}`,         // choices not empty
		`data: {"choices":[],"usage":{}} trailing`,   // not one JSON value
		`: comment with "choices":[] and "usage":{}`, // a comment
		`data: [DONE]`,
	} {
		var f UsageChunkFilter
		in := []byte(ev + "\n\n")
		out, same := f.Feed(in)
		require.True(t, same, ev)
		require.Equal(t, in, out)
	}
}

// TestUsageChunkFilterBoundsWhatItHolds: an event that never ends is released once it
// outgrows the hold limit, and at Finish.
func TestUsageChunkFilterBoundsWhatItHolds(t *testing.T) {
	f := UsageChunkFilter{holdLimit: 64}
	out, _ := f.Feed([]byte("data: " + strings.Repeat("a", 40)))
	require.Empty(t, out, "held: the event may still turn out to be the usage chunk")
	out, _ = f.Feed([]byte(strings.Repeat("b", 40)))
	require.Equal(t, "data: "+strings.Repeat("a", 40)+strings.Repeat("b", 40), string(out))
	out, _ = f.Feed([]byte("c"))
	require.Empty(t, out)
	require.Equal(t, "c", string(f.Finish()))

	var g UsageChunkFilter
	_, _ = g.Feed([]byte(`data: {"choices":[],"usage":{"prompt_tokens":1}}`))
	require.Empty(t, g.Finish(), "a usage chunk cut before its blank line is still removed")
}

func BenchmarkUsageChunkFilter(b *testing.B) {
	body := readFixture(b, "openai_chat_stream_usage.sse")
	events := bytes.SplitAfter(body, []byte("\n\n"))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var f UsageChunkFilter
		for _, ev := range events {
			_, _ = f.Feed(ev)
		}
		_ = f.Finish()
	}
}

// FuzzUsageChunkFilter: however a stream is cut, the filter releases the same bytes, and a
// stream without a usage-only event passes unchanged.
func FuzzUsageChunkFilter(f *testing.F) {
	f.Add(readFixture(f, "openai_chat_stream_usage.sse"), 100)
	f.Add([]byte("data: {\"choices\":[],\"usage\":{}}\r\n\r\ndata: x\r\r"), 3)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		var whole UsageChunkFilter
		want := filterAll(t, &whole, [][]byte{b})
		if cut < 0 {
			cut = -cut
		}
		cut %= len(b) + 1
		var split UsageChunkFilter
		got := filterAll(t, &split, [][]byte{b[:cut], b[cut:]})
		if !bytes.Equal(want, got) {
			t.Fatalf("cut at %d: %q != %q", cut, got, want)
		}
		if whole.Dropped() == 0 && !bytes.Equal(want, b) {
			t.Fatalf("nothing removed but output differs: %q", want)
		}
	})
}
