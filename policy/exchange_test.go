package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// exchangeStep is one thing the proxy tells an exchange.
type exchangeStep struct {
	headers  []string // request headers (with :method and :path)
	body     string   // the buffered request body
	status   int      // response headers: status and content type
	ctype    string
	chunks   []string // response chunks; the last one ends the stream unless abort
	abort    bool     // the client goes away after the chunks
	noEnd    bool     // the response headers carry end_of_stream (no body)
	released string   // what the client receives of the response body ("" when not checked)
}

// runExchange drives one exchange through its whole life with no protocol at all, the way
// extproc does, and returns it ended.
func runExchange(t *testing.T, fx *policytest.Fixture, st exchangeStep) (*policy.Exchange, *policy.Reply, string) {
	t.Helper()
	x := fx.Snapshot.NewExchange(context.Background(), policy.ExchangeOptions{Now: func() time.Time { return fx.Now }})
	m := map[string]string{}
	var names []string
	for i := 0; i+1 < len(st.headers); i += 2 {
		m[st.headers[i]] = st.headers[i+1]
		names = append(names, st.headers[i])
	}
	rep, err := x.RequestHeaders(policy.RequestHeaders{Method: m[":method"], Path: m[":path"], Names: names,
		Get: func(n string) string { return m[n] }, EndOfStream: st.body == ""})
	require.NoError(t, err)
	if rep != nil {
		require.NoError(t, x.End())
		return x, rep, ""
	}
	_, rep, err = x.RequestBody([]byte(st.body), true)
	require.NoError(t, err)
	if rep != nil {
		require.NoError(t, x.End())
		return x, rep, ""
	}
	if st.status == 0 {
		require.NoError(t, x.End())
		return x, nil, ""
	}
	rep, err = x.ResponseHeaders(st.status, st.ctype, st.noEnd)
	require.NoError(t, err)
	require.Nil(t, rep)
	var out strings.Builder
	for i, c := range st.chunks {
		eos := !st.abort && i == len(st.chunks)-1
		rel, replace, err := x.ResponseChunk([]byte(c), eos)
		require.NoError(t, err)
		if replace {
			out.Write(rel)
		} else {
			out.WriteString(c)
		}
		x.Observe([]byte(c), eos)
	}
	require.NoError(t, x.End())
	return x, nil, out.String()
}

