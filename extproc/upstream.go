package extproc

import (
	"errors"
	"io"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tollgate-ai/tollgate/policy"
)

// StageHeader is the gRPC metadata key that tells Tollgate which ext_proc filter opened a
// stream: "upstream" for the per-attempt filter on provider clusters (envoy.yaml sets it with
// grpc_service.initial_metadata), absent (or "downstream") for the request's own filter.
const StageHeader = "x-tollgate-stage"

// Stages.
const (
	stageDownstream = "downstream"
	stageUpstream   = "upstream"
)

// stageOf returns the stream's stage, or an error for a value Tollgate does not know.
func stageOf(srv extprocv3.ExternalProcessor_ProcessServer) (string, error) {
	md, _ := metadata.FromIncomingContext(srv.Context())
	vals := md.Get(StageHeader)
	switch {
	case len(vals) == 0:
		return stageDownstream, nil
	case len(vals) == 1 && (vals[0] == stageDownstream || vals[0] == stageUpstream):
		return vals[0], nil
	}
	return "", status.Errorf(codes.InvalidArgument, "unknown %s", StageHeader)
}

// processUpstream handles one fallback attempt's stream (the upstream filter on a provider
// cluster): one reply per message, each mapped from the policy.Attempt's decision. A refused
// attempt gets an ImmediateResponse, which Envoy neither sends nor retries; a protocol fault
// fails the stream, which (failure_mode_allow: false) fails the attempt closed.
func (s *Server) processUpstream(srv extprocv3.ExternalProcessor_ProcessServer, snap *policy.Snapshot) error {
	log := s.log.With(zap.String("stage", stageUpstream))
	var at *policy.Attempt
	defer func() {
		if at == nil {
			return
		}
		if r, ok := at.Report(); ok {
			log.Debug("fallback attempt", zap.Int("attempt", r.N), zap.String(fieldProvider, at.Provider()),
				zap.String("state", r.State), zap.Int(fieldStatus, r.Status))
		}
	}()
	for {
		req, err := srv.Recv()
		if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
			return nil
		}
		if err != nil {
			return err
		}
		if pc := req.GetProtocolConfig(); pc != nil {
			if err := checkProtocol(pc); err != nil {
				s.log.Error("envoy upstream ext_proc filter misconfigured", zap.Error(err))
				return status.Error(codes.FailedPrecondition, err.Error())
			}
		}
		if _, first := req.GetRequest().(*extprocv3.ProcessingRequest_RequestHeaders); first != (at == nil) {
			return protoError(policy.ErrProtocol)
		}
		var resp *extprocv3.ProcessingResponse
		switch r := req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			hm := newHeaderMap(r.RequestHeaders.GetHeaders())
			in := attemptInput(req, hm.Get("x-request-id"))
			var rep *policy.Reply
			if at, rep = snap.NewAttempt(s.now(), in); rep != nil {
				log.Warn("fallback attempt refused: it does not match the request's plan",
					zap.String(fieldRequestID, policy.SanitizeRequestID(in.RequestID)), zap.Int("attempt", in.N))
				resp = immediateResponse(rep)
				break
			}
			hc, err := at.RequestHeaders(r.RequestHeaders.GetEndOfStream())
			if err != nil {
				return protoError(err)
			}
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
				Response: &extprocv3.CommonResponse{HeaderMutation: headerChanges(hc.Set, hc.Remove)},
			}}}
		case *extprocv3.ProcessingRequest_RequestBody:
			out, set, rep, err := at.RequestBody(r.RequestBody.GetBody(), r.RequestBody.GetEndOfStream())
			switch {
			case err != nil:
				return protoError(err)
			case rep != nil:
				log.Warn("fallback attempt refused: its body is not the admitted request's")
				resp = immediateResponse(rep)
			default:
				cr := &extprocv3.CommonResponse{HeaderMutation: headerChanges(set, nil)}
				if out != nil {
					cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
				}
				resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cr}}}
			}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			hm := newHeaderMap(r.ResponseHeaders.GetHeaders())
			code, _ := strconv.Atoi(hm.Get(":status"))
			if err := at.ResponseHeaders(code, hm.Get("content-type"), r.ResponseHeaders.GetEndOfStream()); err != nil {
				return protoError(err)
			}
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
		case *extprocv3.ProcessingRequest_ResponseBody:
			b := r.ResponseBody
			if !b.GetEndOfStream() {
				// Reply at once, then account: the chunk waits one round trip only.
				if err := srv.Send(continueResponseBody); err != nil {
					return err
				}
				if err := at.ResponseChunk(b.GetBody(), false); err != nil {
					return protoError(err)
				}
				continue
			}
			// The last chunk's reply carries the attempt's final report (with its usage).
			if err := at.ResponseChunk(b.GetBody(), true); err != nil {
				return protoError(err)
			}
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
		case *extprocv3.ProcessingRequest_RequestTrailers:
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
		default:
			return status.Errorf(codes.FailedPrecondition, "unexpected ext_proc message %T", r)
		}
		if _, trailers := req.GetRequest().(*extprocv3.ProcessingRequest_RequestTrailers); !trailers {
			resp.DynamicMetadata = attemptMetadata(at)
		}
		if err := srv.Send(resp); err != nil {
			return err
		}
	}
}

// headerChanges builds a header mutation (RawValue only, see headerOption).
func headerChanges(set []policy.Header, remove []string) *extprocv3.HeaderMutation {
	m := &extprocv3.HeaderMutation{RemoveHeaders: remove, SetHeaders: make([]*corev3.HeaderValueOption, 0, len(set))}
	for _, h := range set {
		m.SetHeaders = append(m.SetHeaders, headerOption(h))
	}
	return m
}
