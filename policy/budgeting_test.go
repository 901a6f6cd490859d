package policy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
	in := int64(len(body)) // one token per byte: the byte-level BPE bound
	require.Equal(t, in, f.Estimate.InputTokens)
	require.Equal(t, int64(50), f.Estimate.OutputTokens)
	require.Equal(t, in*1+50*2, f.Estimate.CostMicros)

	// Without a cap the model default is reserved, and written into the request (the default
	// budget.inject_max_tokens): the provider cannot produce more than was reserved.
	_, f = route(t, fx, "valid", `{"model":"gpt-4o-mini","messages":[]}`)
	require.Equal(t, int64(policy.DefaultMaxOutputTokensDefault), f.Estimate.OutputTokens)
	require.Equal(t, `{"model":"gpt-4o-mini","messages":[],"max_completion_tokens":4096}`, string(f.Body))
}

// TestInjectMaxTokens: a request that sets no output cap gets the reserved one written in by
// default. Without it the provider's own limit (16,384 tokens for gpt-4o, 100,000 for
// reasoning models) would bound the bill instead of the reservation, and concurrent requests
// could settle past a budget. Only an explicit inject_max_tokens: false turns it off.
func TestInjectMaxTokens(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name   string
		inject *bool
		want   string
	}{
		{"default", nil, `{"model":"gpt-4o-mini","messages":[],"max_completion_tokens":256}`},
		{"explicitly off", &off, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := budgetFixture(t, budget.NewMemoryLedger(), func(c *policy.Config) {
				c.Budget.InjectMaxTokens = tc.inject
				c.Models[0].MaxOutputTokens = 256
			})
			_, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","messages":[]}`)
			require.Equal(t, tc.want, string(f.Body))
			require.Equal(t, int64(256), f.Estimate.OutputTokens)
		})
	}
}

func TestReserveDeniesWithHeadersAndSettles(t *testing.T) {
	l := budget.NewMemoryLedger()
	fx := budgetFixture(t, l, nil)
	ctx := context.Background()
	body := `{"model":"gpt-4o-mini","max_tokens":90,"messages":[]}` // 54 + 2×90 = 234 micro-dollars reserved
	var holds []*policy.Hold
	var fwds []*policy.Forward
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
			// USD headers are in dollars, not micro-dollars (issue 15 item 6).
			require.Equal(t, "0.001", hs["x-ratelimit-limit-usd"])
			require.NotEmpty(t, hs["retry-after"])
			require.Regexp(t, `^0\.000[0-9]+$`, hs["x-ratelimit-remaining-usd"])
			// The refusal says this request's reservation is what does not fit, and how to ask
			// for less.
			require.Contains(t, string(rep.Body), "this request reserves $0.000")
			require.Contains(t, string(rep.Body), "left of the team limit usd_per_day ($0.001)")
			require.Contains(t, string(rep.Body), "up to 90 output tokens: set a lower max_tokens")
			break
		}
		require.NotNil(t, h)
		holds, fwds = append(holds, h), append(fwds, f)
		require.Less(t, len(holds), 10, "the budget must run out")
	}
	require.Len(t, holds, 4, "1000 micro-dollars fit four reservations of %d", holds[0].Estimate.CostMicros)

	// Settling to real usage releases the over-estimate.
	st, err := fwds[0].Settle(ctx, holds[0], policy.Outcome{Usage: llm.Usage{InputTokens: 10, OutputTokens: 5}, UsageSeen: true, Ended: true, Status: 200})
	require.NoError(t, err)
	require.Equal(t, policy.Settlement{Tokens: 15, CostMicros: 20, Rule: "usage"}, st)
	st, err = fwds[1].Settle(ctx, holds[1], policy.Outcome{Status: 200})
	require.NoError(t, err)
	require.Equal(t, "full_reservation", st.Rule)
	require.Equal(t, holds[1].Estimate.CostMicros, st.CostMicros)
	st, err = fwds[2].Settle(ctx, holds[2], policy.Outcome{Status: 500, Ended: true})
	require.NoError(t, err)
	require.Equal(t, policy.Settlement{Rule: "upstream_error"}, st)
	_, err = fwds[3].Settle(ctx, holds[3], policy.Outcome{Status: 200})
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
	_, err := f.Settle(ctx, h, policy.Outcome{Usage: llm.Usage{InputTokens: 1}, UsageSeen: true, Ended: true, Status: 200})
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

