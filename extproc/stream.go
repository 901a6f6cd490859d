package extproc

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

// settleTimeout bounds the ledger write at the end of a stream.
const settleTimeout = 2 * time.Second

// phase is where a stream is in the HTTP exchange. Envoy sends request headers, then (for a
// BUFFERED body) one request body message, then response headers and streamed chunks.
type phase int

const (
	phaseStart        phase = iota // expecting request headers
	phaseRequestBody               // admitted, expecting the buffered body
	phaseForwarded                 // routed upstream, expecting response headers
	phaseResponseBody              // streaming the response
	phaseDone                      // an ImmediateResponse was sent
	phaseLocalReply                // passing through a reply Envoy made itself
)

// stream is the state of one ext_proc stream (one HTTP request). It is used by one goroutine.
type stream struct {
	ctx   context.Context
	snap  *policy.Snapshot
	log   *zap.Logger
	now   func() time.Time
	start time.Time
	phase phase

	method    string
	path      string // without the query string
	requestID string // sanitized x-request-id
	endpoint  string // e.g. chat_completions; "unknown" when the path is not one
	client    string // client address (Envoy's source.address attribute)
	// forwardedAt and upstreamAt time the upstream: body reply sent, response headers seen.
	forwardedAt, upstreamAt time.Time
	// prompt and completion are kept only when the audit content policy needs them.
	capture            bool
	prompt, completion []byte
	adm                *policy.Admission
	fwd                *policy.Forward
	hold               *policy.Hold
	rg                 *responseGuard // non-nil when the response body is guarded
	guard              *policy.Guard  // findings of a request refused by a guardrail
	limit              *policy.TrippedLimit
	usage              *llm.UsageParser
	// chunks removes the usage chunk Tollgate asked for from the client's stream (nil when
	// the client asked for usage itself, or the response is not a stream).
	chunks *llm.UsageChunkFilter
	// Outcome, filled by conclude.
	used      llm.Usage
	usageSeen bool
	settled   policy.Settlement
	reason    policy.Reason
	status    int // HTTP status sent to the client (ours, or the upstream's)
	reqBytes  int
	// Response accounting.
	respBytes int64
	respEOS   bool
	firstByte time.Duration
}

func newStream(ctx context.Context, snap *policy.Snapshot, log *zap.Logger, now func() time.Time) *stream {
	return &stream{ctx: ctx, snap: snap, log: log, now: now, start: now()}
}

// protoError is a protocol fault: Envoy sent something this state cannot accept. It fails the
// HTTP request (fail closed), which is right: the exchange is no longer what we decided on.
func protoError(format string, a ...any) error {
	return status.Errorf(codes.FailedPrecondition, format, a...)
}

func (st *stream) fail(r policy.Reason) {
	st.reason = r
	st.phase = phaseDone
}

func (st *stream) handle(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return st.requestHeaders(r.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		return st.requestBody(r.RequestBody)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return st.responseHeaders(r.ResponseHeaders)
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}, nil
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}, nil
	default:
		return nil, protoError("unexpected ext_proc message %T", r)
	}
}

func (st *stream) requestHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	if st.phase != phaseStart {
		return nil, protoError("request headers in phase %d", st.phase)
	}
	hm := newHeaderMap(h.GetHeaders())
	rh := policy.RequestHeaders{
		Method:      hm.Get(":method"),
		Path:        hm.Get(":path"),
		Get:         hm.Get,
		Names:       hm.Names(),
		EndOfStream: h.GetEndOfStream(),
	}
	st.method, st.path = rh.Method, pathOnly(rh.Path)
	ep, _ := llm.Classify(rh.Method, rh.Path) // for logs and audit; policy decides
	st.endpoint = ep.String()
	if st.requestID = sanitizeID(hm.Get("x-request-id")); st.requestID != "" {
		st.log = st.log.With(zap.String(fieldRequestID, st.requestID))
	}
	if ce := st.log.Check(zap.DebugLevel, "request headers"); ce != nil {
		ce.Write(zap.Object("headers", hm))
	}
	adm, rep := st.snap.Admit(st.now(), rh)
	if adm != nil {
		st.adm = adm
		st.log = st.log.With(zap.String(fieldKeyID, adm.Key.ID), zap.String(fieldTeam, adm.Key.Team))
	}
	if rep != nil {
		return st.immediate(rep), nil
	}
	st.phase = phaseRequestBody
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}, nil
}

