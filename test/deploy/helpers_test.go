package deploy

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// exchange drives one non-streamed chat completion through ext_proc as Envoy 1.40 sends it
// (lower-case header keys, values in RawValue): request headers and body, then, unless
// Tollgate answered with an immediate response, the upstream's response reporting 100 input
// and 10 output tokens. It returns the immediate response's status, or 0.
func exchange(t *testing.T, conn *grpc.ClientConn, key, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	require.NoError(t, err)
	hdr := func(kv ...string) *corev3.HeaderMap {
		hm := &corev3.HeaderMap{}
		for i := 0; i < len(kv); i += 2 {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
		}
		return hm
	}
	msgs := []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hdr(
			":method", "POST", ":path", "/v1/chat/completions", ":authority", "llm.internal", "authorization", "Bearer "+key,
			"content-type", "application/json")}},
			ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: filterv3.ProcessingMode_BUFFERED, ResponseBodyMode: filterv3.ProcessingMode_STREAMED}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}},
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: hdr(
			":status", "200", "content-type", "application/json")}}},
		{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
			Body: []byte(`{"usage":{"prompt_tokens":100,"completion_tokens":10,"total_tokens":110}}`), EndOfStream: true}}},
	}
	for _, m := range msgs {
		require.NoError(t, s.Send(m))
		resp, err := s.Recv()
		require.NoError(t, err)
		if ir := resp.GetImmediateResponse(); ir != nil {
			return int(ir.GetStatus().GetCode())
		}
	}
	require.NoError(t, s.CloseSend())
	_, _ = s.Recv() // io.EOF: the stream is over and its audit event and settlement follow
	return 0
}
