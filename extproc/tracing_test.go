package extproc_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// Trace contexts as a client (or Envoy) sends them.
const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	clientParent  = "00-" + clientTraceID + "-" + clientSpanID + "-01"
	envoyTraceID  = "0af7651916cd43dd8448eb211c80319c"
	envoySpanID   = "b7ad6b7169203331"
	envoyParent   = "00-" + envoyTraceID + "-" + envoySpanID + "-01"
)

// tracedHarness serves fx with tracing into an in-memory exporter.
func tracedHarness(t testing.TB, fx *policytest.Fixture, opts ...extproc.Option) (*harness, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	return tracedWith(t, fx, exp, opts...), exp
}

// tracedWith serves fx with tracing into exp.
func tracedWith(t testing.TB, fx *policytest.Fixture, exp sdktrace.SpanExporter, opts ...extproc.Option) *harness {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	core, logs := observer.New(zapcore.DebugLevel)
	opts = append([]extproc.Option{extproc.WithClock(func() time.Time { return fx.Now }), extproc.WithTracing(tp)}, opts...)
	h := serveServer(t, fx, extproc.New(fixedSource{fx.Snapshot}, zap.New(core), opts...))
	h.logs = logs
	return h
}

// onlySpan waits for the stream to end and returns its one span.
func onlySpan(t *testing.T, h *harness, exp *tracetest.InMemoryExporter) tracetest.SpanStub {
	t.Helper()
	h.waitIdle(t)
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	exp.Reset()
	return spans[0]
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// endStream half-closes the stream and waits for the server's end.
func endStream(t *testing.T, s extprocv3.ExternalProcessor_ProcessClient) {
	t.Helper()
	require.NoError(t, s.CloseSend())
	_, _ = s.Recv()
}

// TestSpanParentAndAttributes: a forwarded, settled request gives one SERVER span, child of
// the client's traceparent (its tracestate kept), named by the GenAI convention, with the
// content-free GenAI attributes and Tollgate's own.
func TestSpanParentAndAttributes(t *testing.T) {
	h, exp := tracedHarness(t, policytest.NewWithBudget(t, budget.NewMemoryLedger(), nil))
	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"], "traceparent", clientParent, "tracestate", "vendor=opaque"))
	require.NotNil(t, roundTrip(t, s, reqBody(`{"model":"fast","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`)).GetRequestBody())
	roundTrip(t, s, respHeaders("200", "content-type", "application/json"))
	roundTrip(t, s, respBody(`{"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}`, true))
	endStream(t, s)
	sp := onlySpan(t, h, exp)

	require.Equal(t, clientTraceID, sp.Parent.TraceID().String())
	require.Equal(t, clientSpanID, sp.Parent.SpanID().String())
	require.True(t, sp.Parent.IsRemote())
	require.Equal(t, clientTraceID, sp.SpanContext.TraceID().String(), "same trace")
	require.Equal(t, "vendor=opaque", sp.SpanContext.TraceState().String())
	require.Equal(t, trace.SpanKindServer, sp.SpanKind)
	require.Equal(t, "chat fast", sp.Name)
	require.Equal(t, extproc.TracerName, sp.InstrumentationScope.Name)
	require.Equal(t, codes.Unset, sp.Status.Code)

	a := attrs(sp)
	for k, want := range map[string]any{
		"gen_ai.operation.name":      "chat",
		"gen_ai.provider.name":       "openai", // the provider type's well-known name
		"gen_ai.system":              "openai",
		"tollgate.provider":          "oai", // the configured name
		"gen_ai.request.model":       "fast",
		"gen_ai.response.model":      "gpt-4o-mini-2024-07-18", // as the provider reported it
		"gen_ai.usage.input_tokens":  int64(12),
		"gen_ai.usage.output_tokens": int64(7),
		"http.response.status_code":  int64(200),
		"http.request.method":        "POST",
		"tollgate.decision":          "allow",
		"tollgate.reason":            "ok",
		"tollgate.endpoint":          "chat_completions",
		"tollgate.request_id":        "req-123",
		"tollgate.key_id":            h.fx.IDs["valid"],
		"tollgate.team":              "platform",
		"tollgate.cost_usd_micros":   int64(12*1 + 7*2),
		"tollgate.settle_rule":       "usage",
		"tollgate.stream":            false,
		"tollgate.complete":          true,
	} {
		v, ok := a[attribute.Key(k)]
		require.True(t, ok, "attribute %s missing", k)
		require.Equal(t, want, v.AsInterface(), k)
	}
	require.Contains(t, a, attribute.Key("tollgate.reserved_usd_micros"))
}

// TestSpanParentSources: Envoy's own ext_proc span, in the gRPC stream's metadata, is the
// parent when Envoy traces; the request's traceparent otherwise; no trace context gives a
// root span.
func TestSpanParentSources(t *testing.T) {
	tests := []struct {
		name             string
		metadata, header string
		wantTrace        string
		wantParent       string
	}{
		{"request header", "", clientParent, clientTraceID, clientSpanID},
		{"envoy metadata", envoyParent, "", envoyTraceID, envoySpanID},
		{"metadata before header", envoyParent, clientParent, envoyTraceID, envoySpanID},
		{"malformed metadata falls back", "00-zz-zz-01", clientParent, clientTraceID, clientSpanID},
		{"none", "", "", "", ""},
		{"malformed header", "", "00-" + clientTraceID + "-0000000000000000-01", "", ""},
	}
	h, exp := tracedHarness(t, policytest.New(t))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.metadata != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", tc.metadata)
			}
			s, err := h.client.Process(ctx)
			require.NoError(t, err)
			var extra []string
			if tc.header != "" {
				extra = []string{"traceparent", tc.header}
			}
			roundTrip(t, s, chatHeaders("sk-not-a-virtual-key", extra...))
			endStream(t, s)
			sp := onlySpan(t, h, exp)
			require.True(t, sp.SpanContext.IsValid())
			if tc.wantTrace == "" {
				require.False(t, sp.Parent.IsValid(), "a root span")
				return
			}
			require.Equal(t, tc.wantTrace, sp.SpanContext.TraceID().String())
			require.Equal(t, tc.wantParent, sp.Parent.SpanID().String())
		})
	}
}

