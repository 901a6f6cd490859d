package policy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// failingLedger is a ledger that cannot answer.
type failingLedger struct{}

func (failingLedger) Reserve(context.Context, string, []budget.Item, time.Duration) (int, error) {
	return 0, fmt.Errorf("dial: %w", budget.ErrUnavailable)
}
func (failingLedger) Settle(context.Context, string, []budget.Item, []int64) error {
	return budget.ErrUnavailable
}
func (failingLedger) Balances(context.Context, []string) ([]budget.Balance, error) {
	return nil, budget.ErrUnavailable
}

func budgetFixture(t *testing.T, l budget.Ledger, mutate func(*policy.Config), opts ...policy.CompileOption) *policytest.Fixture {
	return policytest.NewWithBudget(t, l, mutate, opts...)
}

func route(t *testing.T, fx *policytest.Fixture, key, body string) (*policy.Admission, *policy.Forward) {
	t.Helper()
	a := admit(t, fx, key, "/v1/chat/completions")
	f, rep := fx.Snapshot.Route(a, []byte(body))
	require.Nil(t, rep)
	return a, f
}

func TestEstimateIsConservative(t *testing.T) {
	fx := budgetFixture(t, budget.NewMemoryLedger(), nil)
	body := `{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":"hello there"}]}`
	_, f := route(t, fx, "valid", body)
	in := int64(len(body)+2) / 3
	require.Equal(t, in, f.Estimate.InputTokens)
	require.Equal(t, int64(50), f.Estimate.OutputTokens)
	require.Equal(t, in*1+50*2, f.Estimate.CostMicros)

	// Without a cap the model default is reserved (and not injected unless configured).
	_, f = route(t, fx, "valid", `{"model":"gpt-4o-mini","messages":[]}`)
	require.Equal(t, int64(policy.DefaultMaxOutputTokensDefault), f.Estimate.OutputTokens)
	require.Nil(t, f.Body)
}

func TestInjectMaxTokens(t *testing.T) {
	fx := budgetFixture(t, budget.NewMemoryLedger(), func(c *policy.Config) {
		c.Budget.InjectMaxTokens = true
		c.Models[0].MaxOutputTokens = 256
	})
	_, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","messages":[]}`)
	require.Equal(t, `{"model":"gpt-4o-mini","messages":[],"max_completion_tokens":256}`, string(f.Body))
	require.Equal(t, int64(256), f.Estimate.OutputTokens)
}

func TestReserveDeniesWithHeadersAndSettles(t *testing.T) {
	l := budget.NewMemoryLedger()
	fx := budgetFixture(t, l, nil)
	ctx := context.Background()
	body := `{"model":"gpt-4o-mini","max_tokens":100,"messages":[]}` // about 218 micro-dollars reserved
	var holds []*policy.Hold
	for {
		a, f := route(t, fx, "valid", body)
		h, rep := fx.Snapshot.Reserve(ctx, a, f, fx.Now)
		if rep != nil {
			require.Equal(t, 429, rep.Status)
			require.Equal(t, policy.ReasonLimitExceeded, rep.Reason)
			require.Equal(t, &policy.TrippedLimit{Scope: "team", Kind: "usd_per_day"}, rep.Limit)
			require.Contains(t, string(rep.Body), "usd_per_day")
			hs := map[string]string{}
			for _, h := range rep.Headers {
				hs[h.Key] = string(h.Value)
			}
			require.Equal(t, "1000", hs["x-ratelimit-limit-usd"])
			require.NotEmpty(t, hs["retry-after"])
			require.NotEmpty(t, hs["x-ratelimit-remaining-usd"])
			break
		}
		require.NotNil(t, h)
		holds = append(holds, h)
		require.Less(t, len(holds), 10, "the budget must run out")
	}
	require.Len(t, holds, 4, "1000 micro-dollars fit four reservations of %d", holds[0].Estimate.CostMicros)

	// Settling to real usage releases the over-estimate.
	st, err := holds[0].Settle(ctx, llm.Usage{InputTokens: 10, OutputTokens: 5}, true, 200)
	require.NoError(t, err)
	require.Equal(t, policy.Settlement{Tokens: 15, CostMicros: 20, Rule: "usage"}, st)
	st, err = holds[1].Settle(ctx, llm.Usage{}, false, 200)
	require.NoError(t, err)
	require.Equal(t, "full_reservation", st.Rule)
	require.Equal(t, holds[1].Estimate.CostMicros, st.CostMicros)
	st, err = holds[2].Settle(ctx, llm.Usage{}, false, 500)
	require.NoError(t, err)
	require.Equal(t, policy.Settlement{Rule: "upstream_error"}, st)
	_, err = holds[3].Settle(ctx, llm.Usage{}, false, 200)
	require.NoError(t, err)

	rep, err := fx.Snapshot.UsageReport(ctx, fx.Now)
	require.NoError(t, err)
	var usd *policy.UsageEntry
	for i := range rep {
		if rep[i].Scope == "team" && rep[i].Limit == "usd_per_day" {
			usd = &rep[i]
		}
	}
	require.NotNil(t, usd)
	require.Equal(t, 20+2*holds[1].Estimate.CostMicros, usd.Used)
	require.Zero(t, usd.Reserved)
}

