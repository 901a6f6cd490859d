package guard

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzSSERedactor feeds fixture streams (the dialect fixtures around a
// secret, and captured provider streams), optionally with random bytes
// spliced in, in random chunks. Invariants: no panic; the output is a
// stream of complete events whose data is JSON or [DONE]; held text stays
// bounded; and without junk, neither secret leaves and the client reads the
// redacted text.
func FuzzSSERedactor(f *testing.F) {
	type fixture struct {
		d      sseDialect
		stream []byte
		secret bool // the stream carries sseText
	}
	var fixtures []fixture
	for _, d := range sseDialects {
		fixtures = append(fixtures, fixture{d, join(d.build(tokens(sseText))), true})
	}
	captured := map[string]int{
		"openai_chat_stream_usage.sse": 0, "azure_chat_stream_usage.sse": 0,
		"openai_completions_stream_usage.sse": 1, "openai_responses_stream.sse": 2,
		"anthropic_stream.sse": 3, "anthropic_stream_tools.sse": 3, "anthropic_stream_error.sse": 3,
	}
	for name, di := range captured {
		b, err := os.ReadFile(filepath.Join("..", "llm", "testdata", "usage", name))
		require.NoError(f, err)
		fixtures = append(fixtures, fixture{sseDialects[di], b, false})
	}
	for i := range fixtures {
		f.Add(uint8(i), uint16(7), uint16(3), []byte(nil), uint16(0))
		f.Add(uint8(i), uint16(0), uint16(1), []byte(nil), uint16(0))
	}
	f.Add(uint8(0), uint16(40), uint16(9), []byte("\r\n: ping\r\n\r\n"), uint16(300))
	f.Add(uint8(2), uint16(13), uint16(5), []byte(`"}]}`+"\n\n"), uint16(900))
	f.Add(uint8(3), uint16(3), uint16(2), []byte(`\u0041KIA`), uint16(1200))
	f.Add(uint8(1), uint16(63), uint16(63), []byte("data: {\"choices\":[{\"index\":1,\"text\":\"x\"}]}\n\n"), uint16(0))
	e := allEngine(f)
	f.Fuzz(func(t *testing.T, which uint8, first, step uint16, junk []byte, at uint16) {
		fx := fixtures[int(which)%len(fixtures)]
		stream := fx.stream
		if len(junk) > 0 {
			pos := int(at) % (len(stream) + 1)
			stream = append(append(append([]byte(nil), stream[:pos]...), junk...), stream[pos:]...)
		}
		r, err := e.NewSSERedactor("redact", fx.d.ep)
		require.NoError(t, err)
		var out []byte
		size := int(first%64) + 1
		for i := 0; i < len(stream); {
			j := min(len(stream), i+size)
			out = append(out, r.Feed(stream[i:j])...)
			require.LessOrEqual(t, r.held, maxHeldBytes)
			i = j
			size = int((uint(size)*31+uint(step))%64) + 1
		}
		out = append(out, r.Finish()...)
		evs := parseSSE(t, out)
		r.Findings()
		if len(junk) > 0 {
			return
		}
		texts := fx.d.read(t, evs)
		if fx.secret {
			require.NotContains(t, string(out), sseEmail)
			require.NotContains(t, string(out), fakeAWS)
			require.Equal(t, sseWant, texts["0"])
		}
	})
}

// FuzzEventTree checks the event parser against encoding/json: it accepts
// exactly the valid documents (minus duplicate keys and deep nesting), and
// edits leave every byte outside them as it was.
func FuzzEventTree(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"c"}],"d":null}`, `{"a":1,"a":2}`, `{"A":1,"a":2}`, `[1,2`, `"x"`, ` {"\u0061":"\ud800"} `, `{"choices":[{"index":0,"delta":{}}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var tr jtree
		err := tr.parse(b)
		if err != nil {
			if !errors.Is(err, ErrDuplicateKey) && !errors.Is(err, ErrTooDeep) {
				require.False(t, json.Valid(b), "valid json refused: %v", err)
			}
			return
		}
		require.True(t, json.Valid(b), "invalid json accepted")
		// Replace every string with "" and insert a member into every
		// object: still valid JSON.
		var ed editor
		for i := range tr.nodes {
			switch tr.nodes[i].kind {
			case '"':
				ed.replaceQuoted(tr.nodes[i].start, tr.nodes[i].end, nil)
			case '{':
				tr.insertInto(&ed, int32(i), []byte(`"zz":0`))
			}
		}
		out := ed.apply(nil, b)
		require.True(t, json.Valid(out), "edited json invalid: %q", out)
	})
}
