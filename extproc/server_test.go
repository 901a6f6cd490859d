package extproc_test

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

type fixedSource struct{ s *policy.Snapshot }

func (f fixedSource) Snapshot() *policy.Snapshot { return f.s }

type harness struct {
	fx     *policytest.Fixture
	srv    *extproc.Server
	client extprocv3.ExternalProcessorClient
	logs   *observer.ObservedLogs
}

// newHarness serves the ext_proc service over bufconn with debug logging captured.
func newHarness(t testing.TB) *harness {
	t.Helper()
	return serve(t, policytest.New(t))
}

func serve(t testing.TB, fx *policytest.Fixture) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	srv := extproc.New(fixedSource{fx.Snapshot}, zap.New(core), extproc.WithClock(func() time.Time { return fx.Now }))
	h := serveServer(t, fx, srv)
	h.logs = logs
	return h
}

// serveServer serves srv over bufconn.
func serveServer(t testing.TB, fx *policytest.Fixture, srv *extproc.Server) *harness {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(extproc.GRPCServerOptions()...)
	srv.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(extproc.MaxMessageBytes), grpc.MaxCallSendMsgSize(extproc.MaxMessageBytes)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(); gs.Stop() })
	return &harness{fx: fx, srv: srv, client: extprocv3.NewExternalProcessorClient(conn)}
}

func (h *harness) open(t testing.TB) (extprocv3.ExternalProcessor_ProcessClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := h.client.Process(ctx)
	require.NoError(t, err)
	t.Cleanup(cancel)
	return s, cancel
}

// roundTrip sends one message and receives its one reply.
func roundTrip(t testing.TB, s extprocv3.ExternalProcessor_ProcessClient, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	t.Helper()
	require.NoError(t, s.Send(req))
	resp, err := s.Recv()
	require.NoError(t, err)
	return resp
}

// waitIdle waits until the server has finished every stream (and so logged it).
func (h *harness) waitIdle(t testing.TB) {
	t.Helper()
	select {
	case <-h.srv.Idle():
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not finish")
	}
}

func setHeaders(m *extprocv3.HeaderMutation) map[string]string {
	out := map[string]string{}
	for _, h := range m.GetSetHeaders() {
		out[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
	return out
}

// requireRawValuesOnly enforces ENVOY_EXTPROC_NOTES 2c: Envoy reads only raw_value; a value
// would set an empty header and both together fail the request.
func requireRawValuesOnly(t testing.TB, m *extprocv3.HeaderMutation) {
	t.Helper()
	for _, h := range m.GetSetHeaders() {
		require.Empty(t, h.GetHeader().GetValue(), "header %s must use raw_value only", h.GetHeader().GetKey())
		require.NotEmpty(t, h.GetHeader().GetRawValue(), "header %s", h.GetHeader().GetKey())
	}
}

func TestUnknownKeyGetsJSON401(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		req  *extprocv3.ProcessingRequest
		code int
	}{
		{"malformed", chatHeaders("sk-whatever"), 401},
		{"unknown", chatHeaders("tgk_AAAAAAAAAAAA_" + strings.Repeat("b", 49)), 401},
		{"disabled", chatHeaders(h.fx.Keys["disabled"]), 401},
		{"expired", chatHeaders(h.fx.Keys["expired"]), 401},
		{"unknown path", reqHeaders(false, ":path", "/v1/fine_tuning/jobs", ":method", "POST", "authorization", "Bearer "+h.fx.Keys["valid"]), 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := h.open(t)
			resp := roundTrip(t, s, tc.req)
			ir := resp.GetImmediateResponse()
			require.NotNil(t, ir, "expected an ImmediateResponse, got %v", resp)
			require.EqualValues(t, tc.code, ir.GetStatus().GetCode())
			require.Equal(t, "application/json", setHeaders(ir.GetHeaders())["content-type"])
			requireRawValuesOnly(t, ir.GetHeaders())
			require.True(t, json.Valid(ir.GetBody()))
			require.Contains(t, string(ir.GetBody()), `"error"`)
		})
	}
}