// TestSettleRule is the settlement rule for every dialect: a response that did not reach its
// provider-defined end settles at max(reported usage, reservation); only an ended response is
// charged its reported usage alone.
func TestSettleRule(t *testing.T) {
	fx := budgetFixture(t, budget.NewMemoryLedger(), nil)
	// gpt-4o-mini in the fixture: 1 micro-dollar per input token, 2 per output token.
	_, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":400,"messages":[]}`)
	est := f.Estimate
	require.Equal(t, int64(400), est.OutputTokens)
	small := llm.Usage{InputTokens: 25, OutputTokens: 1} // what Anthropic's message_start reports
	big := llm.Usage{InputTokens: 25, OutputTokens: 5000}
	tests := []struct {
		name string
		o    policy.Outcome
		want policy.Settlement
	}{
		{"ended with usage", policy.Outcome{Usage: small, UsageSeen: true, Ended: true, Status: 200},
			policy.Settlement{Tokens: 26, CostMicros: 27, Rule: policy.SettleUsage}},
		{"aborted after message_start", policy.Outcome{Usage: small, UsageSeen: true, Status: 200},
			policy.Settlement{Tokens: est.Tokens, CostMicros: est.CostMicros, Rule: policy.SettleIncomplete}},
		{"aborted with usage above the reservation", policy.Outcome{Usage: big, UsageSeen: true, Status: 200},
			policy.Settlement{Tokens: 5025, CostMicros: 10025, Rule: policy.SettleIncomplete}},
		{"aborted without usage", policy.Outcome{Status: 200},
			policy.Settlement{Tokens: est.Tokens, CostMicros: est.CostMicros, Rule: policy.SettleFullReservation}},
		{"ended without usage", policy.Outcome{Status: 200, Ended: true},
			policy.Settlement{Tokens: est.Tokens, CostMicros: est.CostMicros, Rule: policy.SettleFullReservation}},
		{"no response headers", policy.Outcome{},
			policy.Settlement{Tokens: est.Tokens, CostMicros: est.CostMicros, Rule: policy.SettleFullReservation}},
		{"upstream error", policy.Outcome{Status: 429, Ended: true}, policy.Settlement{Rule: policy.SettleUpstreamError}},
		{"upstream error cut short", policy.Outcome{Status: 503}, policy.Settlement{Rule: policy.SettleUpstreamError}},
		{"upstream error with usage, cut short", policy.Outcome{Status: 500, Usage: small, UsageSeen: true},
			policy.Settlement{Tokens: est.Tokens, CostMicros: est.CostMicros, Rule: policy.SettleIncomplete}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Without a hold (no limits apply) the charge is the same: one rule.
			got, err := f.Settle(context.Background(), nil, tc.o)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestChoicesAreReserved: n: 50 reserved for one choice in review (issue 8 item 2). Every
// choice, and best_of's hidden ones, may produce the whole output cap.
func TestChoicesAreReserved(t *testing.T) {
	fx := budgetFixture(t, budget.NewMemoryLedger(), nil)
	_, one := route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":100,"messages":[]}`)
	_, fifty := route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":100,"n":50,"messages":[]}`)
	require.Equal(t, int64(100), one.Estimate.OutputTokens)
	require.Equal(t, int64(5000), fifty.Estimate.OutputTokens)
	require.Equal(t, fifty.Estimate.InputTokens*1+5000*2, fifty.Estimate.CostMicros, "input once, output for every choice")

	a := admit(t, fx, "valid", "/v1/completions")
	f, rep := fx.Snapshot.Route(a, []byte(`{"model":"gpt-4o-mini","prompt":"hi","max_tokens":10,"n":2,"best_of":7}`))
	require.Nil(t, rep)
	require.Equal(t, int64(70), f.Estimate.OutputTokens, "best_of generates (and bills) 7")

	// Without a cap, the model default is reserved for each choice.
	_, f = route(t, fx, "valid", `{"model":"gpt-4o-mini","n":3,"messages":[]}`)
	require.Equal(t, 3*int64(policy.DefaultMaxOutputTokensDefault), f.Estimate.OutputTokens)
}

// TestChoicesRaceCannotOverspend: concurrent requests with n > 1 against one budget are
// admitted only as far as every choice's reservation fits, and settling them all at the
// worst case (each choice used its whole cap) stays within the budget.
func TestChoicesRaceCannotOverspend(t *testing.T) {
	l := budget.NewMemoryLedger()
	fx := budgetFixture(t, l, func(c *policy.Config) { c.Teams[0].Limits.USDPerDay = "0.1" }) // 100000 µ$
	const body = `{"model":"gpt-4o-mini","max_tokens":1000,"n":10,"messages":[]}`             // 10 × 1000 × 2 µ$ + input
	ctx := context.Background()
	type admitted struct {
		f *policy.Forward
		h *policy.Hold
	}
	results := make(chan admitted, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			a := admit(t, fx, "valid", "/v1/chat/completions")
			f, rep := fx.Snapshot.Route(a, []byte(body))
			if rep != nil {
				t.Errorf("route: %d", rep.Status)
				return
			}
			h, rep := fx.Snapshot.Reserve(ctx, a, f, fx.Now)
			if rep == nil {
				results <- admitted{f, h}
			} else if rep.Status != 429 {
				t.Errorf("reserve: %d", rep.Status)
			}
		})
	}
	wg.Wait()
	close(results)
	var n int
	for r := range results {
		n++
		worst := llm.Usage{InputTokens: r.f.Estimate.InputTokens, OutputTokens: 10 * 1000}
		_, err := r.f.Settle(ctx, r.h, policy.Outcome{Usage: worst, UsageSeen: true, Ended: true, Status: 200})
		require.NoError(t, err)
	}
	require.Equal(t, 4, n, "100000 µ$ fits four reservations of about 20000 µ$ for ten choices, not 49 for one")
	e := policytest.TeamUSDPerDay(t, fx.Snapshot, fx.Now)
	require.LessOrEqual(t, e.Used, e.Max)
	require.Zero(t, e.Reserved)
}

// TestStoredInputIsBoundedOrRefused: a Responses request that continues a stored
// conversation (previous_response_id) makes the provider bill input its body does not carry,
// so its size is no bound. Under a token or USD limit it is refused unless the model's
// max_input_tokens (its context window) is set, which is then reserved as input. Before,
// it reserved a few bytes' worth and settled at the whole conversation's price.
func TestStoredInputIsBoundedOrRefused(t *testing.T) {
	body := []byte(`{"model":"gpt-4o-mini","max_output_tokens":10,"input":"and then?","previous_response_id":"resp_1"}`)
	l := budget.NewMemoryLedger()

	fx := budgetFixture(t, l, nil)
	f, rep := fx.Snapshot.Route(admit(t, fx, "valid", "/v1/responses"), body)
	require.Nil(t, f)
	require.NotNil(t, rep)
	require.Equal(t, 400, rep.Status)
	require.Equal(t, policy.ReasonInvalidRequest, rep.Reason)
	require.Contains(t, string(rep.Body), `"param":"previous_response_id"`)
	require.Contains(t, string(rep.Body), "max_input_tokens")

	fx = budgetFixture(t, l, func(c *policy.Config) { c.Models[0].MaxInputTokens = 128000 })
	a := admit(t, fx, "valid", "/v1/responses")
	f, rep = fx.Snapshot.Route(a, body)
	require.Nil(t, rep)
	require.Equal(t, int64(128000), f.Estimate.InputTokens)
	require.Equal(t, int64(128000*1+10*2), f.Estimate.CostMicros)
	// The team's $0.001 a day cannot hold that reservation: refused before forwarding.
	h, rep := fx.Snapshot.Reserve(context.Background(), a, f, fx.Now)
	require.Nil(t, h)
	require.Equal(t, 429, rep.Status)

	// Files and images by URL are input the body does not carry either; inline data is
	// counted by its bytes.
	fx = budgetFixture(t, l, nil)
	for path, b := range map[string]string{
		"/v1/chat/completions": `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://e.com/a.png"}}]}]}`,
		"/v1/responses":        `{"model":"gpt-4o-mini","max_output_tokens":5,"input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}`,
	} {
		_, rep = fx.Snapshot.Route(admit(t, fx, "valid", path), []byte(b))
		require.NotNil(t, rep, path)
		require.Equal(t, 400, rep.Status, path)
		require.Contains(t, string(rep.Body), "max_input_tokens", path)
	}
	_, f = route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}`)
	require.Positive(t, f.Estimate.InputTokens)

	// Without a token or USD limit there is nothing to bound: forwarded as before.
	fx = policytest.New(t)
	f, rep = fx.Snapshot.Route(admit(t, fx, "valid", "/v1/responses"), body)
	require.Nil(t, rep)
	require.Equal(t, int64(len(body)), f.Estimate.InputTokens)
}

// TestInputReservationBoundsTokenDensity: text a tokenizer rarely saw costs close to one token
// per byte (a 4-byte emoji or CJK extension character is often 2 to 4 tokens), so the input
// reserved is one token per byte of the forwarded body. Before, one per three bytes let
// such prompts settle at up to three times their reservation, past a budget under concurrency.
// The model's context window (max_input_tokens), when set, caps it.
func TestInputReservationBoundsTokenDensity(t *testing.T) {
	prompt := strings.Repeat("\U00020000\U0001F600", 500) // 4,000 bytes of 4-byte characters
	body := `{"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":"` + prompt + `"}]}`
	fx := budgetFixture(t, budget.NewMemoryLedger(), nil)
	_, f := route(t, fx, "valid", body)
	require.GreaterOrEqual(t, f.Estimate.InputTokens, int64(len(prompt)), "every byte may be a token")

	fx = budgetFixture(t, budget.NewMemoryLedger(), func(c *policy.Config) { c.Models[0].MaxInputTokens = 1000 })
	_, f = route(t, fx, "valid", body)
	require.Equal(t, int64(1000), f.Estimate.InputTokens, "never more than the context window")
}

// TestHostedToolsRefusedUnderBudget: a tool the provider runs itself (web search at a fee per
// call, code execution by the session, remote MCP) is billed beyond tokens and may run for
// many rounds inside one request, so under a token or USD limit no reservation bounds it:
// refused before anything is reserved. Before, it was reserved like a plain prompt and
// settled at whatever the provider's usage said, fees never counted.
func TestHostedToolsRefusedUnderBudget(t *testing.T) {
	fx := budgetFixture(t, budget.NewMemoryLedger(), nil)
	for _, tc := range []struct{ path, body, param string }{
		{"/v1/responses", `{"model":"gpt-4o-mini","max_output_tokens":5,"input":"news?","tools":[{"type":"web_search"}]}`, "tools"},
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[],"web_search_options":{}}`, "web_search_options"},
		{"/v1/messages", `{"model":"claude-haiku","max_tokens":5,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, "tools"},
	} {
		f, rep := fx.Snapshot.Route(admit(t, fx, "valid", tc.path), []byte(tc.body))
		require.Nil(t, f, tc.body)
		require.NotNil(t, rep, tc.body)
		require.Equal(t, 400, rep.Status)
		if tc.path != "/v1/messages" { // Anthropic's error shape has no param
			require.Contains(t, string(rep.Body), `"param":"`+tc.param+`"`)
		}
		require.Contains(t, string(rep.Body), "runs on the provider")
	}
	// Function tools run on the client: reserved and forwarded as usual.
	_, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[],"tools":[{"type":"function","function":{"name":"f"}}]}`)
	require.NotNil(t, f)
	// Without a token or USD limit there is nothing to bound.
	fx = policytest.New(t)
	f, rep := fx.Snapshot.Route(admit(t, fx, "valid", "/v1/responses"), []byte(`{"model":"gpt-4o-mini","input":"news?","tools":[{"type":"web_search"}]}`))
	require.Nil(t, rep)
	require.NotNil(t, f)
}

