// Package noop is the bench's do-nothing ext_proc server (path N): Envoy sends it exactly
// the messages it sends Tollgate (the same filter, the same processing modes), and it
// answers each with an empty reply at once. N−D is the protocol's own cost; F−N is what
// Tollgate's policy adds on top.
package noop

import (
	"errors"
	"io"
	"runtime"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Server answers every ext_proc message with an empty reply of the matching kind.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer
}

// ServerOptions are Tollgate's gRPC server settings (extproc.GRPCServerOptions), so the two
// servers differ in what they decide, not in transport settings.
func ServerOptions() []grpc.ServerOption {
	const maxMsg = 32 << 20
	return []grpc.ServerOption{
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.MaxRecvMsgSize(maxMsg),
		grpc.MaxSendMsgSize(maxMsg),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
	}
}

// Replies built once: a reply with no mutation is the same message every time.
var (
	replyRequestHeaders  = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
	replyRequestBody     = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
	replyResponseHeaders = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
	replyResponseBody    = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
	replyRequestTrailers = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	replyRespTrailers    = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
)

// Reply returns the empty reply to req, or nil for a message it does not know.
func Reply(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return replyRequestHeaders
	case *extprocv3.ProcessingRequest_RequestBody:
		return replyRequestBody
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return replyResponseHeaders
	case *extprocv3.ProcessingRequest_ResponseBody:
		return replyResponseBody
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return replyRequestTrailers
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return replyRespTrailers
	}
	return nil
}

// Process answers one stream until Envoy closes it.
func (Server) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := srv.Recv()
		if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
			return nil
		}
		if err != nil {
			return err
		}
		resp := Reply(req)
		if resp == nil {
			return status.Errorf(codes.FailedPrecondition, "unexpected ext_proc message %T", req.GetRequest())
		}
		if err := srv.Send(resp); err != nil {
			return err
		}
	}
}
