package policy_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// fallbackModel gives gpt-4o-mini (provider oai, 1 and 2 micro-dollars per input and output
// token under NewWithBudget) two fallback targets: an Azure deployment priced 5 and 10, and an
// OpenAI-compatible server priced 0.5 and 0.5.
func fallbackModel(c *policy.Config) {
	withClusters(c)
	c.Models[0].Fallback = []policy.FallbackTarget{
		{Provider: "az", Upstream: "my-deployment", Pricing: &policy.PricingConfig{Input: "5", Output: "10"}},
		{Provider: "vllm", Upstream: "llama-fb", Pricing: &policy.PricingConfig{Input: "0.5", Output: "0.5"}},
	}
	c.Teams[0].Limits.USDPerDay = "10"
}

// The prices of fallbackModel's targets, in micro-dollars per million tokens.
var (
	priceOAI = budget.Price{InputPerMTok: 1_000_000, OutputPerMTok: 2_000_000}
	priceAz  = budget.Price{InputPerMTok: 5_000_000, OutputPerMTok: 10_000_000}
)

const fallbackBody = `{"model":"gpt-4o-mini","max_completion_tokens":20,"messages":[{"role":"user","content":"hello"}]}`

// planDecision admits and routes one chat request for gpt-4o-mini with extra client headers.
func planDecision(t *testing.T, fx *policytest.Fixture, body string, extra ...string) (*policy.Admission, *policy.Forward) {
	t.Helper()
	kv := append([]string{"authorization", "Bearer " + fx.Keys["valid"], "content-type", "application/json", "x-request-id", "req-fb-1"}, extra...)
	a, rep := fx.Snapshot.Admit(fx.Now, hdrs("POST", "/v1/chat/completions", false, kv...))
	require.Nil(t, rep)
	f, rep := fx.Snapshot.Route(a, []byte(body))
	require.Nil(t, rep, "%v", rep)
	return a, f
}

// TestRoutePlan: a model with fallback targets is decided as a plan: the fallback-N route, no
// credential, every credential and provider-controlled header removed, one reservation at
// the dearest target's price.
func TestRoutePlan(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), fallbackModel)
	_, f := planDecision(t, fx, fallbackBody, "openai-organization", "client-org", "x-custom", "1", "user-agent", "sdk/1")

	require.NotNil(t, f.Plan)
	require.Equal(t, "fallback-3", f.Route)
	route, _ := header(f, policy.RoutingHeader)
	require.Equal(t, "fallback-3", route)
	require.Equal(t, []policy.PlanTarget{
		{Cluster: "oai_cluster", Provider: "oai", Model: "gpt-4o-mini"},
		{Cluster: "az_cluster", Provider: "az", Model: "my-deployment"},
		{Cluster: "vllm_cluster", Provider: "vllm", Model: "llama-fb"},
	}, f.Plan.Targets)
	require.Equal(t, "gpt-4o-mini", f.Plan.Model)
	require.Equal(t, "chat_completions", f.Plan.Endpoint)
	require.Equal(t, "/v1/chat/completions", f.Plan.Path)
	require.Equal(t, fx.Now.Add(30*time.Minute).Unix(), f.Plan.Expires)
	require.Len(t, f.Plan.MAC, 64)

	// No credential at all: it would ride along to every attempt.
	for _, h := range f.SetHeaders {
		require.NotContains(t, []string{"authorization", "x-api-key", "api-key", "anthropic-version", "openai-organization", "openai-project", ":path"}, h.Key)
		for _, k := range []string{policytest.OpenAIKey, policytest.AzureKey, policytest.AnthropicKey} {
			require.NotContains(t, string(h.Value), k)
		}
	}
	for _, h := range []string{"authorization", "x-api-key", "api-key", "openai-organization", "x-custom"} {
		require.Contains(t, f.RemoveHeaders, h)
	}
	require.NotContains(t, f.RemoveHeaders, "user-agent", "every target receives it")

	// The body as the downstream left it: the first target's model (unchanged here).
	require.Nil(t, f.Body)

	// One reservation, priced for the dearest target (Azure).
	e := f.Estimate
	require.Equal(t, int64(20), e.OutputTokens)
	require.Equal(t, priceAz.MaxCost(e.InputTokens, e.OutputTokens), e.CostMicros)
	require.Greater(t, e.CostMicros, priceOAI.MaxCost(e.InputTokens, e.OutputTokens))
}

