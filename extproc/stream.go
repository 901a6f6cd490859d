package extproc

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-ai/tollgate/policy"
)

// stream adapts one ext_proc stream (one HTTP request) to its policy.Exchange: protobuf in,
// Exchange calls, protobuf out. It decides nothing. It is used by one goroutine.
type stream struct {
	x    *policy.Exchange
	log  *zap.Logger
	span streamSpan
}

// protoError is a protocol fault: Envoy sent something the exchange cannot accept. It fails
// the HTTP request (fail closed), which is right: the exchange is no longer what was decided.
func protoError(err error) error {
	return status.Error(codes.FailedPrecondition, err.Error())
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
		return nil, status.Errorf(codes.FailedPrecondition, "unexpected ext_proc message %T", r)
	}
}

func (st *stream) requestHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	hm := newHeaderMap(h.GetHeaders())
	st.span.start(hm)
	rep, err := st.x.RequestHeaders(policy.RequestHeaders{
		Method:      hm.Get(":method"),
		Path:        hm.Get(":path"),
		Get:         hm.Get,
		Names:       hm.Names(),
		EndOfStream: h.GetEndOfStream(),
	})
	if err != nil {
		return nil, protoError(err)
	}
	if id := st.x.RequestID(); id != "" {
		st.log = st.log.With(zap.String(fieldRequestID, id))
	}
	if ce := st.log.Check(zap.DebugLevel, "request headers"); ce != nil {
		ce.Write(zap.Object("headers", hm))
	}
	if a := st.x.Admission(); a != nil && a.Key != nil {
		st.log = st.log.With(zap.String(fieldKeyID, a.Key.ID), zap.String(fieldTeam, a.Key.Team))
	}
	if rep != nil {
		return immediateResponse(rep), nil
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}, nil
}

func (st *stream) requestBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	fwd, rep, err := st.x.RequestBody(b.GetBody(), b.GetEndOfStream())
	switch {
	case err != nil:
		return nil, protoError(err)
	case rep != nil:
		return immediateResponse(rep), nil
	}
	if h := st.x.Hold(); h != nil && h.FailedOpen {
		st.log.Warn("budget ledger unavailable; limits configured to fail open let the request through")
	}
	return forwardResponse(st.x.Admission(), fwd), nil
}

func (st *stream) responseHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	hm := newHeaderMap(h.GetHeaders())
	code, _ := strconv.Atoi(hm.Get(":status"))
	rep, err := st.x.ResponseHeaders(code, hm.Get("content-type"), h.GetEndOfStream())
	switch {
	case errors.Is(err, policy.ErrProtocol):
		return nil, protoError(err)
	case rep != nil:
		st.log.Error("response guardrail unavailable; refusing the response", zap.Error(err))
		return immediateResponse(rep), nil
	}
	return responseHeadersReply(st.x.ResponseHeaderEdits()), nil
}

// responseBody answers one streamed response chunk. What the exchange releases without
// looking (unguarded traffic) goes at once and is accounted after the reply (send is called
// first); guarded chunks are scanned before their reply.
func (st *stream) responseBody(b *extprocv3.HttpBody, send func(*extprocv3.ProcessingResponse) error) error {
	chunk, eos := b.GetBody(), b.GetEndOfStream()
	out, replace, err := st.x.ResponseChunk(chunk, eos)
	if err != nil && !errors.Is(err, policy.ErrProtocol) {
		st.log.Warn("response could not be guarded or translated; resetting it instead of releasing it", zap.Error(err))
	}
	if err != nil {
		st.x.Observe(chunk, eos)
		return protoError(err)
	}
	resp := continueResponseBody
	if replace {
		resp = bodyReplacement(out)
	}
	if err := send(resp); err != nil {
		return err
	}
	st.x.Observe(chunk, eos)
	return nil
}

// finish concludes the exchange and writes the one summary line of the stream. It never
// holds content or secrets.
func (st *stream) finish() policy.Summary {
	if err := st.x.End(); err != nil {
		st.log.Error("budget settle failed and could not be queued for retry; the reservation expires on its own", zap.Error(err))
	}
	s := st.x.Summary()
	fields := make([]zap.Field, 0, 28)
	fields = append(fields,
		zap.String(fieldReason, string(s.Reason)),
		zap.String(fieldMethod, s.Method),
		zap.String(fieldPath, s.Path),
		zap.Int(fieldStatus, s.Status),
		zap.Duration(fieldDuration, s.Duration),
		zap.Int(fieldRequestBytes, s.RequestBytes),
		zap.Int64(fieldResponseBytes, s.ResponseBytes),
		zap.String(fieldEndpoint, s.Endpoint),
	)
	if s.UpstreamEndpoint != "" {
		fields = append(fields, zap.String(fieldUpstreamEndpoint, s.UpstreamEndpoint))
	}
	if s.HasHold {
		fields = append(fields, zap.Int64(fieldReservedMicros, s.Reserved))
	}
	if s.Settled.Rule != "" {
		fields = append(fields, zap.String(fieldSettleRule, s.Settled.Rule),
			zap.Int64(fieldCostMicros, s.Settled.CostMicros), zap.Int64(fieldTokens, s.Settled.Tokens))
	}
	if s.UsageSeen {
		fields = append(fields, zap.Int64(fieldInputTokens, s.Usage.InputTokens), zap.Int64(fieldOutputTokens, s.Usage.OutputTokens),
			zap.Int64(fieldCachedTokens, s.Usage.CachedInputTokens+s.Usage.CacheWriteTokens))
	}
	if s.GuardProfile != "" || s.GuardDecision != "" {
		fields = append(fields, zap.String(fieldGuardProfile, s.GuardProfile), zap.String(fieldGuardDecision, s.GuardDecision))
		if len(s.Evidence) > 0 {
			fields = append(fields, zap.Array(fieldGuardFindings, evidenceList(s.Evidence)))
		}
	}
	if s.Forwarded {
		fields = append(fields,
			zap.String(fieldModel, s.Model),
			zap.String(fieldUpstreamModel, s.UpstreamModel),
			zap.String(fieldProvider, s.Provider),
			zap.Bool(fieldStream, s.Stream),
			zap.Bool(fieldComplete, s.Complete),
			zap.Duration(fieldFirstByte, s.FirstByte),
		)
		if s.Attempts > 0 {
			fields = append(fields, zap.Int(fieldAttempts, s.Attempts))
		}
	}
	lvl := zap.InfoLevel
	if s.Status >= http.StatusInternalServerError {
		lvl = zap.WarnLevel
	}
	if ce := st.log.Check(lvl, "request"); ce != nil {
		ce.Write(fields...)
	}
	return s
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

// hidesResponseBodies reports a filter that never sends response bodies (response_body_mode
// NONE): the exchange then refuses requests whose responses it must read.
func hidesResponseBodies(pc *extprocv3.ProtocolConfiguration) bool {
	return pc.GetResponseBodyMode() == filterv3.ProcessingMode_NONE
}
