package extproc_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// TestTranslatedChatToAnthropic drives a chat completions request for an Anthropic model
// through the protocol: the body reply carries the Messages body, /v1/messages and the
// Anthropic credentials; the response headers reply removes content-length; each Anthropic
// chunk is replaced by its OpenAI translation; the log line names the upstream endpoint.
func TestTranslatedChatToAnthropic(t *testing.T) {
	h := newHarness(t)
	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
	resp := roundTrip(t, s, reqBody(`{"model":"claude-haiku","stream":true,"max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`))
	cr := resp.GetRequestBody().GetResponse()
	require.Equal(t, `{"model":"claude-haiku-4-5","max_tokens":9,"messages":[{"role":"user","content":"hi"}],"stream":true}`, string(cr.GetBodyMutation().GetBody()))
	requireRawValuesOnly(t, cr.GetHeaderMutation())
	set := setHeaders(cr.GetHeaderMutation())
	require.Equal(t, "/v1/messages", set[":path"])
	require.Equal(t, policytest.AnthropicKey, set["x-api-key"])
	require.Equal(t, policy.DefaultAnthropicVer, set["anthropic-version"])
	require.Equal(t, "anthropic", set[policy.RoutingHeader])
	require.Contains(t, cr.GetHeaderMutation().GetRemoveHeaders(), "authorization")
	require.True(t, cr.GetClearRouteCache())

	hr := roundTrip(t, s, respHeaders("200", "content-type", "text/event-stream", "content-length", "999"))
	mut := hr.GetResponseHeaders().GetResponse().GetHeaderMutation()
	require.Equal(t, []string{"content-length"}, mut.GetRemoveHeaders())
	require.Empty(t, mut.GetSetHeaders())

	var out strings.Builder
	for i, c := range []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nevent: message_st",
		"op\ndata: {\"type\":\"message_stop\"}\n\n",
	} {
		r := roundTrip(t, s, respBody(c, i == 2))
		bm := r.GetResponseBody().GetResponse().GetBodyMutation()
		require.NotNil(t, bm, "every chunk is replaced by its translation")
		out.Write(bm.GetBody())
	}
	require.NotContains(t, out.String(), "message_start")
	require.Contains(t, out.String(), `"delta":{"content":"Hi"}`)
	require.True(t, strings.HasSuffix(out.String(), `"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n"), out.String())

	require.NoError(t, s.CloseSend())
	_, err := s.Recv()
	require.Error(t, err)
	h.waitIdle(t)
	ctx := h.logs.FilterMessage("request").All()[0].ContextMap()
	require.Equal(t, "chat_completions", ctx["endpoint"])
	require.Equal(t, "messages", ctx["upstream_endpoint"])
	require.Equal(t, "usage", ctx["settle_rule"])
}