// TestSpanStatus: gateway and upstream failures are errors (with error.type from a closed
// set); a denial is a decision, not an error.
func TestSpanStatus(t *testing.T) {
	tests := []struct {
		name      string
		opts      []extproc.Option
		run       func(t *testing.T, h *harness, s extprocv3.ExternalProcessor_ProcessClient)
		wantCode  codes.Code
		wantType  string
		wantName  string
		wantAttrs map[string]any
	}{
		{
			name: "upstream 503",
			run: func(t *testing.T, h *harness, s extprocv3.ExternalProcessor_ProcessClient) {
				roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
				roundTrip(t, s, reqBody(`{"model":"fast","messages":[]}`))
				roundTrip(t, s, respHeaders("503", "content-type", "application/json"))
				roundTrip(t, s, respBody(`{"error":{"message":"overloaded"}}`, true))
				endStream(t, s)
			},
			wantCode: codes.Error, wantType: "503", wantName: "chat fast",
			wantAttrs: map[string]any{"http.response.status_code": int64(503), "tollgate.decision": "allow"},
		},
		{
			name: "audit trail down (gateway 503)",
			opts: []extproc.Option{extproc.WithAudit(extproc.AuditConfig{Auditor: &fakeAuditor{healthy: false}, FailClosed: true})},
			run: func(t *testing.T, h *harness, s extprocv3.ExternalProcessor_ProcessClient) {
				require.EqualValues(t, 503, roundTrip(t, s, chatHeaders(h.fx.Keys["valid"])).GetImmediateResponse().GetStatus().GetCode())
				endStream(t, s)
			},
			wantCode: codes.Error, wantType: string(policy.ReasonAuditUnavailable), wantName: "tollgate chat_completions",
			wantAttrs: map[string]any{"http.response.status_code": int64(503), "tollgate.decision": "error"},
		},
		{
			name: "protocol fault",
			run: func(t *testing.T, h *harness, s extprocv3.ExternalProcessor_ProcessClient) {
				require.NoError(t, s.Send(reqBody(`{}`)))
				_, err := s.Recv()
				require.Error(t, err)
			},
			wantCode: codes.Error, wantType: "FailedPrecondition", wantName: "tollgate unknown",
		},
		{
			name: "unknown key is a denial",
			run: func(t *testing.T, h *harness, s extprocv3.ExternalProcessor_ProcessClient) {
				require.EqualValues(t, 401, roundTrip(t, s, chatHeaders("sk-whatever")).GetImmediateResponse().GetStatus().GetCode())
				endStream(t, s)
			},
			wantCode: codes.Unset, wantName: "tollgate chat_completions",
			wantAttrs: map[string]any{"http.response.status_code": int64(401), "tollgate.decision": "deny", "tollgate.reason": "invalid_key"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, exp := tracedHarness(t, policytest.New(t), tc.opts...)
			s, _ := h.open(t)
			tc.run(t, h, s)
			sp := onlySpan(t, h, exp)
			require.Equal(t, tc.wantCode, sp.Status.Code, "status %+v", sp.Status)
			require.Equal(t, tc.wantName, sp.Name)
			a := attrs(sp)
			if tc.wantType != "" {
				require.Equal(t, tc.wantType, a["error.type"].AsString())
			} else {
				require.NotContains(t, a, attribute.Key("error.type"))
			}
			for k, want := range tc.wantAttrs {
				require.Equal(t, want, a[attribute.Key(k)].AsInterface(), k)
			}
		})
	}
}