// TestPriorityTierRefusedUnderBudget: OpenAI's priority (and scale) tier is billed above the
// catalog's standard prices, so under a token or USD limit the ledger would record less than
// the provider bills: refused. Standard and cheaper tiers pass.
func TestPriorityTierRefusedUnderBudget(t *testing.T) {
	fx := budgetFixture(t, budget.NewMemoryLedger(), nil)
	for _, tier := range []string{"priority", "scale", "Priority", ""} {
		body := `{"model":"gpt-4o-mini","max_tokens":5,"messages":[],"service_tier":"` + tier + `"}`
		f, rep := fx.Snapshot.Route(admit(t, fx, "valid", "/v1/chat/completions"), []byte(body))
		require.Nil(t, f, tier)
		require.NotNil(t, rep, tier)
		require.Equal(t, 400, rep.Status)
		require.Contains(t, string(rep.Body), `"param":"service_tier"`)
	}
	for _, tier := range []string{"auto", "default", "flex"} {
		route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[],"service_tier":"`+tier+`"}`)
	}
	fx = policytest.New(t)
	route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[],"service_tier":"priority"}`)
}

// TestModelTokenBoundsValidated: a negative output or input bound is refused by name.
func TestModelTokenBoundsValidated(t *testing.T) {
	cfg := policytest.BaseConfig()
	cfg.ApplyDefaults()
	cfg.Models[0].MaxOutputTokens, cfg.Models[0].MaxInputTokens = -1, -1
	err := cfg.Validate()
	require.ErrorContains(t, err, "models[0].max_output_tokens: must not be negative")
	require.ErrorContains(t, err, "models[0].max_input_tokens: must not be negative")
	cfg.Models[0].MaxOutputTokens, cfg.Models[0].MaxInputTokens = 0, 200000
	require.NoError(t, cfg.Validate())
}