func TestChatStreamLifecycle(t *testing.T) {
	h := newHarness(t)
	s, _ := h.open(t)
	prompt := "my secret prompt about the merger"
	// The client asks for usage itself, so its stream is passed through untouched.
	body := `{"model":"fast","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"` + prompt + `"}]}`

	resp := roundTrip(t, s, chatHeaders(h.fx.Keys["valid"], "x-tollgate-upstream", "anthropic", "content-length", strconv.Itoa(len(body))))
	require.NotNil(t, resp.GetRequestHeaders(), "headers are held for the body decision: %v", resp)
	require.Nil(t, resp.GetRequestHeaders().GetResponse().GetHeaderMutation())

	resp = roundTrip(t, s, reqBody(body))
	cr := resp.GetRequestBody().GetResponse()
	require.NotNil(t, cr)
	require.True(t, cr.GetClearRouteCache(), "re-route on the header we set")
	mut := cr.GetHeaderMutation()
	requireRawValuesOnly(t, mut)
	set := setHeaders(mut)
	require.Equal(t, "openai", set[policy.RoutingHeader])
	require.Equal(t, "Bearer "+policytest.OpenAIKey, set["authorization"])
	require.Equal(t, "identity", set["accept-encoding"])
	newBody := cr.GetBodyMutation().GetBody()
	require.Contains(t, string(newBody), `"model":"gpt-4o-mini"`)
	require.Equal(t, strconv.Itoa(len(newBody)), set["content-length"])
	require.ElementsMatch(t, []string{"x-api-key", "api-key"}, mut.GetRemoveHeaders())
	md := resp.GetDynamicMetadata().GetFields()[extproc.MetadataNamespace].GetStructValue().GetFields()
	require.Equal(t, h.fx.IDs["valid"], md["key_id"].GetStringValue())

	resp = roundTrip(t, s, respHeaders("200", "content-type", "text/event-stream"))
	require.NotNil(t, resp.GetResponseHeaders())
	for i, chunk := range []string{"data: {\"choices\":[{\"delta\":{\"content\":\"Hel", "lo\"}}]}\n\n", "data: [DONE]\n\n"} {
		resp = roundTrip(t, s, respBody(chunk, i == 2))
		require.NotNil(t, resp.GetResponseBody())
		require.Nil(t, resp.GetResponseBody().GetResponse(), "chunks pass through unchanged")
	}
	require.NoError(t, s.CloseSend())
	_, err := s.Recv()
	require.Error(t, err) // io.EOF: the server ended the stream normally
	h.waitIdle(t)

	entries := h.logs.FilterMessage("request").All()
	require.Len(t, entries, 1)
	ctx := entries[0].ContextMap()
	require.Equal(t, "ok", ctx["reason"])
	require.Equal(t, true, ctx["complete"])
	require.Equal(t, h.fx.IDs["valid"], ctx["key_id"])
	requireNoSecrets(t, h, prompt)
}

func TestAnthropicNoVersionGetsDefault(t *testing.T) {
	h := newHarness(t)
	s, _ := h.open(t)
	roundTrip(t, s, reqHeaders(false, ":path", "/v1/messages", ":method", "POST",
		"x-api-key", h.fx.Keys["research"], "content-type", "application/json"))
	resp := roundTrip(t, s, reqBody(`{"model":"claude-haiku","max_tokens":5,"messages":[]}`))
	set := setHeaders(resp.GetRequestBody().GetResponse().GetHeaderMutation())
	require.Equal(t, policytest.AnthropicKey, set["x-api-key"])
	require.Equal(t, policy.DefaultAnthropicVer, set["anthropic-version"])
	require.Equal(t, "anthropic", set[policy.RoutingHeader])
}

func TestModelsAnsweredInHeadersPhase(t *testing.T) {
	h := newHarness(t)
	s, _ := h.open(t)
	resp := roundTrip(t, s, reqHeaders(true, ":path", "/v1/models", ":method", "GET", "authorization", "Bearer "+h.fx.Keys["limited"]))
	ir := resp.GetImmediateResponse()
	require.EqualValues(t, 200, ir.GetStatus().GetCode())
	require.JSONEq(t, `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":`+strconv.FormatInt(h.fx.Now.Unix(), 10)+`,"owned_by":"oai"}]}`, string(ir.GetBody()))
}