// TestSpansCarryNoSecrets: no prompt or completion text, virtual key, provider key or
// header (beyond the trace context) appears anywhere in a span: name, attributes, events,
// status, links or resource, for allowed, redacted, refused and streamed requests.
func TestSpansCarryNoSecrets(t *testing.T) {
	prompt := "my secret prompt about the merger"
	completion := "the confidential completion text"
	h, exp := tracedHarness(t, policytest.NewWithBudget(t, budget.NewMemoryLedger(), policytest.Guarded))
	marker := "cookie-value-that-must-not-leak"
	// A streamed chat whose response is redacted, one the guardrail blocks, a bad key.
	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"], "traceparent", clientParent, "cookie", marker, "x-api-key", h.fx.Keys["limited"]))
	s2, _ := h.open(t)
	roundTrip(t, s2, chatHeaders(h.fx.Keys["valid"], "cookie", marker))
	roundTrip(t, s2, reqBody(`{"model":"fast","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"`+prompt+` bob@example.com"}]}`))
	roundTrip(t, s2, respHeaders("200", "content-type", "text/event-stream"))
	roundTrip(t, s2, respBody("data: {\"choices\":[{\"delta\":{\"content\":\""+completion+" alice@example.com\"}}]}\n\n", false))
	roundTrip(t, s2, respBody("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n", true))
	endStream(t, s2)
	s3, _ := h.open(t)
	roundTrip(t, s3, chatHeaders(h.fx.Keys["valid"]))
	require.EqualValues(t, 403, roundTrip(t, s3, reqBody(`{"model":"fast","messages":[{"role":"user","content":"`+prompt+` AKIAIOSFODNN7EXAMPLE"}]}`)).GetImmediateResponse().GetStatus().GetCode())
	endStream(t, s3)
	endStream(t, s)
	h.waitIdle(t)

	spans := exp.GetSpans()
	require.Len(t, spans, 3)
	raw, err := json.Marshal(spans)
	require.NoError(t, err)
	out := string(raw)
	require.Contains(t, out, h.fx.IDs["valid"], "the serialization holds the attributes")
	for name, k := range h.fx.Keys {
		require.NotContains(t, out, k, "virtual key %s leaked into a span", name)
		require.NotContains(t, out, k[17:], "virtual key secret %s leaked into a span", name)
	}
	for _, k := range []string{policytest.OpenAIKey, policytest.AnthropicKey, policytest.AzureKey, policytest.Pepper,
		prompt, completion, "bob@example.com", "alice@example.com", "AKIAIOSFODNN7EXAMPLE", marker, "Bearer"} {
		require.NotContains(t, out, k)
	}
	for _, sp := range spans {
		require.Empty(t, sp.Events)
		for _, kv := range sp.Attributes {
			require.False(t, strings.HasPrefix(string(kv.Key), "http.request.header"), "no header in %s", kv.Key)
		}
	}
}
