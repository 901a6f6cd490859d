package main

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver collects the spans of OTLP exports, over HTTP or gRPC, with their service names.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func (r *otlpReceiver) add(req *collectortrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				r.services = append(r.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	var msg collectortrace.ExportTraceServiceRequest
	if err != nil || req.URL.Path != "/v1/traces" || proto.Unmarshal(raw, &msg) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	r.add(&msg)
	w.Header().Set("content-type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func (r *otlpReceiver) got() ([]*tracepb.Span, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...), append([]string(nil), r.services...)
}

// startOTLP serves a receiver for protocol and returns it and its endpoint URL.
func startOTLP(t *testing.T, protocol string) (*otlpReceiver, string) {
	t.Helper()
	r := &otlpReceiver{}
	if protocol == "grpc" {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		gs := grpc.NewServer()
		collectortrace.RegisterTraceServiceServer(gs, r)
		go func() { _ = gs.Serve(lis) }()
		t.Cleanup(gs.Stop)
		return r, "http://" + lis.Addr().String()
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

// tracedCall sends the request headers of a chat request carrying a traceparent and ends the
// stream.
func tracedCall(t *testing.T, target, key, traceparent string) {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	require.NoError(t, err)
	hm := &corev3.HeaderMap{}
	for _, kv := range [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"authorization", "Bearer " + key},
		{"content-type", "application/json"}, {"traceparent", traceparent}} {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	require.NoError(t, s.Send(&extprocv3.ProcessingRequest{
		Request:        &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hm}},
		ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: filterv3.ProcessingMode_BUFFERED, ResponseBodyMode: filterv3.ProcessingMode_STREAMED},
	}))
	_, err = s.Recv()
	require.NoError(t, err)
	require.NoError(t, s.CloseSend())
	_, _ = s.Recv()
}

// clearOTEL unsets every OTEL_* variable the test process inherited (t.Setenv restores them).
func clearOTEL(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "OTEL_") {
			t.Setenv(name, "")
		}
	}
}

// TestServeExportsSpansPerOTELEnv: with OTEL_TRACES_EXPORTER=otlp, `tollgate serve` sends a
// span per stream to the OTLP endpoint of OTEL_EXPORTER_OTLP_ENDPOINT, over the protocol of
// OTEL_EXPORTER_OTLP_PROTOCOL, under OTEL_SERVICE_NAME, in the trace of the request's
// traceparent, and never with the key.
func TestServeExportsSpansPerOTELEnv(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			clearOTEL(t)
			rcv, endpoint := startOTLP(t, protocol)
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_SERVICE_NAME", "tollgate-test")
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20") // ms: export at once, not after 5 s
			tr := newTrial(t)
			tr.start(t)
			key := tr.demoKey(t)
			traceID := "4bf92f3577b34da6a3ce929d0e0e4736"
			tracedCall(t, tr.target, key, "00-"+traceID+"-00f067aa0ba902b7-01")

			var spans []*tracepb.Span
			var services []string
			require.Eventually(t, func() bool {
				spans, services = rcv.got()
				return len(spans) > 0
			}, 10*time.Second, 20*time.Millisecond, "no span exported; logs:\n%s", tr.logs)
			require.Len(t, spans, 1)
			sp := spans[0]
			require.Equal(t, traceID, hex.EncodeToString(sp.GetTraceId()))
			require.Equal(t, "00f067aa0ba902b7", hex.EncodeToString(sp.GetParentSpanId()))
			require.Equal(t, "tollgate chat_completions", sp.GetName())
			require.Equal(t, []string{"tollgate-test"}, services)
			raw, err := proto.Marshal(sp)
			require.NoError(t, err)
			require.NotContains(t, string(raw), key)
			require.NotContains(t, string(raw), key[17:])
			require.Contains(t, tr.logs.String(), `"tracing on"`)
		})
	}
}

// TestTracingFromEnv: tracing is off unless asked for, follows OTEL_TRACES_SAMPLER, and a
// setting Tollgate cannot honour is an error at startup, not a silent lack of traces.
func TestTracingFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		on      bool
		sampled bool
		err     string
	}{
		{name: "off by default"},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}},
		{name: "otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true, sampled: true},
		{name: "otlp grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, on: true, sampled: true},
		{name: "sampler off", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "always_off"}, on: true},
		{name: "zipkin", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: `OTEL_TRACES_EXPORTER "zipkin" is not supported`},
		{name: "http/json", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			err: `OTEL_EXPORTER_OTLP_PROTOCOL "http/json" is not supported`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearOTEL(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // never reached: nothing is exported
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tr, err := openTracing(context.Background(), zap.NewNop())
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			defer tr.shutdown()
			if !tc.on {
				require.Nil(t, tr.provider())
				return
			}
			require.NotNil(t, tr.provider())
			_, sp := tr.provider().Tracer("test").Start(context.Background(), "x")
			require.Equal(t, tc.sampled, sp.SpanContext().IsSampled())
		})
	}
}

// TestServeRefusesBadTracingEnv: a misspelt exporter stops the server with a clear error.
func TestServeRefusesBadTracingEnv(t *testing.T) {
	clearOTEL(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp-http")
	tr := newTrial(t)
	err := run(context.Background(), []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs)
	require.ErrorContains(t, err, `tracing: OTEL_TRACES_EXPORTER "otlp-http" is not supported; use otlp or none`)
}

// TestServeFlushesSpansAtShutdown: spans still queued when the server stops (the batch delay
// is the default 5 s here) are exported before serve returns.
func TestServeFlushesSpansAtShutdown(t *testing.T) {
	clearOTEL(t)
	rcv, endpoint := startOTLP(t, "http/protobuf")
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	tr := newTrial(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs) }()
	waitReady(t, tr)
	tracedCall(t, tr.target, tr.demoKey(t), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	spans, _ := rcv.got()
	require.Empty(t, spans, "still queued")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	spans, services := rcv.got()
	require.Len(t, spans, 1, "flushed at shutdown; logs:\n%s", tr.logs)
	require.Equal(t, []string{"tollgate"}, services, "the default service name")
}