func TestBadBodiesGet4xx(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"malformed json", `{"model": "fast",`, 400},
		{"missing model", `{"messages":[]}`, 400},
		{"binary", "\x00\xff\xfe", 400},
		{"too large", `{"model":"fast","pad":"` + strings.Repeat("x", 70<<10) + `"}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := h.open(t)
			roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
			ir := roundTrip(t, s, reqBody(tc.body)).GetImmediateResponse()
			require.NotNil(t, ir)
			require.EqualValues(t, tc.code, ir.GetStatus().GetCode())
			require.True(t, json.Valid(ir.GetBody()))
		})
	}
}

func TestProtocolFaultsFailTheStream(t *testing.T) {
	h := newHarness(t)
	t.Run("streamed request body mode", func(t *testing.T) {
		s, _ := h.open(t)
		req := chatHeaders(h.fx.Keys["valid"])
		req.ProtocolConfig.RequestBodyMode = filterv3.ProcessingMode_STREAMED
		require.NoError(t, s.Send(req))
		_, err := s.Recv()
		require.Equal(t, codes.FailedPrecondition, status.Code(err))
	})
	t.Run("body before headers", func(t *testing.T) {
		s, _ := h.open(t)
		require.NoError(t, s.Send(reqBody(`{}`)))
		_, err := s.Recv()
		require.Equal(t, codes.FailedPrecondition, status.Code(err))
	})
	t.Run("response body before response headers", func(t *testing.T) {
		s, _ := h.open(t)
		roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
		roundTrip(t, s, reqBody(`{"model":"fast","messages":[]}`))
		require.NoError(t, s.Send(respBody("x", true)))
		_, err := s.Recv()
		require.Equal(t, codes.FailedPrecondition, status.Code(err))
	})
	t.Run("response headers twice", func(t *testing.T) {
		s, _ := h.open(t)
		roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
		roundTrip(t, s, reqBody(`{"model":"fast","messages":[]}`))
		roundTrip(t, s, respHeaders("200", "content-type", "application/json"))
		require.NoError(t, s.Send(respHeaders("200")))
		_, err := s.Recv()
		require.Equal(t, codes.FailedPrecondition, status.Code(err))
	})
}

// TestEnvoyLocalRepliesPassThrough: Envoy opens an ext_proc stream for a reply it makes itself
// (a 431 for oversized headers, a 400 for a malformed request, a 413 for a body over its
// buffer). Failing that stream made Envoy drop its reply, leaving the client with none (issue
// 14 item 1). Nothing was forwarded, so the reply passes as it is.
func TestEnvoyLocalRepliesPassThrough(t *testing.T) {
	h := newHarness(t)
	t.Run("before any request headers", func(t *testing.T) {
		s, _ := h.open(t)
		resp := roundTrip(t, s, respHeaders("431", "content-type", "text/plain"))
		require.NotNil(t, resp.GetResponseHeaders())
		require.Nil(t, resp.GetResponseHeaders().GetResponse().GetHeaderMutation())
		body := roundTrip(t, s, respBody("Request Header Fields Too Large", true))
		require.NotNil(t, body.GetResponseBody())
		require.Nil(t, body.GetResponseBody().GetResponse(), "passed unchanged")
		require.NoError(t, s.CloseSend())
		_, _ = s.Recv()
		h.waitIdle(t)
		line := h.logs.FilterMessage("request").All()
		got := line[len(line)-1].ContextMap()
		require.Equal(t, "envoy_local_reply", got["reason"])
		require.EqualValues(t, 431, got["status"])
	})
	t.Run("admitted, before the body was forwarded", func(t *testing.T) {
		s, _ := h.open(t)
		roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
		resp := roundTrip(t, s, respHeaders("413", "content-type", "application/json"))
		require.NotNil(t, resp.GetResponseHeaders())
		require.NotNil(t, roundTrip(t, s, respBody(`{"error":{}}`, true)).GetResponseBody())
	})
}

func TestClientAbortEndsStream(t *testing.T) {
	h := newHarness(t)
	s, cancel := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
	roundTrip(t, s, reqBody(`{"model":"fast","stream":true}`))
	roundTrip(t, s, respHeaders("200"))
	roundTrip(t, s, respBody("data: {}\n\n", false))
	cancel()
	h.waitIdle(t)
	entries := h.logs.FilterMessage("request").All()
	require.Len(t, entries, 1)
	require.Equal(t, false, entries[0].ContextMap()["complete"])
}

// requireNoSecrets serializes every captured log entry and checks that no virtual key,
// provider key or prompt text appears.
func requireNoSecrets(t testing.TB, h *harness, prompt string) {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var all strings.Builder
	for _, e := range h.logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		require.NoError(t, err)
		all.Write(buf.Bytes())
	}
	out := all.String()
	require.NotEmpty(t, out)
	for name, k := range h.fx.Keys {
		require.NotContains(t, out, k, "virtual key %s leaked into logs", name)
		require.NotContains(t, out, k[17:], "virtual key secret %s leaked into logs", name)
	}
	for _, k := range []string{policytest.OpenAIKey, policytest.AnthropicKey, policytest.AzureKey, policytest.Pepper} {
		require.NotContains(t, out, k)
	}
	require.NotContains(t, out, prompt)
}

// TestInjectedUsageChunkIsRemoved: Tollgate adds include_usage to settle the budget, but the
// client did not ask for the usage chunk, and the common client loop
// (chunk.choices[0].delta.content) fails on a chunk without choices (issue 15 item 1). The
// chunk is read for settlement and removed from what the client receives; every other byte
// passes, even when events are cut across chunks.
func TestInjectedUsageChunkIsRemoved(t *testing.T) {
	for _, opts := range []string{``, `"stream_options":{"include_usage":false},`, `"stream_options":null,`} {
		h := newHarness(t)
		s, _ := h.open(t)
		roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
		resp := roundTrip(t, s, reqBody(`{"model":"fast","stream":true,`+opts+`"messages":[]}`))
		require.Contains(t, string(resp.GetRequestBody().GetResponse().GetBodyMutation().GetBody()), `"include_usage":true`)
		roundTrip(t, s, respHeaders("200", "content-type", "text/event-stream"))
		content := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
		usage := "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}\n\n"
		stream := content + usage + "data: [DONE]\n\n"
		var got strings.Builder
		for i := 0; i < len(stream); i += 11 {
			end := min(i+11, len(stream))
			got.WriteString(released(roundTrip(t, s, respBody(stream[i:end], end == len(stream))), stream[i:end]))
		}
		require.Equal(t, content+"data: [DONE]\n\n", got.String(), opts)
		require.NoError(t, s.CloseSend())
		_, _ = s.Recv()
		h.waitIdle(t)
		line := h.logs.FilterMessage("request").All()[0].ContextMap()
		require.EqualValues(t, 12, line["input_tokens"], "the usage chunk was still read for settlement")
		require.Equal(t, "usage", line["settle_rule"])
	}
}
