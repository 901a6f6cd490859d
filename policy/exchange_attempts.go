package policy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

// ErrAttemptReport means the attempts the upstream filters reported do not fit the request's
// plan. The report is ignored: the request is then charged as if no attempt had reported,
// at the dearest target's price.
var ErrAttemptReport = errors.New("invalid fallback attempt report")

// Attempt outcomes in the audit event, a closed set: the attempt served the response, failed
// with an answer (an error status), got no answer (reset, timeout), was refused by Tollgate
// before it was sent, or was cut after its response started.
const (
	OutcomeServed   = "served"
	OutcomeFailed   = "failed"
	OutcomeNoAnswer = "no_answer"
	OutcomeRefused  = "refused"
	OutcomeCut      = "cut"
)

// attemptsSeen is what the exchange knows of its attempts: the latest report of each.
type attemptsSeen struct {
	reports []AttemptReport // ordered by N
	invalid bool
}

// ObserveAttempts takes the attempts the upstream filters reported so far (tollgate.attempts,
// forwarded with every response message of a request with a fallback plan). Each report is
// checked against the plan: a number the plan has, that target's cluster, a known state, a
// status for an answered attempt, no negative token count. An invalid set is refused whole
// (ErrAttemptReport) and marks the exchange: it then settles without attempt reports.
func (x *Exchange) ObserveAttempts(reports []AttemptReport) error {
	if len(reports) == 0 {
		return nil
	}
	if x.fwd == nil || x.fwd.Plan == nil {
		x.attempts.invalid = true
		return fmt.Errorf("%w: attempts reported for a request without a fallback plan", ErrAttemptReport)
	}
	if x.attempts.invalid {
		return nil
	}
	plan := x.fwd.Plan
	out := make([]AttemptReport, 0, len(reports))
	for _, r := range reports {
		if err := checkReport(plan, r); err != nil {
			x.attempts.invalid = true
			return err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b AttemptReport) int { return a.N - b.N })
	for i := 1; i < len(out); i++ {
		if out[i].N == out[i-1].N {
			x.attempts.invalid = true
			return fmt.Errorf("%w: attempt %d reported twice", ErrAttemptReport, out[i].N)
		}
	}
	x.attempts.reports = out
	return nil
}

func checkReport(p *Plan, r AttemptReport) error {
	switch {
	case r.N < 1 || r.N > len(p.Targets):
		return fmt.Errorf("%w: attempt %d is outside the plan of %d targets", ErrAttemptReport, r.N, len(p.Targets))
	case r.Cluster != p.Targets[r.N-1].Cluster:
		return fmt.Errorf("%w: attempt %d went to another cluster than the plan's", ErrAttemptReport, r.N)
	case r.InputTokens < 0 || r.OutputTokens < 0 || r.CachedInputTokens < 0 || r.CacheWriteTokens < 0:
		return fmt.Errorf("%w: attempt %d reports negative tokens", ErrAttemptReport, r.N)
	}
	switch r.State {
	case AttemptSent, AttemptRefused:
		if r.Status != 0 || r.UsageSeen {
			return fmt.Errorf("%w: attempt %d reports a response in state %s", ErrAttemptReport, r.N, r.State)
		}
	case AttemptAnswered, AttemptComplete:
		if r.Status < 100 || r.Status > 599 {
			return fmt.Errorf("%w: attempt %d has no valid status", ErrAttemptReport, r.N)
		}
	default:
		return fmt.Errorf("%w: attempt %d has an unknown state", ErrAttemptReport, r.N)
	}
	return nil
}

// serving returns the report of the attempt whose response the client got (the last one
// Envoy made) and its target; ok is false when no valid report arrived.
func (x *Exchange) serving() (r AttemptReport, t *model, ok bool) {
	if x.fwd == nil || x.fwd.Plan == nil || x.attempts.invalid || len(x.attempts.reports) == 0 {
		return AttemptReport{}, nil, false
	}
	r = x.attempts.reports[len(x.attempts.reports)-1]
	return r, x.fwd.targets[r.N-1], true
}

// attemptOutcome adjusts a plan's settlement outcome to its serving attempt: that attempt's
// own usage (when it reported any) priced for its target. Failed attempts reported no usage
// and cost nothing. Without a valid report the outcome stays the downstream's, priced at the
// dearest target (the Forward's price).
func (x *Exchange) attemptOutcome(o Outcome) Outcome {
	r, t, ok := x.serving()
	if !ok {
		return o
	}
	o.price = &t.price
	if r.State == AttemptComplete && r.UsageSeen {
		o.Usage = llm.Usage{InputTokens: r.InputTokens, OutputTokens: r.OutputTokens,
			CachedInputTokens: r.CachedInputTokens, CacheWriteTokens: r.CacheWriteTokens}
		o.UsageSeen, o.Ended = true, r.Ended
		x.used, x.seen = o.Usage, true
	}
	return o
}

// outcomeOf classifies one attempt for the audit event; last marks the attempt the client got.
func (x *Exchange) outcomeOf(r AttemptReport, last bool) string {
	switch {
	case r.State == AttemptRefused:
		return OutcomeRefused
	case r.State == AttemptSent:
		return OutcomeNoAnswer
	case r.Status < 200 || r.Status >= 400:
		return OutcomeFailed
	case r.State == AttemptComplete || (last && x.respEOS):
		return OutcomeServed
	default:
		return OutcomeCut
	}
}

// auditAttempts lists the attempts in the audit event, and names the serving attempt's
// provider and model. Clusters, addresses and keys stay out of it.
func (x *Exchange) auditAttempts(e *audit.Event) {
	_, t, ok := x.serving()
	if !ok {
		return
	}
	for i, a := range x.attempts.reports {
		tg := x.fwd.targets[a.N-1]
		e.Attempts = append(e.Attempts, audit.Attempt{N: a.N, Provider: tg.provider.name, Model: tg.upstream,
			Status: a.Status, Outcome: x.outcomeOf(a, i == len(x.attempts.reports)-1)})
	}
	e.Provider, e.ModelServed = t.provider.name, x.servedBy(t)
}

// attemptSummary names the serving attempt's provider and model in the summary.
func (x *Exchange) attemptSummary(s *Summary) {
	_, t, ok := x.serving()
	if !ok {
		return
	}
	s.Attempts = len(x.attempts.reports)
	s.Provider, s.ProviderType, s.UpstreamModel, s.ModelServed = t.provider.name, t.provider.typ, t.upstream, x.servedBy(t)
}

// servedBy is the model the provider reported, else the target's upstream model.
func (x *Exchange) servedBy(t *model) string {
	if x.usage != nil && x.usage.Model() != "" {
		return x.usage.Model()
	}
	return t.upstream
}