// TestExchangeTable drives whole exchanges with no gRPC: what the client gets, and what the
// summary and the audit event say.
func TestExchangeTable(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), func(c *policy.Config) {
		policytest.Guarded(c)
		c.Teams[0].Limits.USDPerDay = "10"
	})
	chat := func(key string) []string {
		return []string{":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer " + key,
			"content-type", "application/json", "x-request-id", "req-1"}
	}
	usage := `data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7}}` + "\n\n"
	tests := []struct {
		name   string
		step   exchangeStep
		status int
		reason policy.Reason
		check  func(t *testing.T, s policy.Summary, out string)
	}{
		{"unknown key", exchangeStep{headers: chat("tgk_AAAAAAAAAAAA_" + strings.Repeat("b", 49)), body: `{}`}, 401, policy.ReasonInvalidKey,
			func(t *testing.T, s policy.Summary, _ string) { require.Equal(t, "deny", s.Decision) }},
		{"streamed and settled", exchangeStep{headers: chat(fx.Keys["valid"]), body: `{"model":"fast","stream":true,"max_tokens":20,"messages":[]}`,
			status: 200, ctype: "text/event-stream",
			chunks: []string{`data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\n", usage, "data: [DONE]\n\n"}},
			200, policy.ReasonOK,
			func(t *testing.T, s policy.Summary, out string) {
				require.Contains(t, out, `"content":"hi"`)
				require.NotContains(t, out, "prompt_tokens", "the usage chunk Tollgate asked for is not the client's")
				require.True(t, strings.HasSuffix(out, "data: [DONE]\n\n"))
				require.Equal(t, policy.SettleUsage, s.Settled.Rule)
				require.Equal(t, int64(12*1+7*2), s.Settled.CostMicros)
				require.True(t, s.HasHold)
				require.Equal(t, "allow", s.Decision)
			}},
		{"aborted before usage", exchangeStep{headers: chat(fx.Keys["valid"]), body: `{"model":"fast","stream":true,"max_tokens":20,"messages":[]}`,
			status: 200, ctype: "text/event-stream", abort: true,
			chunks: []string{`data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\n"}},
			200, policy.ReasonOK,
			func(t *testing.T, s policy.Summary, _ string) {
				require.Equal(t, policy.SettleFullReservation, s.Settled.Rule)
				require.Equal(t, s.Reserved, s.Settled.CostMicros)
				require.False(t, s.Complete)
			}},
		{"guarded JSON response redacted", exchangeStep{headers: chat(fx.Keys["valid"]), body: `{"model":"fast","messages":[]}`,
			status: 200, ctype: "application/json",
			chunks: []string{`{"choices":[{"index":0,"message":{"role":"assistant","content":"mail jane.doe@example.com"}}],`, `"usage":{"prompt_tokens":3,"completion_tokens":5}}`}},
			200, policy.ReasonOK,
			func(t *testing.T, s policy.Summary, out string) {
				require.NotContains(t, out, "jane.doe@example.com")
				require.Contains(t, out, "[EMAIL_1]")
				require.Equal(t, []policy.GuardEvidence{{Rule: "email", Action: "redact_response", Count: 1, Response: true}}, s.Evidence)
			}},
		{"upstream error", exchangeStep{headers: chat(fx.Keys["valid"]), body: `{"model":"fast","messages":[]}`,
			status: 503, ctype: "application/json", chunks: []string{`{"error":{}}`}},
			503, policy.ReasonOK,
			func(t *testing.T, s policy.Summary, _ string) {
				require.Equal(t, policy.SettleUpstreamError, s.Settled.Rule)
				require.Equal(t, "allow", s.Decision, "forwarded, whatever the upstream answered")
			}},
		{"blocked by a guardrail", exchangeStep{headers: chat(fx.Keys["valid"]), body: `{"model":"fast","messages":[{"role":"user","content":"AKIAIOSFODNN7EXAMPLE"}]}`},
			403, policy.ReasonGuardrailBlocked,
			func(t *testing.T, s policy.Summary, _ string) {
				require.Equal(t, []policy.GuardEvidence{{Rule: "aws-key", Action: "block", Count: 1}}, s.Evidence)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, rep, out := runExchange(t, fx, tc.step)
			s := x.Summary()
			require.Equal(t, tc.status, s.Status)
			require.Equal(t, tc.reason, s.Reason)
			if rep != nil {
				require.Equal(t, tc.status, rep.Status)
			}
			if tc.step.released != "" {
				require.Equal(t, tc.step.released, out)
			}
			e := x.AuditEvent(24, 48)
			require.Equal(t, s.Status, e.Status)
			require.Equal(t, string(s.Reason), e.Reason)
			require.Equal(t, s.Decision, string(e.Decision))
			require.Equal(t, s.Settled.CostMicros, e.CostUSDMicros)
			tc.check(t, s, out)
		})
	}
}

// TestExchangeLocalReplyAndProtocolFaults: a reply Envoy makes itself passes; messages out of
// order are protocol faults.
func TestExchangeLocalReplyAndProtocolFaults(t *testing.T) {
	fx := policytest.New(t)
	x := fx.Snapshot.NewExchange(context.Background(), policy.ExchangeOptions{})
	rep, err := x.ResponseHeaders(431, "text/plain", false)
	require.NoError(t, err)
	require.Nil(t, rep)
	_, replace, err := x.ResponseChunk([]byte("too large"), true)
	require.NoError(t, err)
	require.False(t, replace)
	require.NoError(t, x.End())
	require.Equal(t, policy.ReasonEnvoyLocalReply, x.Summary().Reason)

	x = fx.Snapshot.NewExchange(context.Background(), policy.ExchangeOptions{})
	_, _, err = x.RequestBody([]byte(`{}`), true)
	require.True(t, errors.Is(err, policy.ErrProtocol))
	_, _, err = x.ResponseChunk([]byte("x"), true)
	require.True(t, errors.Is(err, policy.ErrProtocol))

	x = fx.Snapshot.NewExchange(context.Background(), policy.ExchangeOptions{})
	require.NoError(t, x.End())
	require.Equal(t, policy.ReasonIncomplete, x.Summary().Reason, "ended before any decision")
	require.Equal(t, "error", x.Summary().Decision)
}