// TestRoutePlanOfOne: a target whose optional provider is disabled is left out of the plan,
// and a plan of one target is routed as a model without fallback.
func TestRoutePlanOfOne(t *testing.T) {
	fx := policytest.NewWith(t, func(c *policy.Config) {
		withClusters(c)
		c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "off", Upstream: "gpt-4o-mini-2"}}
		c.Models[5].Fallback = []policy.FallbackTarget{{Provider: "oai", Upstream: "gpt-4o-mini"}} // "offline" on provider off
	})
	_, f := planDecision(t, fx, fallbackBody)
	require.Nil(t, f.Plan)
	require.Equal(t, "openai", f.Route)
	auth, _ := header(f, "authorization")
	require.Equal(t, "Bearer "+policytest.OpenAIKey, auth)

	_, f = planDecision(t, fx, strings.Replace(fallbackBody, "gpt-4o-mini", "offline", 1))
	require.Nil(t, f.Plan)
	require.Equal(t, "oai", f.Provider, "the disabled primary is skipped")
	auth, _ = header(f, "authorization")
	require.Equal(t, "Bearer "+policytest.OpenAIKey, auth)

	// The model list shows a model whose own provider is off when a fallback target serves it.
	_, rep := fx.Snapshot.Admit(fx.Now, hdrs("GET", "/v1/models", true, "authorization", "Bearer "+fx.Keys["valid"]))
	require.NotNil(t, rep)
	require.Contains(t, string(rep.Body), `"offline"`)
}

// TestRoutePlanSmuggledKey: a virtual key in a header any target would receive is refused.
func TestRoutePlanSmuggledKey(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), fallbackModel)
	a, rep := fx.Snapshot.Admit(fx.Now, hdrs("POST", "/v1/chat/completions", false, "authorization", "Bearer "+fx.Keys["valid"],
		"content-type", "application/json", "user-agent", fx.Keys["valid"]))
	require.Nil(t, rep)
	_, rep = fx.Snapshot.Route(a, []byte(fallbackBody))
	require.NotNil(t, rep)
	require.Equal(t, http.StatusBadRequest, rep.Status)
	require.NotContains(t, string(rep.Body), fx.Keys["valid"])
}

// attemptFor starts attempt n of f's plan on cluster, as the upstream filter would.
func attemptFor(t *testing.T, s *policy.Snapshot, now time.Time, p *policy.Plan, n int, cluster string) *policy.Attempt {
	t.Helper()
	at, rep := s.NewAttempt(now, policy.AttemptInput{Plan: p, N: n, Cluster: cluster, RequestID: "req-fb-1"})
	require.Nil(t, rep, "%s", func() string {
		if rep != nil {
			return string(rep.Body)
		}
		return ""
	}())
	return at
}

// forwarded is the body f sends: its rewrite, or the client's body.
func forwarded(f *policy.Forward, body string) []byte {
	if f.Body != nil {
		return f.Body
	}
	return []byte(body)
}

func setMap(hs []policy.Header) map[string]string {
	out := map[string]string{}
	for _, h := range hs {
		out[h.Key] = string(h.Value)
	}
	return out
}

