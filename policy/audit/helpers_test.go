package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// Fixed test keys. They are test values only.
var (
	chainKey = []byte("test-chain-key-0123456789abcdef!")
	ckPriv   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	ckPub    = ckPriv.Public().(ed25519.PublicKey)
	t0       = time.Date(2026, 8, 17, 10, 15, 0, 123456789, time.UTC)
)

// fixedClock returns a clock that starts at t0 and advances 1 ms per call.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

// zeroRand is a deterministic chain id source.
type zeroRand struct{ b byte }

func (z zeroRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = z.b
	}
	return len(p), nil
}

func newEmitter(t testing.TB, cfg audit.EmitterConfig, sinks ...audit.Sink) *audit.Emitter {
	t.Helper()
	if cfg.ChainKey == nil {
		cfg.ChainKey = chainKey
	}
	e, err := audit.NewEmitter(cfg, sinks...)
	require.NoError(t, err)
	return e
}

func closeEmitter(t testing.TB, e *audit.Emitter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.Close(ctx))
}

// sampleEvent is a successful streamed chat completion.
func sampleEvent(i int) audit.Event {
	return audit.Event{
		Time:           t0.Add(time.Duration(i) * time.Second),
		RequestID:      "req-" + string(rune('a'+i%26)),
		KeyID:          "key_3Fq9",
		Team:           "search",
		Endpoint:       "chat_completions",
		Provider:       "openai",
		ModelRequested: "gpt-4o-mini",
		ModelServed:    "gpt-4o-mini-2024-07-18",
		Stream:         true,
		Status:         200,
		Decision:       audit.DecisionAllow,
		Reason:         "ok",
		Complete:       true,
		Tokens:         audit.Tokens{Input: 812, Output: 164, CachedInput: 512},
		CostUSDMicros:  221,
		Latency:        audit.Latency{Total: 1840, FirstByte: 310, Upstream: 1822},
		Limits:         []string{"key_usd_day", "team_tokens_minute"},
		BytesIn:        3120,
		BytesOut:       9211,
		ClientAddr:     "203.0.113.0/24",
	}
}

// writeSet emits n events through a FileSink at dir/audit.log with the given
// rotation size and returns the files, oldest first.
func writeSet(t testing.TB, dir string, n int, maxBytes int64) []string {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	fs, err := audit.NewFileSink(audit.FileSinkConfig{
		Path: path, MaxBytes: maxBytes, Fsync: audit.FsyncNever, CheckpointKey: ckPriv, Now: fixedClock(),
	})
	require.NoError(t, err)
	e := newEmitter(t, audit.EmitterConfig{Now: fixedClock(), Rand: zeroRand{1}, BatchSize: 3}, fs)
	for i := range n {
		ev := sampleEvent(i)
		e.Emit(&ev)
	}
	closeEmitter(t, e)
	require.Equal(t, audit.Stats{Emitted: uint64(n), Written: uint64(n)}, e.Stats())
	return rotatedFiles(t, path)
}

// rotatedFiles lists path.1, path.2, ... then path.
func rotatedFiles(t testing.TB, path string) []string {
	t.Helper()
	var out []string
	for i := 1; ; i++ {
		p := path + "." + itoa(i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		out = append(out, p)
	}
	return append(out, path)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// readLines returns the lines of a file, each with its newline.
func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, bytes.Join(lines, nil), 0o600))
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
