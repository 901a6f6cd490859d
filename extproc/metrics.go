package extproc

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-ai/tollgate/policy"
)

// Metrics are the server's Prometheus collectors. Labels come from closed sets (reasons,
// configured provider names): never keys, prompts or client-supplied strings.
type Metrics struct {
	requests      *prometheus.CounterVec
	ledgerErrors  *prometheus.CounterVec
	limitRefusals *prometheus.CounterVec
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_requests_total",
			Help: "Requests by decision reason and provider (empty when refused before routing).",
		}, []string{"reason", "provider"}),
		ledgerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_budget_ledger_unavailable_total",
			Help: "Requests the budget ledger could not decide: refused (fail closed) or passed (fail_open).",
		}, []string{"decision"}),
		limitRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_budget_limit_refusals_total",
			Help: "Requests refused with 429 because a limit was reached.",
		}, []string{"scope", "limit"}),
	}
	reg.MustRegister(m.requests, m.ledgerErrors, m.limitRefusals)
	return m
}

// WithMetrics sets the collectors (default: a private registry, not exported).
func WithMetrics(m *Metrics) Option { return func(s *Server) { s.metrics = m } }

// observe records one finished stream.
func (m *Metrics) observe(st *stream) {
	provider := ""
	if st.fwd != nil {
		provider = st.fwd.Provider
	}
	m.requests.WithLabelValues(string(st.reason), provider).Inc()
	switch {
	case st.reason == policy.ReasonLedgerUnavailable:
		m.ledgerErrors.WithLabelValues("refused").Inc()
	case st.hold != nil && st.hold.FailedOpen:
		m.ledgerErrors.WithLabelValues("fail_open").Inc()
	case st.reason == policy.ReasonLimitExceeded && st.limit != nil:
		m.limitRefusals.WithLabelValues(st.limit.Scope, st.limit.Kind).Inc()
	}
}
