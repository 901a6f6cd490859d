package extproc

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-ai/tollgate/policy"
)

// Metrics are the server's Prometheus collectors. Labels come from closed sets (reasons,
// decisions, configured team, provider and model names, rule ids, HTTP status codes): never keys,
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
			Help: "Requests by team, provider, model, HTTP status, decision and reason (team empty when refused before the key was verified, provider and model before routing).",
		}, []string{"team", "provider", "model", "status", "decision", "reason"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tokens_total",
			Help: "Provider-reported tokens by provider, model and type (input, output, cached_input, cache_write).",
		}, []string{"provider", "model", "type"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cost_usd_micros_total",
			Help: "Charged cost in micro-dollars by team, provider and model.",
		}, []string{"team", "provider", "model"}),
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

// phaseLabel is a ProcessingRequest type, as the phase histogram labels it.
type phaseLabel int

const (
	phaseRequestHeaders phaseLabel = iota
	phaseRequestBody
	phaseResponseHeaders
	phaseResponseBody
	phaseTrailers
)

var phaseNames = [...]string{"request_headers", "request_body", "response_headers", "response_body", "trailers"}

// observePhase records the time spent on one message.
func (m *Metrics) observePhase(p phaseLabel, d time.Duration) {
	m.phase.WithLabelValues(phaseNames[p]).Observe(d.Seconds())
}

// observe records one finished exchange.
func (m *Metrics) observe(s policy.Summary) {
	m.requests.WithLabelValues(s.Team, s.Provider, s.Model, strconv.Itoa(s.Status), s.Decision, string(s.Reason)).Inc()
	if s.UsageSeen {
		for _, t := range [...]struct {
			typ string
			n   int64
		}{{"input", s.Usage.InputTokens}, {"output", s.Usage.OutputTokens},
			{"cached_input", s.Usage.CachedInputTokens}, {"cache_write", s.Usage.CacheWriteTokens}} {
			if t.n > 0 {
				m.tokens.WithLabelValues(s.Provider, s.Model, t.typ).Add(float64(t.n))
			}
		}
	}
	if s.Settled.CostMicros > 0 {
		m.cost.WithLabelValues(s.Team, s.Provider, s.Model).Add(float64(s.Settled.CostMicros))
	}
	for _, ev := range s.Evidence {
		direction := "request"
		if ev.Response {
			direction = "response"
		}
		m.findings.WithLabelValues(ev.Rule, ev.Action, direction).Add(float64(ev.Count))
	}
	switch {
	case s.Reason == policy.ReasonLedgerUnavailable:
		m.ledgerErrors.WithLabelValues("refused").Inc()
	case s.FailedOpen:
		m.ledgerErrors.WithLabelValues("fail_open").Inc()
	case s.Reason == policy.ReasonLimitExceeded && s.Limit != nil:
		m.limitRefusals.WithLabelValues(s.Limit.Scope, s.Limit.Kind).Inc()
	}
	if m.keyRequests != nil && s.KeyID != "" {
		m.keyRequests.WithLabelValues(s.KeyID, s.Decision).Inc()
		if s.Settled.CostMicros > 0 {
			m.keyCost.WithLabelValues(s.KeyID).Add(float64(s.Settled.CostMicros))
		}
	}
}
