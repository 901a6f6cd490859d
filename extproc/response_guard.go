package extproc

import (
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tollgate-ai/tollgate/policy"

	"github.com/tollgate-ai/tollgate/policy/guard"
)

// maxGuardedJSON bounds a non-streamed response held for scanning. Larger responses are cut
// off (the stream is reset) rather than released unscanned.
const maxGuardedJSON = 16 << 20

// responseGuard applies the request's guardrail profile to the response body. Unlike the
// pass-through path, it must inspect each chunk before replying: text the guardrails have
// not seen never leaves. A streamed response is rewritten event by event, holding back only
// the tail that could still start a match; a JSON response is held whole and released
// (redacted or not) with its last chunk.
type responseGuard struct {
	sse      *guard.SSERedactor
	buf      []byte // JSON response so far
	findings []guard.Finding
}

// startResponseGuard decides at the response headers whether the body is guarded. It
// returns an ImmediateResponse when a redactor cannot be built: the body is not released
// unscanned (fail closed), and the headers have not gone out yet.
func (st *stream) startResponseGuard(sse bool) *extprocv3.ProcessingResponse {
	if st.fwd.Guard == nil || st.fwd.Guard.Profile == "" || st.status < 200 || st.status > 299 {
		return nil
	}
	if !sse {
		st.rg = &responseGuard{}
		return nil
	}
	r, err := st.snap.StreamGuard(st.fwd)
	if err != nil || r == nil {
		st.log.Error("response guardrail unavailable; refusing the response", zap.Error(err))
		return st.immediate(st.snap.GuardFailure(st.adm))
	}
	st.rg = &responseGuard{sse: r}
	return nil
}

// guardedBody scans one response chunk and returns the reply that replaces it.
func (st *stream) guardedBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	rg, chunk, eos := st.rg, b.GetBody(), b.GetEndOfStream()
	var out []byte
	if rg.sse != nil {
		out = rg.sse.Feed(chunk)
		if eos {
			out = append(out, rg.sse.Finish()...)
			rg.findings = rg.sse.Findings()
		}
		if st.chunks != nil {
			out, _ = st.filterChunks(out, eos)
		}
		return bodyReplacement(out), nil
	}
	if len(rg.buf)+len(chunk) > maxGuardedJSON {
		st.log.Warn("response too large to scan; resetting it instead of releasing it unscanned")
		return nil, protoError("guarded response over %d bytes", maxGuardedJSON)
	}
	rg.buf = append(rg.buf, chunk...)
	if !eos {
		return bodyReplacement(nil), nil // held until the whole body is scanned
	}
	red, findings, err := st.snap.ScanResponse(st.fwd, rg.buf)
	if err != nil {
		st.log.Warn("response could not be scanned; resetting it instead of releasing it unscanned", zap.Error(err))
		return nil, protoError("unscannable guarded response")
	}
	rg.findings = findings
	if red != nil {
		return bodyReplacement(red), nil
	}
	return bodyReplacement(rg.buf), nil
}

// bodyReplacement replaces a streamed chunk with out (nothing when out is empty).
func bodyReplacement(out []byte) *extprocv3.ProcessingResponse {
	bm := &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
	if len(out) == 0 {
		bm.Mutation = &extprocv3.BodyMutation_ClearBody{ClearBody: true}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
		ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{BodyMutation: bm}},
	}}
}

// guardOutcome is the request's guardrail outcome: the forwarded request's, or the findings
// of a request a guardrail refused; nil when no profile applied.
func (st *stream) guardOutcome() *policy.Guard {
	if st.fwd != nil {
		return st.fwd.Guard
	}
	return st.guard
}

// guardFields summarize guardrail outcomes for the request log line: the profile, the request
// decision and the evidence (rule ids, actions, counts; the same as the audit event's), never
// matched text.
func (st *stream) guardFields() []zap.Field {
	g := st.guardOutcome()
	if g == nil {
		return nil
	}
	fields := []zap.Field{zap.String(fieldGuardProfile, g.Profile), zap.String(fieldGuardDecision, g.Decision)}
	var response []guard.Finding
	if st.rg != nil {
		response = st.rg.findings
	}
	if ev := g.Evidence(response); len(ev) > 0 {
		fields = append(fields, zap.Array(fieldGuardFindings, evidenceList(ev)))
	}
	return fields
}

// evidenceList logs evidence as {rule, action, count} objects.
type evidenceList []policy.GuardEvidence

func (el evidenceList) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, e := range el {
		_ = enc.AppendObject(zapcore.ObjectMarshalerFunc(func(o zapcore.ObjectEncoder) error {
			o.AddString("rule", e.Rule)
			o.AddString("action", e.Action)
			o.AddInt("count", e.Count)
			return nil
		}))
	}
	return nil
}
