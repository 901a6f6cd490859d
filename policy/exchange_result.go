package policy

import (
	"time"

	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/guard"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

// Summary is what a finished exchange did, for the request log line and the metrics: ids,
// counts and decisions, never content or secrets. Call it after End.
type Summary struct {
	Reason Reason
	// Decision is "allow" (forwarded, whatever the upstream answered), "deny" (refused by
	// policy) or "error" (a gateway or upstream failure), as in the audit event.
	Decision string
	Status   int
	Method   string
	Path     string // without the query string
	Endpoint string // e.g. chat_completions; "unknown" when the path is not one
	// UpstreamEndpoint is the endpoint the provider received when Tollgate translated the
	// request to its API (e.g. messages for chat_completions on Anthropic); "" otherwise.
	UpstreamEndpoint string
	// Operation is the endpoint's gen_ai.operation.name ("chat", "embeddings", ...; "" for
	// one that is not a GenAI operation, such as the model list).
	Operation string
	RequestID string
	KeyID     string
	Team      string

	Forwarded     bool
	Provider      string // the provider's configured name
	ProviderType  string // openai, anthropic, azure-openai or openai-compatible
	Model         string // as requested
	UpstreamModel string
	ModelServed   string // as the provider reported it (UpstreamModel when it reported none)
	Stream        bool
	Complete      bool // the response reached its end of stream

	RequestBytes  int
	ResponseBytes int64
	Duration      time.Duration
	FirstByte     time.Duration

	Usage     llm.Usage
	UsageSeen bool
	Settled   Settlement
	// Reserved is the reservation's cost estimate (HasHold), FailedOpen that the ledger could
	// not answer and the limits involved let the request through.
	Reserved   int64
	HasHold    bool
	FailedOpen bool
	// Limit is the limit a 429 names.
	Limit *TrippedLimit

	// GuardProfile and GuardDecision are the request scan's ("" without a profile);
	// Evidence is what the guardrails did, request and response (see Guard.Evidence).
	GuardProfile  string
	GuardDecision string
	Evidence      []GuardEvidence

	// Attempts counts the attempts of a request with a fallback plan (0 otherwise); Provider,
	// ProviderType, UpstreamModel and ModelServed are then the serving attempt's.
	Attempts int
}

// Summary reports the exchange. It is meant for after End.
func (x *Exchange) Summary() Summary {
	s := Summary{
		Reason: x.reason, Decision: x.decision(), Status: x.status, Method: x.method, Path: x.path,
		Endpoint: x.endpoint.String(), Operation: x.endpoint.Spec().Operation, RequestID: x.requestID,
		Complete: x.respEOS, RequestBytes: x.reqBytes, ResponseBytes: x.respBytes,
		Duration: x.opts.Now().Sub(x.start), FirstByte: x.firstByte,
		Usage: x.used, UsageSeen: x.seen, Settled: x.settled, Limit: x.limit,
	}
	if x.adm != nil && x.adm.Key != nil {
		s.KeyID, s.Team = x.adm.Key.ID, x.adm.Key.Team
	}
	if f := x.fwd; f != nil {
		s.Forwarded = true
		s.Provider, s.ProviderType, s.Model, s.UpstreamModel, s.Stream = f.Provider, f.ProviderType, f.Model, f.UpstreamModel, f.Stream
		s.ModelServed = x.modelServed()
		s.UpstreamEndpoint = f.upstreamName()
		x.attemptSummary(&s)
	}
	if h := x.hold; h != nil {
		s.HasHold, s.Reserved, s.FailedOpen = true, h.Estimate.CostMicros, h.FailedOpen
	}
	if g := x.guardOutcome(); g != nil {
		s.GuardProfile, s.GuardDecision = g.Profile, g.Decision
		s.Evidence = g.Evidence(x.responseFindings())
	}
	return s
}

// upstreamName names the endpoint the provider received when the request was translated, ""
// otherwise (so the events of untranslated requests keep their shape).
func (f *Forward) upstreamName() string {
	if f.tr == nil {
		return ""
	}
	return f.Upstream.String()
}

// modelServed is the model the provider reported, else the upstream model asked for.
func (x *Exchange) modelServed() string {
	if x.usage != nil && x.usage.Model() != "" {
		return x.usage.Model()
	}
	return x.fwd.UpstreamModel
}

// decision is allow, deny or error.
func (x *Exchange) decision() string {
	switch {
	case x.reason == ReasonOK:
		return "allow"
	case x.status >= 500 || x.reason == ReasonInternal || x.reason == ReasonIncomplete:
		return "error"
	default:
		return "deny"
	}
}

// guardOutcome is the forwarded request's guardrail outcome, or the findings of a request a
// guardrail refused; nil when no profile applied.
func (x *Exchange) guardOutcome() *Guard {
	if x.fwd != nil {
		return x.fwd.Guard
	}
	return x.guard
}

func (x *Exchange) responseFindings() []guard.Finding {
	if x.rg == nil {
		return nil
	}
	return x.rg.findings
}

// AuditEvent builds the exchange's audit event (schema in policy/audit/SCHEMA.md): ids,
// counts and decisions only, never a key, a credential header or prompt or completion text.
// v4Bits and v6Bits truncate the client address (-1 drops it). The content policy (hash or
// seal the prompt and completion) is applied by the caller with Content.
func (x *Exchange) AuditEvent(v4Bits, v6Bits int) *audit.Event {
	e := &audit.Event{
		V:          audit.SchemaVersion,
		Time:       x.start.UTC(),
		RequestID:  x.requestID,
		Endpoint:   x.endpoint.String(),
		Status:     x.status,
		Reason:     string(x.reason),
		Complete:   x.respEOS,
		BytesIn:    int64(x.reqBytes),
		BytesOut:   x.respBytes,
		ClientAddr: audit.TruncateAddr(x.client, v4Bits, v6Bits),
		Latency: audit.Latency{
			Total:     audit.Millis(x.opts.Now().Sub(x.start)),
			FirstByte: audit.Millis(x.firstByte),
		},
		Decision: audit.Decision(x.decision()),
	}
	if !x.forwardedAt.IsZero() && !x.upstreamAt.IsZero() {
		e.Latency.Upstream = audit.Millis(x.upstreamAt.Sub(x.forwardedAt))
	}
	if x.adm != nil && x.adm.Key != nil {
		e.KeyID, e.Team = x.adm.Key.ID, x.adm.Key.Team
	}
	if f := x.fwd; f != nil {
		e.Provider, e.ModelRequested, e.ModelServed, e.Stream = f.Provider, f.Model, x.modelServed(), f.Stream
		e.UpstreamEndpoint = f.upstreamName()
	}
	e.Tokens = audit.Tokens{Input: x.used.InputTokens, Output: x.used.OutputTokens,
		CachedInput: x.used.CachedInputTokens, CacheWrite: x.used.CacheWriteTokens}
	e.CostUSDMicros, e.SettleRule = x.settled.CostMicros, x.settled.Rule
	if x.hold != nil {
		e.ReservedUSDMicros = x.hold.Estimate.CostMicros
		e.Limits = x.hold.Limits()
	}
	if x.limit != nil {
		e.Limits = append(e.Limits, x.limit.Kind)
	}
	for _, ev := range x.guardOutcome().Evidence(x.responseFindings()) {
		e.Guardrails = append(e.Guardrails, audit.GuardrailFinding{Rule: ev.Rule, Action: ev.Action, Count: ev.Count})
	}
	x.auditAttempts(e)
	return e
}

// Content returns the prompt and the completion kept for the audit content policy (both nil
// unless CaptureContent).
func (x *Exchange) Content() (prompt, completion []byte) { return x.prompt, x.completion }
