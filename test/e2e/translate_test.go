package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

// TestOpenAISDKCallsAnthropicModel: the official OpenAI Python SDK calls claude-haiku-4-5
// (provider type anthropic, the mock behind it) through Envoy and Tollgate: plain chat,
// streams without and with include_usage, a tool call, its result, a streamed tool call, and
// a request Anthropic refuses. It gets correct answers (and the SDK's own error class); the mock receives valid Anthropic Messages requests on
// /v1/messages, asserted field by field, with the Anthropic key and no virtual key; each
// request is charged Anthropic's usage at the model's price, and nothing else.
func TestOpenAISDKCallsAnthropicModel(t *testing.T) {
	sdks := testutil.PythonSDKs(t)
	s := startStack(t)
	before := s.usage(t, s.admin, "platform", "usd_per_day")
	s.mock.Reset()

	cmd := exec.Command("python3", filepath.Join("testdata", "openai_anthropic.py"), s.base, s.ca, "claude-haiku-4-5")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+sdks, "TOLLGATE_KEY="+s.keys["demo"])
	raw, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "the SDK script failed:\n%s\n%s", raw, stderr)

	type usage struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		TotalTokens      int64 `json:"total_tokens"`
	}
	type call struct{ ID, Type, Name, Arguments string }
	type streamed struct {
		Content              string `json:"content"`
		FinishReason         string `json:"finish_reason"`
		Usage                *usage `json:"usage"`
		ChunksWithoutChoices int    `json:"chunks_without_choices"`
		ToolCalls            []call `json:"tool_calls"`
	}
	var got struct {
		Plain struct {
			ID, Object, Model, Content string
			FinishReason               string `json:"finish_reason"`
			Usage                      usage
		}
		Stream      streamed `json:"stream"`
		StreamUsage streamed `json:"stream_usage"`
		Tool        struct {
			FinishReason string  `json:"finish_reason"`
			Content      *string `json:"content"`
			ToolCalls    []call  `json:"tool_calls"`
		}
		ToolResult struct {
			FinishReason string `json:"finish_reason"`
			Content      string
		} `json:"tool_result"`
		ToolStream streamed `json:"tool_stream"`
		Error      *struct {
			Class, Code, Type, Message string
			Status                     int
		}
	}
	require.NoError(t, json.Unmarshal(raw, &got), "%s", raw)
	t.Logf("the SDK read: %s", raw)
	const answer = "This is a mock response from mock-claude-haiku."

	t.Run("the SDK reads correct answers", func(t *testing.T) {
		require.Equal(t, "chat.completion", got.Plain.Object)
		require.True(t, strings.HasPrefix(got.Plain.ID, "msg_mock_"))
		require.Equal(t, "mock-claude-haiku", got.Plain.Model)
		require.Equal(t, answer, got.Plain.Content)
		require.Equal(t, "stop", got.Plain.FinishReason)
		require.Equal(t, int64(6), got.Plain.Usage.CompletionTokens, "the mock's 6 chunks")
		require.Equal(t, got.Plain.Usage.PromptTokens+6, got.Plain.Usage.TotalTokens)

		require.Equal(t, answer, got.Stream.Content)
		require.Equal(t, "stop", got.Stream.FinishReason)
		require.Nil(t, got.Stream.Usage, "no usage chunk unless asked")
		require.Zero(t, got.Stream.ChunksWithoutChoices)

		require.Equal(t, answer, got.StreamUsage.Content)
		require.NotNil(t, got.StreamUsage.Usage)
		require.Equal(t, int64(6), got.StreamUsage.Usage.CompletionTokens)
		require.Equal(t, 1, got.StreamUsage.ChunksWithoutChoices, "the one usage chunk")

		require.Equal(t, "tool_calls", got.Tool.FinishReason)
		require.Nil(t, got.Tool.Content)
		require.Len(t, got.Tool.ToolCalls, 1)
		require.Equal(t, "get_weather", got.Tool.ToolCalls[0].Name)
		require.Equal(t, "function", got.Tool.ToolCalls[0].Type)
		require.True(t, strings.HasPrefix(got.Tool.ToolCalls[0].ID, "toolu_mock_"))
		require.JSONEq(t, `{"city":"mock"}`, got.Tool.ToolCalls[0].Arguments)

		require.Equal(t, "stop", got.ToolResult.FinishReason)
		require.Equal(t, answer, got.ToolResult.Content)

		require.Equal(t, "tool_calls", got.ToolStream.FinishReason)
		require.Len(t, got.ToolStream.ToolCalls, 1)
		require.Equal(t, "get_weather", got.ToolStream.ToolCalls[0].Name)
		require.True(t, strings.HasPrefix(got.ToolStream.ToolCalls[0].ID, "toolu_mock_"))
		require.JSONEq(t, `{"city":"mock"}`, got.ToolStream.ToolCalls[0].Arguments)

		require.NotNil(t, got.Error, "max_tokens 0 is refused by the provider")
		require.Equal(t, "BadRequestError", got.Error.Class)
		require.Equal(t, 400, got.Error.Status)
		require.Equal(t, "invalid_request_error", got.Error.Code, "Anthropic's error type")
		require.Equal(t, "invalid_request_error", got.Error.Type)
		require.Contains(t, got.Error.Message, "max_tokens")
	})

	reqs := s.mock.Requests()
	require.Len(t, reqs, 7)
	t.Run("the mock receives Anthropic requests with the provider key only", func(t *testing.T) {
		for i, r := range reqs {
			require.Equal(t, http.MethodPost, r.Method, "request %d", i)
			require.Equal(t, "/v1/messages", r.Path, "request %d", i)
			require.Equal(t, s.anthropicKey, r.Header.Get("X-Api-Key"), "request %d", i)
			require.Equal(t, "2023-06-01", r.Header.Get("Anthropic-Version"), "request %d", i)
			require.Equal(t, "application/json", r.Header.Get("Content-Type"), "request %d", i)
			for _, h := range []string{"Authorization", "Api-Key", "X-Tollgate-Upstream", "X-Stainless-Lang"} {
				require.Empty(t, r.Header.Values(h), "request %d: %s", i, h)
			}
			for name, vals := range r.Header {
				for _, v := range vals {
					require.NotContains(t, v, s.keys["demo"], "request %d header %s", i, name)
					require.NotContains(t, strings.ToLower(v), "tgk_", "request %d header %s", i, name)
				}
			}
			require.NotContains(t, string(r.Body), "tgk_")
		}
		hello := `[{"role":"user","content":"Say hello"}]`
		ask := `{"role":"user","content":"What is the weather in Paris?"}`
		tools := `[{"name":"get_weather","description":"Current weather in a city","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]`
		call := got.Tool.ToolCalls[0].ID
		for i, want := range []string{
			`{"model":"mock-claude-haiku","max_tokens":64,"system":"Be brief.","messages":` + hello + `,"temperature":0.5,"stop_sequences":["STOP"],"metadata":{"user_id":"e2e-user"}}`,
			`{"model":"mock-claude-haiku","max_tokens":4096,"messages":` + hello + `,"stream":true}`,
			`{"model":"mock-claude-haiku","max_tokens":32,"messages":` + hello + `,"stream":true}`,
			`{"model":"mock-claude-haiku","max_tokens":64,"messages":[` + ask + `],"tools":` + tools + `,"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`,
			`{"model":"mock-claude-haiku","max_tokens":64,"messages":[` + ask + `,{"role":"assistant","content":[{"type":"tool_use","id":"` + call +
				`","name":"get_weather","input":{"city":"mock"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + call +
				`","content":"18 degrees and sunny"}]}],"tools":` + tools + `}`,
			`{"model":"mock-claude-haiku","max_tokens":64,"messages":[` + ask + `],"stream":true,"tools":` + tools + `,"tool_choice":{"type":"tool","name":"get_weather"}}`,
			`{"model":"mock-claude-haiku","max_tokens":0,"messages":` + hello + `}`,
		} {
			require.JSONEq(t, want, string(reqs[i].Body), "request %d", i)
			var fields map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(reqs[i].Body, &fields))
			require.NotContains(t, fields, "stream_options", "Anthropic always streams usage: nothing added")
		}
	})

	t.Run("spend is Anthropic's usage at the model's price", func(t *testing.T) {
		// claude-haiku-4-5 in examples/config.yaml: $1 (input) and $5 (output) per million
		// tokens, i.e. 1 and 5 micro-dollars per token.
		type line struct {
			Msg              string `json:"msg"`
			Endpoint         string `json:"endpoint"`
			UpstreamEndpoint string `json:"upstream_endpoint"`
			InputTokens      int64  `json:"input_tokens"`
			OutputTokens     int64  `json:"output_tokens"`
			Cost             int64  `json:"cost_usd_micros"`
			SettleRule       string `json:"settle_rule"`
		}
		var lines []line
		for _, l := range strings.Split(s.logs(), "\n") {
			var ln line
			if json.Unmarshal([]byte(l), &ln) == nil && ln.Msg == "request" && ln.UpstreamEndpoint != "" {
				lines = append(lines, ln)
			}
		}
		require.Len(t, lines, 7)
		require.Equal(t, "upstream_error", lines[6].SettleRule, "the refused request costs nothing")
		require.Zero(t, lines[6].Cost)
		lines = lines[:6]
		var total int64
		for i, ln := range lines {
			require.Equal(t, "chat_completions", ln.Endpoint)
			require.Equal(t, "messages", ln.UpstreamEndpoint)
			require.Equal(t, "usage", ln.SettleRule, "line %d", i)
			require.Equal(t, int64(6), ln.OutputTokens, "line %d", i)
			require.Equal(t, ln.InputTokens*1+ln.OutputTokens*5, ln.Cost, "line %d", i)
			total += ln.Cost
		}
		require.Equal(t, got.Plain.Usage.PromptTokens, lines[0].InputTokens, "the client reads the usage that was charged")
		require.Equal(t, got.StreamUsage.Usage.PromptTokens, lines[2].InputTokens)
		after := s.usage(t, s.admin, "platform", "usd_per_day")
		require.Equal(t, before.Used+total, after.Used)
		require.Equal(t, before.Reserved, after.Reserved, "every reservation was settled")
	})
}