func (st *stream) requestBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	if st.phase != phaseRequestBody {
		return nil, protoError("request body in phase %d", st.phase)
	}
	if !b.GetEndOfStream() {
		// checkProtocol refuses any mode but BUFFERED, which sends the body in one message.
		return nil, protoError("request body arrived in parts; the filter must use BUFFERED mode")
	}
	body := b.GetBody()
	st.reqBytes = len(body)
	if st.capture {
		st.prompt = body
	}
	fwd, rep := st.snap.Route(st.adm, body)
	if rep != nil {
		return st.immediate(rep), nil
	}
	hold, rep := st.snap.Reserve(st.ctx, st.adm, fwd, st.now())
	if rep != nil {
		return st.immediate(rep), nil
	}
	if hold != nil && hold.FailedOpen {
		st.log.Warn("budget ledger unavailable; limits configured to fail open let the request through")
	}
	st.fwd, st.hold = fwd, hold
	st.forwardedAt = st.now()
	st.reason = policy.ReasonOK
	st.phase = phaseForwarded
	return forwardResponse(st.adm, fwd), nil
}

func (st *stream) responseHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	hm := newHeaderMap(h.GetHeaders())
	switch st.phase {
	case phaseForwarded:
	case phaseStart, phaseRequestBody:
		// Envoy's own local reply, for a request it refused before Tollgate forwarded anything
		// (a 431 for oversized headers, a 400 for a malformed request, a 413 body): Envoy opens
		// the stream for it, and failing the stream would make it drop its reply and leave the
		// client with none. Nothing was forwarded, so nothing is guarded or settled, and the
		// reply carries no provider key: it passes as it is.
		return st.localReply(hm), nil
	default:
		return nil, protoError("response headers in phase %d", st.phase)
	}
	st.status, _ = strconv.Atoi(hm.Get(":status"))
	st.upstreamAt = st.now()
	st.phase = phaseResponseBody
	sse := strings.HasPrefix(strings.ToLower(hm.Get("content-type")), "text/event-stream")
	st.usage = llm.NewUsageParser(st.fwd.Endpoint, sse)
	if sse && st.fwd.DropUsageChunk {
		st.chunks = &llm.UsageChunkFilter{}
	}
	if h.GetEndOfStream() {
		st.respEOS = true
	} else if rep := st.startResponseGuard(sse); rep != nil {
		return rep, nil
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}, nil
}

// localReply passes Envoy's own reply through. Its status is Envoy's; the reason says whose.
func (st *stream) localReply(hm headerMap) *extprocv3.ProcessingResponse {
	st.status, _ = strconv.Atoi(hm.Get(":status"))
	st.reason = policy.ReasonEnvoyLocalReply
	st.phase = phaseLocalReply
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
}

// responseBody answers one streamed response chunk. Unguarded chunks are released at once
// and inspected after (send is called first); guarded ones are scanned before the reply.
func (st *stream) responseBody(b *extprocv3.HttpBody, send func(*extprocv3.ProcessingResponse) error) error {
	if st.phase == phaseLocalReply {
		st.respBytes += int64(len(b.GetBody()))
		return send(continueResponseBody)
	}
	if st.phase != phaseResponseBody {
		return protoError("response body in phase %d", st.phase)
	}
	if st.rg == nil {
		resp := continueResponseBody
		if st.chunks != nil {
			if out, same := st.filterChunks(b.GetBody(), b.GetEndOfStream()); !same {
				resp = bodyReplacement(out)
			}
		}
		if err := send(resp); err != nil {
			return err
		}
		st.observeResponseBody(b)
		return nil
	}
	resp, err := st.guardedBody(b)
	st.observeResponseBody(b)
	if err != nil {
		return err
	}
	return send(resp)
}

// filterChunks passes out (a chunk, or what the redactor releases in its place) through the
// usage chunk filter. same reports that out passes unchanged.
func (st *stream) filterChunks(out []byte, eos bool) ([]byte, bool) {
	out, same := st.chunks.Feed(out)
	if eos {
		if rest := st.chunks.Finish(); len(rest) > 0 {
			out, same = append(append([]byte(nil), out...), rest...), false
		}
	}
	return out, same
}

// observeResponseBody accounts a streamed chunk. O(len(chunk)).
func (st *stream) observeResponseBody(b *extprocv3.HttpBody) {
	if st.respBytes == 0 && len(b.GetBody()) > 0 {
		st.firstByte = st.now().Sub(st.start)
	}
	st.respBytes += int64(len(b.GetBody()))
	if st.capture && len(st.completion)+len(b.GetBody()) <= maxContentCapture {
		st.completion = append(st.completion, b.GetBody()...)
	}
	if st.usage != nil {
		st.usage.Feed(b.GetBody())
	}
	if b.GetEndOfStream() {
		st.respEOS = true
	}
}

