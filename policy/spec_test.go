package policy_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// fakeGenerate is an endpoint no code outside this descriptor knows: a chat-shaped API on a
// path of its own, served by OpenAI-compatible servers and Azure deployments. Registered once
// per test binary, as a built-in registers at package initialization.
var fakeGenerate = func() llm.Endpoint {
	e, err := llm.Register(llm.Spec{
		Name: "fake_generate", Method: "POST", Path: "/v1/fake/generate", Dialect: llm.OpenAI, Operation: "chat",
		Usage: llm.UsageChat, Guard: llm.ShapeChat, MaxTokens: llm.FieldMaxTokens, StreamUsage: true,
		Query:     map[string][]string{"mode": {"fast"}},
		Providers: []string{policy.ProviderOpenAICompatible, policy.ProviderAzureOpenAI}, AzureOperation: "fake/generate",
	})
	if err != nil {
		panic(err)
	}
	return e
}()

// TestFakeDescriptorWholePipeline: a descriptor registered with no edit anywhere else is
// admitted, routed (with its providers, caps, include_usage and Azure path), guarded in the
// request, the JSON response and the stream, metered from its usage and settled, and
// audited under its own name.
func TestFakeDescriptorWholePipeline(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), func(c *policy.Config) {
		policytest.Guarded(c)
		c.Teams[0].Limits.USDPerDay = "10"
	})
	hdrs := func(method, path string) []string {
		return []string{":method", method, ":path", path, "authorization", "Bearer " + fx.Keys["valid"],
			"content-type", "application/json", "x-request-id", "req-fake"}
	}
	post := hdrs("POST", "/v1/fake/generate")
	usage := `data: {"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":6}}` + "\n\n"

	t.Run("admit", func(t *testing.T) {
		_, rep, _ := runExchange(t, fx, exchangeStep{headers: hdrs("GET", "/v1/fake/generate")})
		require.Equal(t, 405, rep.Status)
		_, rep, _ = runExchange(t, fx, exchangeStep{headers: hdrs("POST", "/v1/fake/generate?mode=slow"), body: `{"model":"llama"}`})
		require.Equal(t, 400, rep.Status, "a query value the descriptor does not allow")
		x, rep, _ := runExchange(t, fx, exchangeStep{headers: hdrs("POST", "/v1/fake/generate?mode=fast"), body: `{"model":"llama","messages":[]}`})
		require.Nil(t, rep)
		require.Equal(t, fakeGenerate, x.Forward().Endpoint)
	})

	t.Run("route", func(t *testing.T) {
		_, rep, _ := runExchange(t, fx, exchangeStep{headers: post, body: `{"model":"fast","messages":[]}`})
		require.Equal(t, 400, rep.Status)
		require.Equal(t, policy.ReasonWrongAPI, rep.Reason, "OpenAI itself is not among the descriptor's providers")

		x, rep, _ := runExchange(t, fx, exchangeStep{headers: post, body: `{"model":"llama","stream":true,"max_tokens":9000,"messages":[]}`})
		require.Nil(t, rep)
		f := x.Forward()
		var body map[string]any
		require.NoError(t, json.Unmarshal(f.Body, &body))
		require.Equal(t, map[string]any{"include_usage": true}, body["stream_options"], "StreamUsage: usage asked for")
		require.True(t, f.DropUsageChunk)
		require.Equal(t, int64(9000), f.Estimate.OutputTokens, "the descriptor's cap field is the one read")

		x, rep, _ = runExchange(t, fx, exchangeStep{headers: post, body: `{"model":"azure-mini","messages":[]}`})
		require.Nil(t, rep)
		path, _ := header(x.Forward(), ":path")
		require.Equal(t, "/openai/deployments/my-deployment/fake/generate?api-version=2024-10-21", path)
	})

	t.Run("guard the request", func(t *testing.T) {
		x, rep, _ := runExchange(t, fx, exchangeStep{headers: post,
			body: `{"model":"llama","messages":[{"role":"user","content":"mail jane.doe@example.com"}]}`})
		require.Nil(t, rep)
		require.NotContains(t, string(x.Forward().Body), "jane.doe@example.com")
		require.Contains(t, string(x.Forward().Body), "[EMAIL_1]")
		_, rep, _ = runExchange(t, fx, exchangeStep{headers: post,
			body: `{"model":"llama","messages":[{"role":"user","content":"AKIAIOSFODNN7EXAMPLE"}]}`})
		require.Equal(t, 403, rep.Status)
		require.Equal(t, policy.ReasonGuardrailBlocked, rep.Reason)
	})

	t.Run("stream: guarded, metered, settled", func(t *testing.T) {
		x, _, out := runExchange(t, fx, exchangeStep{headers: post, body: `{"model":"llama","stream":true,"max_tokens":20,"messages":[]}`,
			status: 200, ctype: "text/event-stream",
			chunks: []string{`data: {"choices":[{"index":0,"delta":{"content":"mail jane.doe@example.com now"}}]}` + "\n\n", usage, "data: [DONE]\n\n"}})
		s := x.Summary()
		require.NotContains(t, out, "jane.doe@example.com")
		require.Contains(t, out, "[EMAIL_1]")
		require.NotContains(t, out, "prompt_tokens", "the usage chunk Tollgate asked for is not the client's")
		require.True(t, s.Complete)
		require.Equal(t, llm.Usage{InputTokens: 10, OutputTokens: 6}, s.Usage)
		require.Equal(t, policy.SettleUsage, s.Settled.Rule)
		require.Equal(t, int64(8), s.Settled.CostMicros, "16 tokens at 0.5 micro-dollars")
		require.Equal(t, "fake_generate", s.Endpoint)
		require.Equal(t, "chat", s.Operation)
		e := x.AuditEvent(24, 48)
		require.Equal(t, "fake_generate", e.Endpoint)
		require.Equal(t, int64(6), e.Tokens.Output)
	})

	t.Run("aborted stream settles at the reservation", func(t *testing.T) {
		x, _, _ := runExchange(t, fx, exchangeStep{headers: post, body: `{"model":"llama","stream":true,"max_tokens":20,"messages":[]}`,
			status: 200, ctype: "text/event-stream", abort: true,
			chunks: []string{`data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\n"}})
		s := x.Summary()
		require.Equal(t, policy.SettleFullReservation, s.Settled.Rule)
		require.Equal(t, s.Reserved, s.Settled.CostMicros)
	})

	t.Run("JSON response: guarded and metered", func(t *testing.T) {
		x, _, out := runExchange(t, fx, exchangeStep{headers: post, body: `{"model":"llama","messages":[]}`,
			status: 200, ctype: "application/json",
			chunks: []string{`{"choices":[{"index":0,"message":{"role":"assistant","content":"mail jane.doe@example.com"}}],`,
				`"usage":{"prompt_tokens":3,"completion_tokens":5}}`}})
		s := x.Summary()
		require.NotContains(t, out, "jane.doe@example.com")
		require.Contains(t, out, "[EMAIL_1]")
		require.Equal(t, llm.Usage{InputTokens: 3, OutputTokens: 5}, s.Usage)
		require.Equal(t, policy.SettleUsage, s.Settled.Rule)
	})
}

// TestEveryEndpointNamesKnownProviders: each registered descriptor's providers are provider
// types this package configures, and a forwarded endpoint has at least one.
func TestEveryEndpointNamesKnownProviders(t *testing.T) {
	known := []string{policy.ProviderOpenAI, policy.ProviderAnthropic, policy.ProviderAzureOpenAI, policy.ProviderOpenAICompatible}
	for _, e := range llm.Endpoints() {
		sp := e.Spec()
		require.True(t, sp.Local || len(sp.Providers) > 0, sp.Name)
		for _, p := range sp.Providers {
			require.Contains(t, known, p, sp.Name)
		}
	}
}
