package policy_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// planExchange runs a fallback request through an exchange up to its response headers.
func planExchange(t *testing.T, fx *policytest.Fixture, status int) *policy.Exchange {
	t.Helper()
	x := fx.Snapshot.NewExchange(context.Background(), policy.ExchangeOptions{Now: func() time.Time { return fx.Now }})
	h := hdrs("POST", "/v1/chat/completions", false, "authorization", "Bearer "+fx.Keys["valid"],
		"content-type", "application/json", "x-request-id", "req-fb-1")
	rep, err := x.RequestHeaders(h)
	require.NoError(t, err)
	require.Nil(t, rep)
	f, rep, err := x.RequestBody([]byte(fallbackBody), true)
	require.NoError(t, err)
	require.Nil(t, rep)
	require.NotNil(t, f.Plan)
	rep, err = x.ResponseHeaders(status, "application/json", false)
	require.NoError(t, err)
	require.Nil(t, rep)
	return x
}

// respond streams body to the exchange as the serving response, in two chunks.
func respond(t *testing.T, x *policy.Exchange, body string) {
	t.Helper()
	for i, c := range []string{body[:10], body[10:]} {
		_, _, err := x.ResponseChunk([]byte(c), i == 1)
		require.NoError(t, err)
		x.Observe([]byte(c), i == 1)
	}
}

// The serving response as the downstream filter sees it. Its usage (100/50) differs from what
// the serving attempt reports (11/7), so the tests tell which one was charged.
const servedBody = `{"id":"c","model":"my-deployment","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150}}`

// TestSettleAtServingAttempt: one reservation at the dearest price, settled to the serving
// attempt's own usage priced for its target; the failed attempt costs nothing; the audit event
// lists both attempts and names the serving provider.
func TestSettleAtServingAttempt(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), fallbackModel)
	x := planExchange(t, fx, 200)
	require.NoError(t, x.ObserveAttempts([]policy.AttemptReport{
		{N: 2, Cluster: "az_cluster", State: policy.AttemptAnswered, Status: 200},
		{N: 1, Cluster: "oai_cluster", State: policy.AttemptAnswered, Status: 429},
	}))
	require.NoError(t, x.ObserveAttempts([]policy.AttemptReport{
		{N: 1, Cluster: "oai_cluster", State: policy.AttemptAnswered, Status: 429},
		{N: 2, Cluster: "az_cluster", State: policy.AttemptComplete, Status: 200, UsageSeen: true, Ended: true, InputTokens: 11, OutputTokens: 7},
	}))
	respond(t, x, servedBody)
	require.NoError(t, x.End())

	u := llm.Usage{InputTokens: 11, OutputTokens: 7}
	s := x.Summary()
	require.Equal(t, policy.SettleUsage, s.Settled.Rule)
	require.Equal(t, priceAz.Cost(u), s.Settled.CostMicros, "the serving attempt's usage, priced for its target")
	require.Equal(t, int64(18), s.Settled.Tokens)
	require.Equal(t, "az", s.Provider)
	require.Equal(t, "azure-openai", s.ProviderType)
	require.Equal(t, "my-deployment", s.UpstreamModel)
	require.Equal(t, 2, s.Attempts)
	require.Equal(t, x.Hold().Estimate.CostMicros, priceAz.MaxCost(x.Hold().Estimate.InputTokens, x.Hold().Estimate.OutputTokens))

	e := x.AuditEvent(24, 48)
	require.Equal(t, []audit.Attempt{
		{N: 1, Provider: "oai", Model: "gpt-4o-mini", Status: 429, Outcome: policy.OutcomeFailed},
		{N: 2, Provider: "az", Model: "my-deployment", Status: 200, Outcome: policy.OutcomeServed},
	}, e.Attempts)
	require.Equal(t, "az", e.Provider)
	require.Equal(t, "my-deployment", e.ModelServed)
	require.Equal(t, audit.Tokens{Input: 11, Output: 7}, e.Tokens)
	require.Equal(t, priceAz.Cost(u), e.CostUSDMicros)
	raw, err := json.Marshal(e)
	require.NoError(t, err)
	for _, leak := range []string{"oai_cluster", "az_cluster", policytest.OpenAIKey, policytest.AzureKey, fx.Keys["valid"]} {
		require.NotContains(t, string(raw), leak)
	}
}