// conclude reads the final usage and has policy settle the request once the stream is over,
// on a context detached from the stream (which is already cancelled when the client went
// away).
func (st *stream) conclude() {
	if st.usage != nil {
		st.usage.Finish()
		st.used, st.usageSeen = st.usage.Usage()
	}
	if st.fwd == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(st.ctx), settleTimeout)
	defer cancel()
	o := policy.Outcome{Usage: st.used, UsageSeen: st.usageSeen, Status: st.status}
	if st.usage != nil {
		o.Ended = st.usage.Ended()
	}
	res, err := st.fwd.Settle(ctx, st.hold, o)
	st.settled = res
	if err != nil {
		st.log.Error("budget settle failed and could not be queued for retry; the reservation expires on its own", zap.Error(err))
	}
}

// settleFields log the charge.
func (st *stream) settleFields() []zap.Field {
	var fields []zap.Field
	if st.hold != nil {
		fields = append(fields, zap.Int64(fieldReservedMicros, st.hold.Estimate.CostMicros))
	}
	if st.settled.Rule != "" {
		fields = append(fields, zap.String(fieldSettleRule, st.settled.Rule),
			zap.Int64(fieldCostMicros, st.settled.CostMicros), zap.Int64(fieldTokens, st.settled.Tokens))
	}
	if st.usageSeen {
		fields = append(fields, zap.Int64(fieldInputTokens, st.used.InputTokens), zap.Int64(fieldOutputTokens, st.used.OutputTokens),
			zap.Int64(fieldCachedTokens, st.used.CachedInputTokens+st.used.CacheWriteTokens))
	}
	return fields
}

func (st *stream) immediate(rep *policy.Reply) *extprocv3.ProcessingResponse {
	st.reason = rep.Reason
	st.limit = rep.Limit
	st.guard = rep.Guard
	st.status = rep.Status
	st.phase = phaseDone
	return immediateResponse(rep)
}

// finish writes the one summary line of the stream. It never holds content or secrets.
func (st *stream) finish() {
	st.conclude()
	fields := make([]zap.Field, 0, 24)
	fields = append(fields,
		zap.String(fieldReason, string(st.reason)),
		zap.String(fieldMethod, st.method),
		zap.String(fieldPath, st.path),
		zap.Int(fieldStatus, st.status),
		zap.Duration(fieldDuration, st.now().Sub(st.start)),
		zap.Int(fieldRequestBytes, st.reqBytes),
		zap.Int64(fieldResponseBytes, st.respBytes),
	)
	fields = append(fields, zap.String(fieldEndpoint, st.endpoint))
	fields = append(fields, st.settleFields()...)
	fields = append(fields, st.guardFields()...)
	if st.fwd != nil {
		fields = append(fields,
			zap.String(fieldModel, st.fwd.Model),
			zap.String(fieldUpstreamModel, st.fwd.UpstreamModel),
			zap.String(fieldProvider, st.fwd.Provider),
			zap.Bool(fieldStream, st.fwd.Stream),
			zap.Bool(fieldComplete, st.respEOS),
			zap.Duration(fieldFirstByte, st.firstByte),
		)
	}
	lvl := zap.InfoLevel
	if st.reason == "" {
		// The stream ended before any decision (client gone during the headers phase).
		st.reason = "incomplete"
		fields[0] = zap.String(fieldReason, string(st.reason))
	}
	if st.status >= http.StatusInternalServerError {
		lvl = zap.WarnLevel
	}
	if ce := st.log.Check(lvl, "request"); ce != nil {
		ce.Write(fields...)
	}
}

// checkProtocol refuses an Envoy filter configured in modes Tollgate cannot enforce in: a
// request body that is not BUFFERED would reach the upstream before the decision.
func checkProtocol(pc *extprocv3.ProtocolConfiguration) error {
	if m := pc.GetRequestBodyMode(); m != filterv3.ProcessingMode_BUFFERED {
		return fmt.Errorf("request_body_mode is %s; tollgate needs BUFFERED", m)
	}
	switch m := pc.GetResponseBodyMode(); m {
	case filterv3.ProcessingMode_STREAMED, filterv3.ProcessingMode_NONE, filterv3.ProcessingMode_BUFFERED:
	default:
		return fmt.Errorf("response_body_mode is %s; tollgate supports STREAMED", m)
	}
	if pc.GetSendBodyWithoutWaitingForHeaderResponse() {
		return fmt.Errorf("send_body_without_waiting_for_header_response must be false")
	}
	return nil
}

// sanitizeID keeps a request id only if it looks like one: Envoy may pass a client-sent
// x-request-id through, and it lands in logs and the audit trail.
func sanitizeID(id string) string {
	if len(id) > 128 {
		return "invalid"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "invalid"
		}
	}
	return id
}

// pathOnly drops the query string, which may carry tokens, before a path is logged.
func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}
