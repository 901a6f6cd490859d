package extproc_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

func TestMetricsCountRequestsTokensCostAndFindings(t *testing.T) {
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), policytest.Guarded)
	reg := prometheus.NewRegistry()
	h := serveServer(t, fx, extproc.New(fixedSource{fx.Snapshot}, zap.NewNop(), extproc.WithClock(func() time.Time { return fx.Now }),
		extproc.WithMetrics(extproc.NewMetrics(reg, extproc.MetricsOptions{PerKeyLabels: true}))))

	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
	roundTrip(t, s, reqBody(`{"model":"fast","max_tokens":20,"messages":[{"role":"user","content":"mail jane.doe@example.com"}]}`))
	roundTrip(t, s, respHeaders("200", "content-type", "application/json"))
	roundTrip(t, s, respBody(`{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}`, true))
	require.NoError(t, s.CloseSend())
	_, _ = s.Recv()
	s2, _ := h.open(t)
	roundTrip(t, s2, chatHeaders("sk-nope"))
	require.NoError(t, s2.CloseSend())
	_, _ = s2.Recv()
	h.waitIdle(t)

	text := dump(t, reg)
	require.Contains(t, text, `tollgate_requests_total{decision="allow",model="fast",provider="oai",reason="ok",status="200",team="platform"} 1`)
	require.Contains(t, text, `tollgate_requests_total{decision="deny",model="",provider="",reason="invalid_key",status="401",team=""} 1`)
	require.Contains(t, text, `tollgate_tokens_total{model="fast",provider="oai",type="input"} 12`)
	require.Contains(t, text, `tollgate_tokens_total{model="fast",provider="oai",type="output"} 7`)
	require.Contains(t, text, `tollgate_cost_usd_micros_total{model="fast",provider="oai",team="platform"} 26`)
	require.Contains(t, text, `tollgate_guardrail_findings_total{action="redact",direction="request",rule="email"} 1`)
	require.Contains(t, text, `tollgate_key_requests_total{decision="allow",key_id="`+h.fx.IDs["valid"]+`"} 1`)
	require.Contains(t, text, `tollgate_extproc_phase_seconds_count{phase="request_body"} 1`)
	for _, k := range h.fx.Keys {
		require.NotContains(t, text, k[17:], "no key secret in metrics")
	}
	require.False(t, strings.Contains(text, "example.com"))
}

// dump renders gathered series as name{label="v",...} value lines (labels sorted by name).
func dump(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+`="`+lp.GetValue()+`"`)
			}
			v := m.GetCounter().GetValue()
			name := mf.GetName()
			if h := m.GetHistogram(); h != nil {
				name, v = name+"_count", float64(h.GetSampleCount())
			}
			fmt.Fprintf(&b, "%s{%s} %g\n", name, strings.Join(ls, ","), v)
		}
	}
	return b.String()
}
