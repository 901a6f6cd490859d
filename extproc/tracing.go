package extproc

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tollgate-ai/tollgate/policy"
)

// TracerName is the instrumentation scope of Tollgate's spans.
const TracerName = "github.com/tollgate-ai/tollgate/extproc"

// Span attribute keys of Tollgate's own, beside the GenAI semantic conventions'. Like the
// request log line, they carry ids, counts and decisions, never content or a key.
const (
	attrDecision       = attribute.Key("tollgate.decision")
	attrReason         = attribute.Key("tollgate.reason")
	attrEndpoint       = attribute.Key("tollgate.endpoint")
	attrRequestID      = attribute.Key("tollgate.request_id")
	attrKeyID          = attribute.Key("tollgate.key_id")
	attrTeam           = attribute.Key("tollgate.team")
	attrStream         = attribute.Key("tollgate.stream")
	attrComplete       = attribute.Key("tollgate.complete")
	attrCostMicros     = attribute.Key("tollgate.cost_usd_micros")
	attrReservedMicros = attribute.Key("tollgate.reserved_usd_micros")
	attrSettleRule     = attribute.Key("tollgate.settle_rule")
	attrGuardDecision  = attribute.Key("tollgate.guard.decision")
)

// GenAI semantic-convention attributes (https://opentelemetry.io/docs/specs/semconv/gen-ai/),
// the ones that carry no content. They are spelled out here: semconv packages after 1.41 no
// longer carry the GenAI registry.
const (
	attrGenAIOperation     = attribute.Key("gen_ai.operation.name")
	attrGenAIProvider      = attribute.Key("gen_ai.provider.name")
	attrTollgateProvider   = attribute.Key("tollgate.provider") // the provider's configured name
	attrGenAIRequestModel  = attribute.Key("gen_ai.request.model")
	attrGenAIResponseModel = attribute.Key("gen_ai.response.model")
	attrGenAIInputTokens   = attribute.Key("gen_ai.usage.input_tokens")
	attrGenAIOutputTokens  = attribute.Key("gen_ai.usage.output_tokens")
	// attrGenAISystem is gen_ai.provider.name's name before semantic conventions 1.37; some
	// backends still key their GenAI views on it.
	attrGenAISystem = attribute.Key("gen_ai.system")
)

// traceContext reads W3C traceparent and tracestate, and nothing else (no baggage).
var traceContext propagation.TraceContext

// WithTracing records one span per ext_proc stream with tp's tracer. Without it, or with a
// nil tp, tracing is off and costs the request path nothing: no header lookup, no span, no
// allocation.
func WithTracing(tp trace.TracerProvider) Option {
	return func(s *Server) {
		if tp != nil {
			s.tracer = tp.Tracer(TracerName, trace.WithSchemaURL(semconv.SchemaURL))
		}
	}
}

// streamSpan is one stream's span. It starts when the request headers arrive, since their
// traceparent may be its parent, with the stream's start as its start time, and ends with the
// exchange's summary. With a nil tracer (tracing off) every method returns at once.
type streamSpan struct {
	tracer trace.Tracer
	ctx    context.Context // the gRPC stream's; its metadata may carry Envoy's trace context
	began  time.Time
	span   trace.Span
}

// start opens the span, parented from the trace context Envoy sent. Envoy with tracing on
// puts the context of its own ext_proc client span in the gRPC stream's metadata (the best
// parent: Tollgate's span then sits under Envoy's call to it); the HTTP request's own
// traceparent, the client's, is the fallback, for an Envoy that does not trace.
func (sp *streamSpan) start(h headerMap) {
	if sp.tracer == nil || sp.span != nil {
		return
	}
	ctx := sp.ctx
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("traceparent")) > 0 {
		ctx = traceContext.Extract(ctx, metadataCarrier(md))
	}
	if !trace.SpanContextFromContext(ctx).IsValid() && h.Get("traceparent") != "" {
		ctx = traceContext.Extract(ctx, headerCarrier(h))
	}
	_, sp.span = sp.tracer.Start(ctx, "tollgate", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(sp.began))
}

