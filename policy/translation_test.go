package policy_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// TestRouteTranslatesChatToAnthropic: a chat completions request for a model whose provider
// is Anthropic is translated to Messages and sent to /v1/messages with the Anthropic key and
// version; the client's virtual key never leaves; the reservation is the translated body's.
func TestRouteTranslatesChatToAnthropic(t *testing.T) {
	fx := policytest.NewWith(t, func(c *policy.Config) {
		c.Teams[0].RequestPolicy = policy.RequestPolicyConfig{MaxOutputTokens: 50}
	})
	for _, tc := range []struct {
		name, body, want string
	}{
		{"plain", `{"model":"claude-haiku","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"max_tokens":20}`,
			`{"model":"claude-haiku-4-5","max_tokens":20,"system":"Be brief.","messages":[{"role":"user","content":"hi"}]}`},
		{"streamed, include_usage not sent", `{"model":"claude-haiku","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":30}`,
			`{"model":"claude-haiku-4-5","max_tokens":30,"messages":[{"role":"user","content":"hi"}],"stream":true}`},
		{"request policy cap written", `{"model":"claude-haiku","messages":[{"role":"user","content":"hi"}]}`,
			`{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`},
		{"request policy cap clamps", `{"model":"claude-haiku","messages":[{"role":"user","content":"hi"}],"max_tokens":900}`,
			`{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := admit(t, fx, "valid", "/v1/chat/completions", "anthropic-version", "1999-01-01", "user-agent", "OpenAI/Python 2.0")
			f, rep := fx.Snapshot.Route(a, []byte(tc.body))
			require.Nil(t, rep, "%s", repBody(rep))
			require.Equal(t, tc.want, string(f.Body))
			require.Equal(t, llm.ChatCompletions, f.Endpoint, "the client's endpoint: what the guardrails scan")
			require.Equal(t, llm.Messages, f.Upstream, "what the provider receives: what usage is read from")
			require.False(t, f.DropUsageChunk)
			for k, v := range map[string]string{
				":path": "/v1/messages", "x-api-key": policytest.AnthropicKey, "anthropic-version": policy.DefaultAnthropicVer,
				policy.RoutingHeader: "anthropic", "content-length": strconv.Itoa(len(f.Body)),
			} {
				got, ok := header(f, k)
				require.True(t, ok, k)
				require.Equal(t, v, got, k)
			}
			_, auth := header(f, "authorization")
			require.False(t, auth)
			require.Contains(t, f.RemoveHeaders, "authorization", "the virtual key is removed")
			require.NotContains(t, f.RemoveHeaders, "user-agent")
			require.Equal(t, int64(len(f.Body)), f.Estimate.InputTokens, "reserved from the translated body")
		})
	}
}

func repBody(r *policy.Reply) string {
	if r == nil {
		return ""
	}
	return string(r.Body)
}

// TestRouteRefusesUntranslatable: a field with no Anthropic equivalent is a 400 in the
// OpenAI shape naming the field; nothing is forwarded. A model of another provider type is
// still refused on an endpoint neither serves nor translates.
func TestRouteRefusesUntranslatable(t *testing.T) {
	fx := policytest.New(t)
	tests := []struct {
		name, path, body, param string
		status                  int
		reason                  policy.Reason
	}{
		{"n", "/v1/chat/completions", `{"model":"claude-haiku","n":2,"messages":[]}`, "n", 400, policy.ReasonInvalidRequest},
		{"image detail", "/v1/chat/completions", `{"model":"claude-haiku","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://e.com/a.png","detail":"low"}}]}]}`,
			"messages[0].content[0].image_url.detail", 400, policy.ReasonInvalidRequest},
		{"unknown field", "/v1/chat/completions", `{"model":"claude-haiku","messages":[],"top_k":3}`, "top_k", 400, policy.ReasonInvalidRequest},
		{"nested duplicate key", "/v1/chat/completions", `{"model":"claude-haiku","messages":[{"role":"user","content":"a","content":"b"}]}`, "", 400, policy.ReasonInvalidRequest},
		{"wrong type", "/v1/chat/completions", `{"model":"claude-haiku","messages":{}}`, "messages", 400, policy.ReasonInvalidRequest},
		{"openai model on messages path", "/v1/messages", `{"model":"gpt-4o-mini","max_tokens":1,"messages":[]}`, "model", 400, policy.ReasonWrongAPI},
		{"anthropic model on responses", "/v1/responses", `{"model":"claude-haiku","input":"hi"}`, "model", 400, policy.ReasonWrongAPI},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := admit(t, fx, "valid", tc.path)
			f, rep := fx.Snapshot.Route(a, []byte(tc.body))
			require.Nil(t, f)
			require.NotNil(t, rep)
			require.Equal(t, tc.status, rep.Status)
			require.Equal(t, tc.reason, rep.Reason)
			if tc.path != "/v1/chat/completions" {
				return
			}
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(rep.Body, &e), "%s", rep.Body)
			require.Equal(t, "invalid_request_error", e.Error.Type)
			if tc.param != "" {
				require.NotNil(t, e.Error.Param)
				require.Equal(t, tc.param, *e.Error.Param)
				require.Contains(t, e.Error.Message, tc.param)
			}
		})
	}
}

// anthropicStream is an Anthropic event stream: 12 input tokens, 7 output tokens.
func anthropicStream(text ...string) []string {
	out := []string{"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"}
	for _, s := range text {
		b, _ := json.Marshal(s)
		out = append(out, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"+string(b)+"}}\n\n")
	}
	return append(out, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
}

// TestExchangeTranslated drives whole translated exchanges: what the client reads is the
// OpenAI shape, redacted where the guardrails say; what is charged is Anthropic's usage at
// the model's price, or the reservation when the stream was cut.
func TestExchangeTranslated(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), func(c *policy.Config) {
		policytest.Guarded(c)
		c.Teams[0].Limits.USDPerDay = "10"
		c.Models[2].Pricing = &policy.PricingConfig{Input: "1", Output: "2"}
	})
	chat := func(key string) []string {
		return []string{":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer " + key,
			"content-type", "application/json", "x-request-id", "req-1"}
	}
	streamed := `{"model":"claude-haiku","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`
	const usageCost = 12*1 + 7*2
	tests := []struct {
		name  string
		step  exchangeStep
		check func(t *testing.T, s policy.Summary, out string)
	}{
		{"stream with include_usage", exchangeStep{headers: chat(fx.Keys["valid"]),
			body:   `{"model":"claude-haiku","stream":true,"stream_options":{"include_usage":true},"max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`,
			status: 200, ctype: "text/event-stream", chunks: anthropicStream("Hel", "lo")},
			func(t *testing.T, s policy.Summary, out string) {
				require.Contains(t, out, `"object":"chat.completion.chunk"`)
				require.Equal(t, "Hello", chatContent(t, out))
				require.Contains(t, out, `"finish_reason":"stop"`)
				require.Contains(t, out, `"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19`)
				require.True(t, strings.HasSuffix(out, "data: [DONE]\n\n"))
				require.NotContains(t, out, "message_start", "no Anthropic event reaches the client")
				require.Equal(t, policy.SettleUsage, s.Settled.Rule)
				require.Equal(t, int64(usageCost), s.Settled.CostMicros)
				require.Equal(t, int64(12), s.Usage.InputTokens)
				require.Equal(t, "messages", s.UpstreamEndpoint)
				require.Equal(t, "chat_completions", s.Endpoint)
				require.Equal(t, "claude-haiku-4-5", s.ModelServed)
			}},
		{"stream without include_usage", exchangeStep{headers: chat(fx.Keys["valid"]), body: streamed,
			status: 200, ctype: "text/event-stream", chunks: anthropicStream("Hi")},
			func(t *testing.T, s policy.Summary, out string) {
				require.NotContains(t, out, "prompt_tokens", "the client did not ask for usage")
				require.True(t, strings.HasSuffix(out, "data: [DONE]\n\n"))
				require.Equal(t, policy.SettleUsage, s.Settled.Rule, "settled from the upstream's usage all the same")
				require.Equal(t, int64(usageCost), s.Settled.CostMicros)
			}},
		{"aborted stream settles at the reservation", exchangeStep{headers: chat(fx.Keys["valid"]), body: streamed,
			status: 200, ctype: "text/event-stream", abort: true, chunks: anthropicStream("Hi")[:3]},
			func(t *testing.T, s policy.Summary, _ string) {
				require.Equal(t, policy.SettleIncomplete, s.Settled.Rule)
				require.Equal(t, s.Reserved, s.Settled.CostMicros, "no message_stop: the larger of usage and reservation")
				require.False(t, s.Complete)
			}},
		{"stream redacted", exchangeStep{headers: chat(fx.Keys["valid"]), body: streamed,
			status: 200, ctype: "text/event-stream", chunks: anthropicStream("write to jane.d", "oe@example.com now")},
			func(t *testing.T, s policy.Summary, out string) {
				require.NotContains(t, out, "jane.d")
				require.NotContains(t, out, "example.com")
				require.Equal(t, "write to [EMAIL_1] now", chatContent(t, out))
				require.Contains(t, out, `"object":"chat.completion.chunk"`)
				require.Equal(t, []policy.GuardEvidence{{Rule: "email", Action: "redact_response", Count: 1, Response: true}}, s.Evidence)
				require.Equal(t, int64(usageCost), s.Settled.CostMicros)
			}},
		{"JSON translated and redacted", exchangeStep{headers: chat(fx.Keys["valid"]), body: `{"model":"claude-haiku","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`,
			status: 200, ctype: "application/json",
			chunks: []string{`{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"mail jane.doe`,
				`@example.com"}],"stop_reason":"max_tokens","usage":{"input_tokens":12,"output_tokens":7}}`}},
			func(t *testing.T, s policy.Summary, out string) {
				var c struct {
					Object  string `json:"object"`
					Choices []struct {
						Message      struct{ Content string } `json:"message"`
						FinishReason string                   `json:"finish_reason"`
					} `json:"choices"`
					Usage struct {
						PromptTokens int `json:"prompt_tokens"`
					} `json:"usage"`
				}
				require.NoError(t, json.Unmarshal([]byte(out), &c), out)
				require.Equal(t, "chat.completion", c.Object)
				require.Equal(t, "mail [EMAIL_1]", c.Choices[0].Message.Content)
				require.Equal(t, "length", c.Choices[0].FinishReason)
				require.Equal(t, 12, c.Usage.PromptTokens)
				require.Equal(t, policy.SettleUsage, s.Settled.Rule)
				require.Equal(t, int64(usageCost), s.Settled.CostMicros)
			}},
		{"unguarded JSON translated", exchangeStep{headers: chat(fx.Keys["research"]), body: `{"model":"claude-haiku","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`,
			status: 200, ctype: "application/json",
			chunks: []string{`{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":12,"output_tokens":7}}`}},
			func(t *testing.T, s policy.Summary, out string) {
				require.Contains(t, out, `"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]`)
				require.Contains(t, out, `"finish_reason":"tool_calls"`)
			}},
		{"upstream error translated", exchangeStep{headers: chat(fx.Keys["valid"]), body: streamed,
			status: 429, ctype: "application/json", chunks: []string{`{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`}},
			func(t *testing.T, s policy.Summary, out string) {
				require.JSONEq(t, `{"error":{"message":"slow down","type":"rate_limit_exceeded","param":null,"code":"rate_limit_error"}}`, out)
				require.Equal(t, policy.SettleUpstreamError, s.Settled.Rule)
				require.Equal(t, 429, s.Status)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, rep, out := runExchange(t, fx, tc.step)
			require.Nil(t, rep, "%s", repBody(rep))
			s := x.Summary()
			e := x.AuditEvent(24, 48)
			require.Equal(t, "chat_completions", e.Endpoint)
			require.Equal(t, "messages", e.UpstreamEndpoint)
			require.Equal(t, s.Settled.CostMicros, e.CostUSDMicros)
			tc.check(t, s, out)
		})
	}
}

