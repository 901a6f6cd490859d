package extproc

import (
	"net"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"

	"github.com/tollgate-ai/tollgate/policy/audit"
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

// emitAudit sends the event. Content is hashed or sealed here, after the stream ended, never
// on the data path.
func (s *Server) emitAudit(st *stream) {
	if s.audit == nil || s.audit.Auditor == nil {
		return
	}
	e := st.x.AuditEvent(s.audit.V4Bits, s.audit.V6Bits)
	prompt, completion := st.x.Content()
	if err := s.audit.Content.Apply(e, prompt, completion); err != nil {
		st.log.Error("audit content policy failed; the event is emitted without content", zap.Error(err))
	}
	s.audit.Auditor.Emit(e)
}

// auditUnavailable reports whether requests must be refused because the audit trail is not
// writable and the config says to fail closed.
func (s *Server) auditUnavailable() bool {
	return s.audit != nil && s.audit.FailClosed && s.audit.Auditor != nil && !s.audit.Auditor.Healthy()
}
