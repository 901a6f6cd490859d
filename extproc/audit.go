package extproc

import (
	"net"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"

	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/guard"
)

// Auditor receives one event per stream; *audit.Emitter satisfies it. Emit must not block.
type Auditor interface {
	Emit(*audit.Event)
	Healthy() bool
}

// AuditConfig wires audit events into the server.
type AuditConfig struct {
	Auditor Auditor
	// Content hashes or seals prompt and completion into the event (default off).
	Content audit.ContentPolicy
	// V4Bits and V6Bits truncate the client address (-1 drops it).
	V4Bits, V6Bits int
	// FailClosed refuses new requests (503) while the audit trail cannot be written.
	FailClosed bool
}

// WithAudit emits an audit event for every stream.
func WithAudit(c AuditConfig) Option { return func(s *Server) { s.audit = &c } }

// maxContentCapture bounds what is kept of a body for hashed or sealed content.
const maxContentCapture = 16 << 20

// captureContent reports whether prompt and completion bytes must be kept for the event.
func (s *Server) captureContent() bool {
	return s.audit != nil && s.audit.Content.Mode() != audit.ContentOff
}

// clientAddr reads Envoy's source.address attribute (request_attributes in envoy.yaml).
func clientAddr(req *extprocv3.ProcessingRequest) string {
	attrs := req.GetAttributes()["envoy.filters.http.ext_proc"]
	v := attrs.GetFields()["source.address"].GetStringValue()
	if host, _, err := net.SplitHostPort(v); err == nil {
		return host
	}
	return v
}

// event builds the stream's audit event. It holds ids, counts and decisions only: never a
// key, a credential header, or prompt or completion text (content is hashed or sealed by
// the content policy, when configured).
func (st *stream) event(c *AuditConfig) *audit.Event {
	e := &audit.Event{
		V:          audit.SchemaVersion,
		Time:       st.start.UTC(),
		RequestID:  st.requestID,
		Endpoint:   st.endpoint,
		Status:     st.status,
		Reason:     string(st.reason),
		Complete:   st.respEOS,
		BytesIn:    int64(st.reqBytes),
		BytesOut:   st.respBytes,
		ClientAddr: audit.TruncateAddr(st.client, c.V4Bits, c.V6Bits),
		Latency: audit.Latency{
			Total:     audit.Millis(st.now().Sub(st.start)),
			FirstByte: audit.Millis(st.firstByte),
		},
		Decision: audit.Decision(decisionOf(st)),
	}
	if !st.forwardedAt.IsZero() && !st.upstreamAt.IsZero() {
		e.Latency.Upstream = audit.Millis(st.upstreamAt.Sub(st.forwardedAt))
	}
	if st.adm != nil {
		e.KeyID, e.Team = st.adm.Key.ID, st.adm.Key.Team
	}
	if st.fwd != nil {
		e.Provider, e.ModelRequested, e.ModelServed, e.Stream = st.fwd.Provider, st.fwd.Model, st.fwd.UpstreamModel, st.fwd.Stream
		if st.usage != nil && st.usage.Model() != "" {
			e.ModelServed = st.usage.Model()
		}
	}
	e.Tokens = audit.Tokens{Input: st.used.InputTokens, Output: st.used.OutputTokens,
		CachedInput: st.used.CachedInputTokens, CacheWrite: st.used.CacheWriteTokens}
	e.CostUSDMicros, e.SettleRule = st.settled.CostMicros, st.settled.Rule
	if st.hold != nil {
		e.ReservedUSDMicros = st.hold.Estimate.CostMicros
		e.Limits = st.hold.Limits()
	}
	if st.limit != nil {
		e.Limits = append(e.Limits, st.limit.Kind)
	}
	var response []guard.Finding
	if st.rg != nil {
		response = st.rg.findings
	}
	for _, ev := range st.guardOutcome().Evidence(response) {
		e.Guardrails = append(e.Guardrails, audit.GuardrailFinding{Rule: ev.Rule, Action: ev.Action, Count: ev.Count})
	}
	return e
}

// emitAudit sends the event. Content is hashed or sealed here, after the stream ended, never
// on the data path.
func (s *Server) emitAudit(st *stream) {
	if s.audit == nil || s.audit.Auditor == nil {
		return
	}
	e := st.event(s.audit)
	if err := s.audit.Content.Apply(e, st.prompt, st.completion); err != nil {
		st.log.Error("audit content policy failed; the event is emitted without content", zap.Error(err))
	}
	s.audit.Auditor.Emit(e)
}

// auditUnavailable reports whether requests must be refused because the audit trail is not
// writable and the config says to fail closed.
func (s *Server) auditUnavailable() bool {
	return s.audit != nil && s.audit.FailClosed && s.audit.Auditor != nil && !s.audit.Auditor.Healthy()
}