func TestLedgerOutageFailsClosedUnlessOptedOpen(t *testing.T) {
	ctx := context.Background()
	fx := budgetFixture(t, failingLedger{}, nil)
	a, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","messages":[]}`)
	h, rep := fx.Snapshot.Reserve(ctx, a, f, fx.Now)
	require.Nil(t, h)
	require.Equal(t, 503, rep.Status)
	require.Equal(t, policy.ReasonLedgerUnavailable, rep.Reason)

	// fail_open must cover every limit involved: usd_per_day alone is not enough.
	fx = budgetFixture(t, failingLedger{}, func(c *policy.Config) { c.Budget.FailOpen = []string{"usd_per_day"} })
	a, f = route(t, fx, "valid", `{"model":"gpt-4o-mini","messages":[]}`)
	_, rep = fx.Snapshot.Reserve(ctx, a, f, fx.Now)
	require.Equal(t, 503, rep.Status)

	fx = budgetFixture(t, failingLedger{}, func(c *policy.Config) {
		c.Budget.FailOpen = []string{"usd_per_day", "requests_per_minute"}
	})
	a, f = route(t, fx, "valid", `{"model":"gpt-4o-mini","messages":[]}`)
	h, rep = fx.Snapshot.Reserve(ctx, a, f, fx.Now)
	require.Nil(t, rep)
	require.True(t, h.FailedOpen)
	_, err := h.Settle(ctx, llm.Usage{InputTokens: 1}, true, 200)
	require.NoError(t, err, "a failed-open request has nothing to settle")
}

func TestNoLimitsNoLedgerCall(t *testing.T) {
	fx := policytest.New(t) // no limits, no ledger
	a, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","messages":[]}`)
	h, rep := fx.Snapshot.Reserve(context.Background(), a, f, fx.Now)
	require.Nil(t, h)
	require.Nil(t, rep)
}

func TestLimitsNeedPricesAndALedger(t *testing.T) {
	cfg := policytest.BaseConfig()
	cfg.Teams[0].Limits = policy.LimitsConfig{USDPerDay: "5"}
	cfg.Models[1].Upstream = "no-such-priced-model"
	cfg.ApplyDefaults()
	err := cfg.Validate()
	require.ErrorContains(t, err, "models[1].pricing")

	cfg = policytest.BaseConfig()
	cfg.Teams[0].Limits = policy.LimitsConfig{RequestsPerMinute: 5, USDPerDay: "1.0000001"}
	cfg.Budget.FailOpen = []string{"usd_per_year"}
	cfg.ApplyDefaults()
	err = cfg.Validate()
	require.ErrorContains(t, err, "teams[0].limits.usd_per_day")
	require.ErrorContains(t, err, "budget.fail_open[0]")

	cfg = policytest.BaseConfig()
	cfg.Teams[0].Limits = policy.LimitsConfig{RequestsPerMinute: 5}
	_, err = policy.Compile(cfg, "", policytest.Resolver(), time.Now())
	require.ErrorContains(t, err, "no ledger", "limits without a ledger are a config error, not a runtime outage")
}