// end names the span, sets its attributes from the summary and ends it. err is what Process
// returned: a protocol fault marks the span as an error even if the summary does not.
func (sp *streamSpan) end(s policy.Summary, err error, now func() time.Time) {
	if sp.tracer == nil {
		return
	}
	if sp.span == nil { // the stream ended before any request headers: no parent is known
		sp.start(headerMap{})
	}
	op := s.Operation
	name := "tollgate " + s.Endpoint
	if s.Forwarded && op != "" && s.Model != "" {
		name = op + " " + s.Model // the GenAI convention: "{gen_ai.operation.name} {gen_ai.request.model}"
	}
	sp.span.SetName(name)
	sp.span.SetAttributes(spanAttributes(s, op)...)
	if desc, errType := spanError(s, err); desc != "" {
		sp.span.SetAttributes(semconv.ErrorTypeKey.String(errType))
		sp.span.SetStatus(otelcodes.Error, desc)
	}
	sp.span.End(trace.WithTimestamp(now()))
}

// spanAttributes are the GenAI semantic-convention attributes that carry no content, and
// Tollgate's own.
func spanAttributes(s policy.Summary, op string) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 24)
	a = append(a, attrDecision.String(s.Decision), attrReason.String(string(s.Reason)), attrEndpoint.String(s.Endpoint))
	if s.Status != 0 {
		a = append(a, semconv.HTTPResponseStatusCode(s.Status))
	}
	if s.Method != "" {
		a = append(a, semconv.HTTPRequestMethodKey.String(s.Method))
	}
	if s.RequestID != "" {
		a = append(a, attrRequestID.String(s.RequestID))
	}
	if s.KeyID != "" {
		a = append(a, attrKeyID.String(s.KeyID), attrTeam.String(s.Team))
	}
	if op != "" {
		a = append(a, attrGenAIOperation.String(op))
	}
	if s.Forwarded {
		a = append(a,
			attrGenAIProvider.String(genAIProvider(s.ProviderType, s.Provider)), attrGenAISystem.String(genAIProvider(s.ProviderType, s.Provider)),
			attrTollgateProvider.String(s.Provider),
			attrGenAIRequestModel.String(s.Model), attrGenAIResponseModel.String(s.ModelServed),
			attrStream.Bool(s.Stream), attrComplete.Bool(s.Complete))
	}
	if s.UsageSeen {
		a = append(a, attrGenAIInputTokens.Int64(s.Usage.InputTokens), attrGenAIOutputTokens.Int64(s.Usage.OutputTokens))
	}
	if s.HasHold {
		a = append(a, attrReservedMicros.Int64(s.Reserved))
	}
	if s.Settled.Rule != "" {
		a = append(a, attrCostMicros.Int64(s.Settled.CostMicros), attrSettleRule.String(s.Settled.Rule))
	}
	if s.GuardDecision != "" {
		a = append(a, attrGuardDecision.String(s.GuardDecision))
	}
	return a
}

// spanError returns the span status description and error.type of a failed exchange (both ""
// when it did not fail): a gateway or upstream error, a 5xx, or a protocol fault. Both come
// from closed sets (reason codes, status codes, gRPC codes), never from error text.
func spanError(s policy.Summary, err error) (desc, errType string) {
	switch {
	case err != nil:
		c := status.Code(err)
		if c == codes.Unknown {
			c = codes.Internal
		}
		return "ext_proc " + c.String(), c.String()
	case s.Decision == "error":
		return string(s.Reason), string(s.Reason)
	case s.Status >= 500:
		return "upstream status " + strconv.Itoa(s.Status), strconv.Itoa(s.Status)
	}
	return "", ""
}

// headerCarrier reads trace context from the HTTP request headers. Keys are lower case, as
// Envoy sends them and as the propagator asks for them.
type headerCarrier headerMap

func (c headerCarrier) Get(key string) string { return headerMap(c).Get(key) }
func (headerCarrier) Set(string, string)      {}
func (c headerCarrier) Keys() []string        { return headerMap(c).Names() }

// metadataCarrier reads trace context from the gRPC stream's metadata.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (metadataCarrier) Set(string, string) {}
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// genAIProvider is gen_ai.provider.name's well-known value for a provider type; an
// OpenAI-compatible server has none, so its configured name is used.
func genAIProvider(typ, name string) string {
	switch typ {
	case "openai":
		return "openai"
	case "anthropic":
		return "anthropic"
	case "azure-openai":
		return "azure.ai.openai"
	}
	return name
}