// TestExchangeTranslatedResponseHeaders: a translated body changes size, so its
// content-length goes; an error body that becomes JSON says so. An untranslated response
// keeps its headers.
func TestExchangeTranslatedResponseHeaders(t *testing.T) {
	fx := policytest.New(t)
	for _, tc := range []struct {
		name, model, ctype string
		status             int
		set                bool
		remove             bool
	}{
		{"translated stream", "claude-haiku", "text/event-stream", 200, false, true},
		{"translated JSON", "claude-haiku", "application/json", 200, true, true},
		{"translated HTML error", "claude-haiku", "text/html", 502, true, true},
		{"not translated", "gpt-4o-mini", "application/json", 200, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := fx.Snapshot.NewExchange(t.Context(), policy.ExchangeOptions{Now: func() time.Time { return fx.Now }})
			rep, err := x.RequestHeaders(hdrs("POST", "/v1/chat/completions", false, "authorization", "Bearer "+fx.Keys["valid"], "content-type", "application/json"))
			require.NoError(t, err)
			require.Nil(t, rep)
			_, rep, err = x.RequestBody([]byte(`{"model":"`+tc.model+`","max_tokens":5,"messages":[]}`), true)
			require.NoError(t, err)
			require.Nil(t, rep)
			rep, err = x.ResponseHeaders(tc.status, tc.ctype, false)
			require.NoError(t, err)
			require.Nil(t, rep)
			set, remove := x.ResponseHeaderEdits()
			require.Equal(t, tc.remove, len(remove) == 1 && remove[0] == "content-length", "%v", remove)
			if tc.set {
				require.Equal(t, []policy.Header{{Key: "content-type", Value: []byte("application/json")}}, set)
			} else {
				require.Empty(t, set)
			}
		})
	}
}

