package extproc_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

func TestStreamSettlesReportedUsage(t *testing.T) {
	h := serve(t, policytest.NewWithBudget(t, budget.NewMemoryLedger(), nil))
	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
	resp := roundTrip(t, s, reqBody(`{"model":"gpt-4o-mini","stream":true,"max_tokens":20,"messages":[]}`))
	require.Contains(t, string(resp.GetRequestBody().GetResponse().GetBodyMutation().GetBody()), `"stream_options":{"include_usage":true}`)
	require.Positive(t, policytest.TeamUSDPerDay(t, h.fx.Snapshot, h.fx.Now).Reserved, "reserved while the stream is open")

	roundTrip(t, s, respHeaders("200", "content-type", "text/event-stream"))
	stream := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}\n\ndata: [DONE]\n\n"
	for i := 0; i < len(stream); i += 9 { // split mid-event
		end := min(i+9, len(stream))
		roundTrip(t, s, respBody(stream[i:end], end == len(stream)))
	}
	require.NoError(t, s.CloseSend())
	_, _ = s.Recv()
	h.waitIdle(t)

	e := policytest.TeamUSDPerDay(t, h.fx.Snapshot, h.fx.Now)
	require.Equal(t, int64(12*1+7*2), e.Used, "settled to the reported usage at 1 and 2 micro-dollars per token")
	require.Zero(t, e.Reserved)
	line := h.logs.FilterMessage("request").All()[0].ContextMap()
	require.Equal(t, "usage", line["settle_rule"])
	require.EqualValues(t, 26, line["cost_usd_micros"])
}

func TestAbortSettlesFullReservation(t *testing.T) {
	h := serve(t, policytest.NewWithBudget(t, budget.NewMemoryLedger(), nil))
	s, cancel := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
	roundTrip(t, s, reqBody(`{"model":"gpt-4o-mini","stream":true,"max_tokens":20,"messages":[]}`))
	roundTrip(t, s, respHeaders("200", "content-type", "text/event-stream"))
	roundTrip(t, s, respBody("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n", false))
	reserved := policytest.TeamUSDPerDay(t, h.fx.Snapshot, h.fx.Now).Reserved
	cancel() // the client went away before any usage arrived
	h.waitIdle(t)
	e := policytest.TeamUSDPerDay(t, h.fx.Snapshot, h.fx.Now)
	require.Equal(t, reserved, e.Used, "no usage seen: the full reservation is charged")
	require.Zero(t, e.Reserved, "nothing stays reserved")
}

func TestBudgetRefusalIs429(t *testing.T) {
	h := serve(t, policytest.NewWithBudget(t, budget.NewMemoryLedger(), nil))
	big := `{"model":"gpt-4o-mini","max_tokens":5000,"messages":[]}` // 10000+ micro-dollars > 1000
	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
	ir := roundTrip(t, s, reqBody(big)).GetImmediateResponse()
	require.EqualValues(t, 429, ir.GetStatus().GetCode())
	hdr := setHeaders(ir.GetHeaders())
	require.NotEmpty(t, hdr["retry-after"])
	require.Equal(t, "0.001", hdr["x-ratelimit-limit-usd"], "in dollars")
	require.True(t, strings.Contains(string(ir.GetBody()), "usd_per_day"))
	require.Contains(t, string(ir.GetBody()), "more than the whole team limit usd_per_day ($0.001)")
	require.Contains(t, string(ir.GetBody()), "set a lower max_tokens")
	requireRawValuesOnly(t, ir.GetHeaders())
}
