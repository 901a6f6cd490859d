package e2e

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// otlpHTTP is an OTLP/HTTP trace receiver: it keeps every span exported to it.
type otlpHTTP struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(raw, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			o.spans = append(o.spans, ss.GetSpans()...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("content-type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// inTrace returns the spans exported so far in the trace traceID (hex).
func (o *otlpHTTP) inTrace(traceID string) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, sp := range o.spans {
		if hex.EncodeToString(sp.GetTraceId()) == traceID {
			out = append(out, sp)
		}
	}
	return out
}

// TestTraceThroughEnvoy (issue 12 item 3): with the OTEL_* variables set, a request sent
// through Envoy with a W3C traceparent yields a span, exported over OTLP/HTTP, in the client's
// trace and under its span, carrying the GenAI and Tollgate attributes and neither the prompt,
// the completion nor a key.
func TestTraceThroughEnvoy(t *testing.T) {
	rcv := &otlpHTTP{}
	collector := httptest.NewServer(rcv)
	t.Cleanup(collector.Close)
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "OTEL_") {
			t.Setenv(name, "")
		}
	}
	// The stack's tollgate inherits the test's environment.
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	s := startStack(t)

	const traceID, parentID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	key := s.keys["demo"]
	r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", true),
		"authorization", "Bearer "+key, "content-type", "application/json",
		"traceparent", "00-"+traceID+"-"+parentID+"-01", "tracestate", "client=e2e")
	require.Equal(t, 200, r.status, "body: %s", r.body)

	var spans []*tracepb.Span
	require.Eventually(t, func() bool { spans = rcv.inTrace(traceID); return len(spans) > 0 },
		15*time.Second, 50*time.Millisecond, "no span of trace %s reached the collector; logs:\n%s", traceID, s.logs())
	require.Len(t, spans, 1)
	sp := spans[0]
	require.Equal(t, parentID, hex.EncodeToString(sp.GetParentSpanId()))
	require.Equal(t, "client=e2e", sp.GetTraceState())
	require.Equal(t, tracepb.Span_SPAN_KIND_SERVER, sp.GetKind())
	require.Equal(t, "chat fast", sp.GetName())
	require.NotEqual(t, tracepb.Status_STATUS_CODE_ERROR, sp.GetStatus().GetCode())

	attrs := map[string]any{}
	for _, a := range sp.GetAttributes() {
		if _, ok := a.GetValue().GetValue().(*commonpb.AnyValue_IntValue); ok {
			attrs[a.GetKey()] = a.GetValue().GetIntValue()
		} else {
			attrs[a.GetKey()] = a.GetValue().GetStringValue()
		}
	}
	for k, want := range map[string]any{
		"gen_ai.operation.name":     "chat",
		"gen_ai.provider.name":      "mock-openai",
		"gen_ai.request.model":      "fast",
		"gen_ai.response.model":     "mock-gpt-4o-mini",
		"http.response.status_code": int64(200),
		"tollgate.decision":         "allow",
		"tollgate.reason":           "ok",
		"tollgate.key_id":           key[4:16],
		"tollgate.settle_rule":      "usage",
	} {
		require.Equal(t, want, attrs[k], "%s in %v", k, attrs)
	}
	for _, k := range []string{"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "tollgate.cost_usd_micros"} {
		require.Positive(t, attrs[k], "%s in %v", k, attrs)
	}

	raw, err := protojson.Marshal(sp)
	require.NoError(t, err)
	for name, secret := range s.secrets() {
		require.NotContains(t, string(raw), secret, "%s in the span", name)
	}
	require.NotContains(t, string(raw), "Bearer")
}