// TestExchangeUntranslatableResponseFails: a response the translation cannot read fails the
// stream rather than reach the client in a shape it did not ask for.
func TestExchangeUntranslatableResponseFails(t *testing.T) {
	fx := policytest.New(t)
	x := fx.Snapshot.NewExchange(t.Context(), policy.ExchangeOptions{Now: func() time.Time { return fx.Now }})
	_, err := x.RequestHeaders(hdrs("POST", "/v1/chat/completions", false, "authorization", "Bearer "+fx.Keys["research"], "content-type", "application/json"))
	require.NoError(t, err)
	_, _, err = x.RequestBody([]byte(`{"model":"claude-haiku","stream":true,"max_tokens":5,"messages":[]}`), true)
	require.NoError(t, err)
	_, err = x.ResponseHeaders(200, "text/event-stream", false)
	require.NoError(t, err)
	out, _, err := x.ResponseChunk([]byte("data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"raw\"}}\n\n"), false)
	require.ErrorIs(t, err, policy.ErrResponseUntranslatable)
	require.NotContains(t, string(out), "raw")
}

// chatContent joins the content deltas of a chat completions stream, checking that every
// event is a chunk, the usage chunk or [DONE].
func chatContent(t *testing.T, out string) string {
	t.Helper()
	var b strings.Builder
	for _, ev := range strings.Split(strings.TrimSpace(out), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		require.True(t, ok, ev)
		if data == "[DONE]" {
			continue
		}
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		require.NoError(t, json.Unmarshal([]byte(data), &c), data)
		require.Equal(t, "chat.completion.chunk", c.Object)
		for _, ch := range c.Choices {
			b.WriteString(ch.Delta.Content)
		}
	}
	return b.String()
}
