package audit_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// endings are one event per way a request can end, as the request path
// builds them.
var endings = []struct {
	name string
	ev   audit.Event
}{
	{"success", sampleEvent(0)},
	{"denial_401", audit.Event{
		RequestID: "req-401", Endpoint: "chat_completions", Status: 401,
		Decision: audit.DecisionDeny, Reason: "invalid_key", Complete: true,
		Latency: audit.Latency{Total: 2}, BytesIn: 512, BytesOut: 118, ClientAddr: "2001:db8:42::/48",
	}},
	{"upstream_error", audit.Event{
		RequestID: "req-502", KeyID: "key_3Fq9", Team: "search", Endpoint: "chat_completions",
		Provider: "anthropic", ModelRequested: "claude-sonnet-4", Status: 502,
		Decision: audit.DecisionError, Reason: "provider_unavailable", Complete: true,
		ReservedUSDMicros: 15000, SettleRule: "release",
		Latency: audit.Latency{Total: 30012, Upstream: 30005},
		Limits:  []string{"key_usd_day"}, BytesIn: 2048, BytesOut: 160,
	}},
	{"client_abort", audit.Event{
		RequestID: "req-abort", KeyID: "key_3Fq9", Team: "search", Endpoint: "chat_completions",
		Provider: "openai", ModelRequested: "gpt-4o", ModelServed: "gpt-4o-2024-08-06", Stream: true,
		Status: 200, Decision: audit.DecisionAllow, Reason: "client_closed", Complete: false,
		Tokens: audit.Tokens{Input: 1200, Output: 87}, CostUSDMicros: 3870, ReservedUSDMicros: 40000,
		SettleRule: "estimate",
		Latency:    audit.Latency{Total: 2300, FirstByte: 420, Upstream: 2290},
		Guardrails: []audit.GuardrailFinding{{Rule: "pii.email", Action: "redact", Count: 2}},
		BytesIn:    4096, BytesOut: 1403, ClientAddr: "198.51.100.0/24",
	}},
	{"timeout", audit.Event{
		RequestID: "req-504", KeyID: "key_9Zk2", Team: "ml", Endpoint: "responses",
		Provider: "openai", ModelRequested: "o3", Stream: false, Status: 504,
		Decision: audit.DecisionError, Reason: "upstream_timeout", Complete: false,
		ReservedUSDMicros: 250000, SettleRule: "release",
		Latency: audit.Latency{Total: 120000, Upstream: 120000},
		Limits:  []string{"key_usd_day", "team_usd_month"}, BytesIn: 900,
	}},
}

// TestGoldenEndings pins the exact bytes written for each ending, chain
// fields and checkpoint included (fixed clock, chain id and keys), so the
// schema and the chain serialization cannot drift unnoticed. Refresh with
// go test -run TestGoldenEndings -update.
func TestGoldenEndings(t *testing.T) {
	t.Parallel()
	for _, tc := range endings {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out syncBuffer
			s := audit.NewWriterSink(&out, ckPriv)
			audit.SetWriterSinkClock(s, fixedClock())
			e := newEmitter(t, audit.EmitterConfig{Now: fixedClock(), Rand: zeroRand{0}}, s)
			ev := tc.ev
			e.Emit(&ev)
			closeEmitter(t, e)
			got := out.Bytes()

			golden := filepath.Join("testdata", "events", tc.name+".jsonl")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))

			// The record round-trips into an Event, and the file verifies.
			lines := readLinesBytes(got)
			require.Len(t, lines, 2, "one event and one checkpoint")
			var back audit.Event
			require.NoError(t, json.Unmarshal(lines[0], &back))
			require.Equal(t, uint64(1), back.Seq)
			require.Len(t, back.MAC, 64)
			back.Seq, back.Prev, back.MAC = 0, "", ""
			wantEv := tc.ev
			wantEv.V = audit.SchemaVersion
			if wantEv.Time.IsZero() {
				wantEv.Time = t0.Add(time.Millisecond)
			}
			require.Equal(t, wantEv, back)

			p := filepath.Join(t.TempDir(), "a.log")
			require.NoError(t, os.WriteFile(p, got, 0o600))
			rep, err := audit.Verify([]string{p}, chainKey, ckPub)
			require.NoError(t, err)
			require.Equal(t, uint64(1), rep.Events)
		})
	}
}

func readLinesBytes(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

// TestEventJSONNames checks that every member name is snake_case and matches
// SCHEMA.md, so the documentation cannot fall behind the struct.
func TestEventJSONNames(t *testing.T) {
	t.Parallel()
	ev := sampleEvent(0)
	ev.Content = &audit.Content{PromptHMAC: "a", CompletionHMAC: "b", Sealed: "c"}
	ev.Guardrails = []audit.GuardrailFinding{{Rule: "r", Action: "block", Count: 1}}
	ev.ReservedUSDMicros, ev.SettleRule, ev.MAC = 1, "usage", "m"
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	schema, err := os.ReadFile("SCHEMA.md")
	require.NoError(t, err)
	for k := range m {
		require.Regexp(t, `^[a-z][a-z0-9_]*$`, k)
		require.True(t, strings.Contains(string(schema), "`"+k+"`"), "SCHEMA.md documents %s", k)
	}
	for _, k := range []string{"input", "output", "cached_input", "cache_write", "total", "first_byte", "upstream",
		"rule", "action", "count", "prompt_hmac", "completion_hmac", "sealed"} {
		require.Contains(t, string(b), `"`+k+`"`)
		require.True(t, strings.Contains(string(schema), "`"+k+"`"), "SCHEMA.md documents %s", k)
	}
}

func TestTruncateAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		v4, v6   int
		want     string
	}{
		{"v4 default", "203.0.113.77", 24, 48, "203.0.113.0/24"},
		{"v4 with port", "203.0.113.77:51234", 24, 48, "203.0.113.0/24"},
		{"v6 default", "2001:db8:1234:5678::1", 24, 48, "2001:db8:1234::/48"},
		{"v6 with port", "[2001:db8:1234:5678::1]:443", 24, 48, "2001:db8:1234::/48"},
		{"v6 zone dropped", "fe80::1%eth0", 24, 64, "fe80::/64"},
		{"v4-mapped is v4", "::ffff:198.51.100.9", 16, 48, "198.51.0.0/16"},
		{"full v4 kept", "203.0.113.77", 32, 48, "203.0.113.77"},
		{"bits clamped", "203.0.113.77", 40, 48, "203.0.113.77"},
		{"zero bits", "203.0.113.77", 0, 48, "0.0.0.0/0"},
		{"v4 dropped", "203.0.113.77", -1, 48, ""},
		{"v6 dropped", "2001:db8::1", 24, -1, ""},
		{"hostname never echoed", "evil.example.com:80", 24, 48, ""},
		{"garbage never echoed", "sk-live-abcdef", 24, 48, ""},
		{"empty", "", 24, 48, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, audit.TruncateAddr(tc.in, tc.v4, tc.v6))
		})
	}
}

func TestMillis(t *testing.T) {
	t.Parallel()
	require.Equal(t, int64(1500), audit.Millis(1500*time.Millisecond+999*time.Microsecond))
	require.Equal(t, int64(0), audit.Millis(-time.Second))
}