// TestAttemptOutcomes: every closed-set outcome, and the settlement when the last attempt got
// no answer (the client got Envoy's error: nothing is charged).
func TestAttemptOutcomes(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), fallbackModel)
	x := planExchange(t, fx, 503)
	require.NoError(t, x.ObserveAttempts([]policy.AttemptReport{
		{N: 1, Cluster: "oai_cluster", State: policy.AttemptComplete, Status: 503},
		{N: 2, Cluster: "az_cluster", State: policy.AttemptRefused},
	}))
	respond(t, x, `{"error":{"message":"gateway refused"}}`)
	require.NoError(t, x.End())
	e := x.AuditEvent(24, 48)
	require.Equal(t, []string{policy.OutcomeFailed, policy.OutcomeRefused}, outcomes(e))
	require.Equal(t, policy.SettleUpstreamError, e.SettleRule)
	require.Zero(t, e.CostUSDMicros)

	x = planExchange(t, fx, 200)
	require.NoError(t, x.ObserveAttempts([]policy.AttemptReport{
		{N: 1, Cluster: "oai_cluster", State: policy.AttemptSent},
		{N: 2, Cluster: "az_cluster", State: policy.AttemptAnswered, Status: 200},
	}))
	_, _, err := x.ResponseChunk([]byte(`{"id":"c","mod`), false) // then the stream breaks off
	require.NoError(t, err)
	x.Observe([]byte(`{"id":"c","mod`), false)
	require.NoError(t, x.End())
	e = x.AuditEvent(24, 48)
	require.Equal(t, []string{policy.OutcomeNoAnswer, policy.OutcomeCut}, outcomes(e))
	require.Equal(t, policy.SettleFullReservation, e.SettleRule, "a cut response is charged the whole reservation")
	require.Equal(t, e.ReservedUSDMicros, e.CostUSDMicros)
}

func outcomes(e *audit.Event) []string {
	var out []string
	for _, a := range e.Attempts {
		out = append(out, a.Outcome)
	}
	return out
}

// TestObserveAttemptsRefusesBadReports: a report that does not fit the plan is refused whole;
// the request is then charged from the downstream's own reading, at the dearest price.
func TestObserveAttemptsRefusesBadReports(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), fallbackModel)
	tests := []struct {
		name string
		r    []policy.AttemptReport
	}{
		{"attempt outside the plan", []policy.AttemptReport{{N: 4, Cluster: "vllm_cluster", State: policy.AttemptSent}}},
		{"attempt 0", []policy.AttemptReport{{N: 0, Cluster: "oai_cluster", State: policy.AttemptSent}}},
		{"another cluster", []policy.AttemptReport{{N: 2, Cluster: "oai_cluster", State: policy.AttemptSent}}},
		{"unknown state", []policy.AttemptReport{{N: 1, Cluster: "oai_cluster", State: "maybe"}}},
		{"answered without a status", []policy.AttemptReport{{N: 1, Cluster: "oai_cluster", State: policy.AttemptComplete}}},
		{"usage on an unanswered attempt", []policy.AttemptReport{{N: 1, Cluster: "oai_cluster", State: policy.AttemptSent, UsageSeen: true}}},
		{"negative tokens", []policy.AttemptReport{{N: 1, Cluster: "oai_cluster", State: policy.AttemptComplete, Status: 200, UsageSeen: true, InputTokens: -5}}},
		{"twice the same attempt", []policy.AttemptReport{{N: 1, Cluster: "oai_cluster", State: policy.AttemptSent}, {N: 1, Cluster: "oai_cluster", State: policy.AttemptSent}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := planExchange(t, fx, 200)
			require.ErrorIs(t, x.ObserveAttempts(tc.r), policy.ErrAttemptReport)
			// A later valid report does not undo the refusal.
			require.NoError(t, x.ObserveAttempts([]policy.AttemptReport{{N: 1, Cluster: "oai_cluster", State: policy.AttemptComplete, Status: 200,
				UsageSeen: true, Ended: true, InputTokens: 1, OutputTokens: 1}}))
			respond(t, x, servedBody)
			require.NoError(t, x.End())
			e := x.AuditEvent(24, 48)
			require.Empty(t, e.Attempts)
			require.Equal(t, priceAz.Cost(llm.Usage{InputTokens: 100, OutputTokens: 50}), e.CostUSDMicros)
		})
	}

	t.Run("attempts for a request without a plan", func(t *testing.T) {
		x := fx.Snapshot.NewExchange(context.Background(), policy.ExchangeOptions{Now: func() time.Time { return fx.Now }})
		require.ErrorIs(t, x.ObserveAttempts([]policy.AttemptReport{{N: 1, Cluster: "oai_cluster", State: policy.AttemptSent}}), policy.ErrAttemptReport)
	})
}
