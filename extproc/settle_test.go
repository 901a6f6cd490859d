package extproc_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// TestAbortedStreamSettlesAtLeastTheReservation is the regression test for the review's
// high finding: a client that closed an Anthropic stream after message_start was charged
// message_start's usage (about one output token) instead of the reservation. For every
// dialect, a stream cut at every event boundary settles at least the reservation; only the
// stream that reached its provider-defined end is charged its reported usage.
func TestAbortedStreamSettlesAtLeastTheReservation(t *testing.T) {
	tests := []struct {
		fixture, path, body string
		extra               []string
	}{
		{"openai_chat_stream_usage.sse", "/v1/chat/completions",
			`{"model":"gpt-4o-mini","stream":true,"max_tokens":3000,"messages":[]}`, nil},
		{"openai_completions_stream_usage.sse", "/v1/completions",
			`{"model":"gpt-4o-mini","stream":true,"max_tokens":3000,"prompt":"hi"}`, nil},
		{"openai_responses_stream.sse", "/v1/responses",
			`{"model":"gpt-4o-mini","stream":true,"max_output_tokens":3000,"input":"hi"}`, nil},
		{"anthropic_stream.sse", "/v1/messages",
			`{"model":"claude-haiku","stream":true,"max_tokens":3000,"messages":[]}`, []string{"anthropic-version", "2023-06-01"}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "policy", "llm", "testdata", "usage", tc.fixture))
			require.NoError(t, err)
			events := splitEvents(raw)
			require.Greater(t, len(events), 3)
			h := serve(t, policytest.NewWithBudget(t, budget.NewMemoryLedger(), func(c *policy.Config) {
				c.Teams[0].Limits.USDPerDay = "100"
			}))
			for k := 0; k <= len(events); k++ {
				before := policytest.TeamUSDPerDay(t, h.fx.Snapshot, h.fx.Now).Used
				s, cancel := h.open(t)
				roundTrip(t, s, reqHeaders(false, append([]string{":path", tc.path, ":method", "POST",
					"authorization", "Bearer " + h.fx.Keys["valid"], "content-type", "application/json"}, tc.extra...)...))
				resp := roundTrip(t, s, reqBody(tc.body))
				require.NotNil(t, resp.GetRequestBody(), "forwarded")
				reserved := policytest.TeamUSDPerDay(t, h.fx.Snapshot, h.fx.Now).Reserved
				require.Positive(t, reserved)
				roundTrip(t, s, respHeaders("200", "content-type", "text/event-stream"))
				for i, ev := range events[:k] {
					roundTrip(t, s, respBody(ev, k == len(events) && i == k-1))
				}
				if k == len(events) {
					require.NoError(t, s.CloseSend())
					_, _ = s.Recv()
				} else {
					cancel() // the client went away after k events
				}
				h.waitIdle(t)
				after := policytest.TeamUSDPerDay(t, h.fx.Snapshot, h.fx.Now)
				require.Zero(t, after.Reserved)
				charged := after.Used - before
				line := h.logs.FilterMessage("request").All()
				rule := line[len(line)-1].ContextMap()["settle_rule"]
				if k < len(events) {
					require.GreaterOrEqual(t, charged, reserved, "cut after %d of %d events: charged %d < reserved %d (rule %v)",
						k, len(events), charged, reserved, rule)
					require.Contains(t, []any{policy.SettleIncomplete, policy.SettleFullReservation}, rule)
				} else {
					require.Equal(t, policy.SettleUsage, rule, "the whole stream is charged its usage")
					require.Less(t, charged, reserved, "the fixture's usage is below the reservation")
				}
			}
		})
	}
}

// splitEvents cuts an SSE body after each blank line.
func splitEvents(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\n\n"))
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i+2]))
		b = b[i+2:]
	}
	return out
}