// TestAnthropicToolPromptReserved: Anthropic adds a tool-use system prompt to a request that
// lists tools, and expands each tool it defines (bash, text editor, computer), none of which
// shows in the body's bytes: the reservation adds room for them. Before, a small body with
// tools settled several hundred tokens above its reservation.
func TestAnthropicToolPromptReserved(t *testing.T) {
	fx := budgetFixture(t, budget.NewMemoryLedger(), nil)
	plain := `{"model":"claude-haiku","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	custom := `{"model":"claude-haiku","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}`
	defined := `{"model":"claude-haiku","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"bash_20250124","name":"bash"},{"type":"text_editor_20250728","name":"str_replace_based_edit_tool"}]}`
	// extra is the input reserved beyond the forwarded body's bytes (the model is rewritten to
	// its upstream name, so the forwarded body is longer than the client's).
	extra := func(body string) int64 {
		f, rep := fx.Snapshot.Route(admit(t, fx, "valid", "/v1/messages"), []byte(body))
		require.Nil(t, rep)
		sent := len(body)
		if f.Body != nil {
			sent = len(f.Body)
		}
		return f.Estimate.InputTokens - int64(sent)
	}
	require.Zero(t, extra(plain))
	require.GreaterOrEqual(t, extra(custom), int64(530))
	require.GreaterOrEqual(t, extra(defined), int64(530+2*1250))
	// OpenAI renders function tools from their JSON: the body's bytes bound them.
	_, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":5,"messages":[],"tools":[{"type":"function","function":{"name":"f"}}]}`)
	require.Equal(t, int64(len(`{"model":"gpt-4o-mini","max_tokens":5,"messages":[],"tools":[{"type":"function","function":{"name":"f"}}]}`)), f.Estimate.InputTokens)
}
