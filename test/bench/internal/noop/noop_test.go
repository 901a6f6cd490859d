package noop

import (
	"context"
	"net"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// TestProcessAnswersEachMessageEmpty drives a whole request through the server over gRPC:
// one empty reply of the matching kind per message, nothing mutated.
func TestProcessAnswersEachMessageEmpty(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(ServerOptions()...)
	extprocv3.RegisterExternalProcessorServer(gs, Server{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(context.Background())
	require.NoError(t, err)

	tests := []struct {
		name  string
		req   *extprocv3.ProcessingRequest
		check func(*extprocv3.ProcessingResponse) bool
	}{
		{"request headers", &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetRequestHeaders() != nil }},
		{"request body", &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte("{}"), EndOfStream: true}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetRequestBody() != nil }},
		{"response headers", &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseHeaders() != nil }},
		{"response body", &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte("data: x\n\n")}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseBody() != nil }},
		{"response trailers", &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseTrailers() != nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, s.Send(tc.req))
			resp, err := s.Recv()
			require.NoError(t, err)
			require.True(t, tc.check(resp), "reply %v", resp)
			require.Nil(t, resp.GetImmediateResponse())
			require.Nil(t, resp.GetRequestBody().GetResponse().GetHeaderMutation())
			require.Nil(t, resp.GetRequestBody().GetResponse().GetBodyMutation())
		})
	}
	require.Nil(t, Reply(&extprocv3.ProcessingRequest{}))
}