// TestAttemptRewritesForItsTarget: each attempt removes every credential and provider header
// and sets its own target's credential, path and model, with the content-length of its body.
func TestAttemptRewritesForItsTarget(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), func(c *policy.Config) {
		fallbackModel(c)
		c.Providers[0].Organization = "org-gateway"
	})
	_, f := planDecision(t, fx, fallbackBody)
	body := forwarded(f, fallbackBody)

	tests := []struct {
		n          int
		cluster    string
		set        map[string]string
		removed    []string
		model      string
		extraField string // a cap field this target reads, added to the body
	}{
		{1, "oai_cluster", map[string]string{"authorization": "Bearer " + policytest.OpenAIKey, ":path": "/v1/chat/completions", "openai-organization": "org-gateway"},
			[]string{"x-api-key", "api-key", "anthropic-version", "openai-project"}, "gpt-4o-mini", ""},
		{2, "az_cluster", map[string]string{"api-key": policytest.AzureKey, ":path": "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"},
			[]string{"authorization", "x-api-key", "anthropic-version", "openai-organization", "openai-project"}, "my-deployment", ""},
		{3, "vllm_cluster", map[string]string{":path": "/v1/chat/completions"},
			[]string{"authorization", "x-api-key", "api-key", "anthropic-version", "openai-organization", "openai-project"}, "llama-fb", `"max_tokens":20`},
	}
	for _, tc := range tests {
		t.Run(tc.cluster, func(t *testing.T) {
			at := attemptFor(t, fx.Snapshot, fx.Now, f.Plan, tc.n, tc.cluster)
			hc, err := at.RequestHeaders(false)
			require.NoError(t, err)
			require.Equal(t, tc.set, setMap(hc.Set))
			require.ElementsMatch(t, tc.removed, hc.Remove)

			out, set, rep, err := at.RequestBody(body, true)
			require.NoError(t, err)
			require.Nil(t, rep)
			sent := body
			if out != nil {
				sent = out
			}
			require.Equal(t, map[string]string{"content-length": itoa(len(sent))}, setMap(set), "content-length always: the map may hold an earlier attempt's")
			var m map[string]any
			require.NoError(t, json.Unmarshal(sent, &m))
			require.Equal(t, tc.model, m["model"])
			require.EqualValues(t, 20, m["max_completion_tokens"])
			if tc.extraField != "" {
				require.Contains(t, string(sent), tc.extraField)
			}
			require.Equal(t, tc.n == 1, out == nil, "only the first target's body goes unchanged")
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestAttemptRefusals: an attempt that does not match its plan, or a plan that is not
// authentic, current or backed by this config, is refused (502) and never gets a credential.
func TestAttemptRefusals(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), fallbackModel)
	_, f := planDecision(t, fx, fallbackBody)
	without := policytest.NewWithBudget(t, budget.NewMemoryLedger(), func(c *policy.Config) {
		fallbackModel(c)
		c.Models[0].Fallback = c.Models[0].Fallback[:1] // a reload dropped the third target
	})
	disabled := policytest.NewWithBudget(t, budget.NewMemoryLedger(), func(c *policy.Config) {
		fallbackModel(c)
		c.Providers[2].Credential, c.Providers[2].Optional = "env:TG_GONE", true // az lost its credential
	})
	tamper := func(mut func(p *policy.Plan)) *policy.Plan {
		p := *f.Plan
		p.Targets = append([]policy.PlanTarget(nil), p.Targets...)
		mut(&p)
		return &p
	}
	tests := []struct {
		name string
		snap *policy.Snapshot
		now  time.Time
		in   policy.AttemptInput
	}{
		{"no plan", fx.Snapshot, fx.Now, policy.AttemptInput{N: 1, Cluster: "oai_cluster", RequestID: "req-fb-1"}},
		{"another cluster than the plan's for this attempt", fx.Snapshot, fx.Now, policy.AttemptInput{Plan: f.Plan, N: 2, Cluster: "oai_cluster", RequestID: "req-fb-1"}},
		{"attempt 0", fx.Snapshot, fx.Now, policy.AttemptInput{Plan: f.Plan, N: 0, Cluster: "oai_cluster", RequestID: "req-fb-1"}},
		{"an attempt past the plan", fx.Snapshot, fx.Now, policy.AttemptInput{Plan: f.Plan, N: 4, Cluster: "vllm_cluster", RequestID: "req-fb-1"}},
		{"another request's plan", fx.Snapshot, fx.Now, policy.AttemptInput{Plan: f.Plan, N: 1, Cluster: "oai_cluster", RequestID: "req-other"}},
		{"a plan edited after it was made", fx.Snapshot, fx.Now, policy.AttemptInput{Plan: tamper(func(p *policy.Plan) {
			p.Targets[1].Cluster = "oai_cluster"
		}), N: 2, Cluster: "oai_cluster", RequestID: "req-fb-1"}},
		{"a forged MAC", fx.Snapshot, fx.Now, policy.AttemptInput{Plan: tamper(func(p *policy.Plan) {
			p.MAC = strings.Repeat("0", 64)
		}), N: 1, Cluster: "oai_cluster", RequestID: "req-fb-1"}},
		{"an expired plan", fx.Snapshot, fx.Now.Add(31 * time.Minute), policy.AttemptInput{Plan: f.Plan, N: 1, Cluster: "oai_cluster", RequestID: "req-fb-1"}},
		{"a target the current config no longer has", without.Snapshot, fx.Now, policy.AttemptInput{Plan: f.Plan, N: 3, Cluster: "vllm_cluster", RequestID: "req-fb-1"}},
		{"a target whose provider is now disabled", disabled.Snapshot, fx.Now, policy.AttemptInput{Plan: f.Plan, N: 2, Cluster: "az_cluster", RequestID: "req-fb-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at, rep := tc.snap.NewAttempt(tc.now, tc.in)
			require.NotNil(t, rep)
			require.Equal(t, http.StatusBadGateway, rep.Status)
			require.Equal(t, policy.ReasonAttemptRefused, rep.Reason)
			require.True(t, json.Valid(rep.Body))
			require.True(t, at.Refused())
			_, err := at.RequestHeaders(false)
			require.Error(t, err, "a refused attempt sets no header")
			for _, k := range []string{policytest.OpenAIKey, policytest.AzureKey, fx.Keys["valid"]} {
				require.NotContains(t, string(rep.Body), k)
			}
		})
	}

	t.Run("a body that is not the admitted one", func(t *testing.T) {
		at := attemptFor(t, fx.Snapshot, fx.Now, f.Plan, 2, "az_cluster")
		_, err := at.RequestHeaders(false)
		require.NoError(t, err)
		_, _, rep, err := at.RequestBody([]byte(`{"model":"gpt-4o","messages":[]}`), true)
		require.NoError(t, err)
		require.NotNil(t, rep)
		require.Equal(t, http.StatusBadGateway, rep.Status)
	})
	t.Run("a body in parts", func(t *testing.T) {
		at := attemptFor(t, fx.Snapshot, fx.Now, f.Plan, 2, "az_cluster")
		_, err := at.RequestHeaders(false)
		require.NoError(t, err)
		_, _, _, err = at.RequestBody(forwarded(f, fallbackBody), false)
		require.ErrorIs(t, err, policy.ErrProtocol)
	})
}

// TestAttemptReportsUsage: the attempt reads its provider's usage from its own response.
func TestAttemptReportsUsage(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), fallbackModel)
	_, f := planDecision(t, fx, fallbackBody)
	at := attemptFor(t, fx.Snapshot, fx.Now, f.Plan, 2, "az_cluster")
	_, err := at.RequestHeaders(false)
	require.NoError(t, err)
	_, _, _, err = at.RequestBody(forwarded(f, fallbackBody), true)
	require.NoError(t, err)
	r, ok := at.Report()
	require.True(t, ok)
	require.Equal(t, policy.AttemptReport{N: 2, Cluster: "az_cluster", State: policy.AttemptSent}, r)

	require.NoError(t, at.ResponseHeaders(200, "application/json", false))
	r, _ = at.Report()
	require.Equal(t, policy.AttemptReport{N: 2, Cluster: "az_cluster", State: policy.AttemptAnswered, Status: 200}, r)
	body := `{"id":"x","model":"my-deployment","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}`
	require.NoError(t, at.ResponseChunk([]byte(body[:20]), false))
	require.NoError(t, at.ResponseChunk([]byte(body[20:]), true))
	r, _ = at.Report()
	require.Equal(t, policy.AttemptReport{N: 2, Cluster: "az_cluster", State: policy.AttemptComplete, Status: 200,
		UsageSeen: true, Ended: true, InputTokens: 11, OutputTokens: 7}, r)
}
