package extproc

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-ai/tollgate/policy"
)

// Metrics are the server's Prometheus collectors. Labels come from closed sets (reasons,
// decisions, configured provider and model names, rule ids, HTTP status codes): never keys,
// prompts or client-supplied strings. Per-key series (public key ids) exist only when
// enabled, because their cardinality grows with the number of keys.
type Metrics struct {
	requests      *prometheus.CounterVec
	tokens        *prometheus.CounterVec
	cost          *prometheus.CounterVec
	findings      *prometheus.CounterVec
	ledgerErrors  *prometheus.CounterVec
	limitRefusals *prometheus.CounterVec
	phase         *prometheus.HistogramVec
	keyRequests   *prometheus.CounterVec // nil unless per-key labels are on
	keyCost       *prometheus.CounterVec
}

// MetricsOptions adjusts NewMetrics.
type MetricsOptions struct {
	// PerKeyLabels adds series labelled with the public key id.
	PerKeyLabels bool
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer, opts ...MetricsOptions) *Metrics {
	var o MetricsOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_requests_total",
			Help: "Requests by provider, model, HTTP status, decision and reason (provider and model empty when refused before routing).",
		}, []string{"provider", "model", "status", "decision", "reason"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tokens_total",
			Help: "Provider-reported tokens by provider, model and type (input, output, cached_input, cache_write).",
		}, []string{"provider", "model", "type"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cost_usd_micros_total",
			Help: "Charged cost in micro-dollars by provider and model.",
		}, []string{"provider", "model"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_guardrail_findings_total",
			Help: "Guardrail matches by rule id, action and direction (request or response).",
		}, []string{"rule", "action", "direction"}),
		ledgerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_budget_ledger_unavailable_total",
			Help: "Requests the budget ledger could not decide: refused (fail closed) or passed (fail_open).",
		}, []string{"decision"}),
		limitRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_budget_limit_refusals_total",
			Help: "Requests refused with 429 because a limit was reached.",
		}, []string{"scope", "limit"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_extproc_phase_seconds",
			Help:    "Time tollgate spends on one ext_proc message, by phase.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.25, 1},
		}, []string{"phase"}),
	}
	reg.MustRegister(m.requests, m.tokens, m.cost, m.findings, m.ledgerErrors, m.limitRefusals, m.phase)
	if o.PerKeyLabels {
		m.keyRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_key_requests_total", Help: "Requests by public key id and decision.",
		}, []string{"key_id", "decision"})
		m.keyCost = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_key_cost_usd_micros_total", Help: "Charged cost in micro-dollars by public key id.",
		}, []string{"key_id"})
		reg.MustRegister(m.keyRequests, m.keyCost)
	}
	return m
}

// WithMetrics sets the collectors (default: a private registry, not exported).
func WithMetrics(m *Metrics) Option { return func(s *Server) { s.metrics = m } }

// phaseNames label the phase histogram by the ProcessingRequest type.
var phaseNames = [...]string{"request_headers", "request_body", "response_headers", "response_body", "trailers"}

// observePhase records the time spent on one message.
func (m *Metrics) observePhase(phase int, d time.Duration) {
	m.phase.WithLabelValues(phaseNames[phase]).Observe(d.Seconds())
}

// observe records one finished stream.
func (m *Metrics) observe(st *stream) {
	provider, model := "", ""
	if st.fwd != nil {
		provider, model = st.fwd.Provider, st.fwd.Model
	}
	decision := decisionOf(st)
	m.requests.WithLabelValues(provider, model, strconv.Itoa(st.status), decision, string(st.reason)).Inc()
	if st.usageSeen {
		for typ, n := range map[string]int64{"input": st.used.InputTokens, "output": st.used.OutputTokens,
			"cached_input": st.used.CachedInputTokens, "cache_write": st.used.CacheWriteTokens} {
			if n > 0 {
				m.tokens.WithLabelValues(provider, model, typ).Add(float64(n))
			}
		}
	}
	if st.settled.CostMicros > 0 {
		m.cost.WithLabelValues(provider, model).Add(float64(st.settled.CostMicros))
	}
	g := st.guard
	if st.fwd != nil {
		g = st.fwd.Guard
	}
	if g != nil {
		for _, f := range g.Findings {
			m.findings.WithLabelValues(f.RuleID, f.Action.String(), "request").Add(float64(f.Count))
		}
	}
	if st.rg != nil {
		for _, f := range st.rg.findings {
			m.findings.WithLabelValues(f.RuleID, f.Action.String(), "response").Add(float64(f.Count))
		}
	}
	switch {
	case st.reason == policy.ReasonLedgerUnavailable:
		m.ledgerErrors.WithLabelValues("refused").Inc()
	case st.hold != nil && st.hold.FailedOpen:
		m.ledgerErrors.WithLabelValues("fail_open").Inc()
	case st.reason == policy.ReasonLimitExceeded && st.limit != nil:
		m.limitRefusals.WithLabelValues(st.limit.Scope, st.limit.Kind).Inc()
	}
	if m.keyRequests != nil && st.adm != nil {
		m.keyRequests.WithLabelValues(st.adm.Key.ID, decision).Inc()
		if st.settled.CostMicros > 0 {
			m.keyCost.WithLabelValues(st.adm.Key.ID).Add(float64(st.settled.CostMicros))
		}
	}
}

// decisionOf is allow, deny or error, as in the audit event.
func decisionOf(st *stream) string {
	switch {
	case st.reason == policy.ReasonOK:
		return "allow"
	case st.status >= 500 || st.reason == policy.ReasonInternal || st.reason == "incomplete":
		return "error"
	default:
		return "deny"
	}
}
