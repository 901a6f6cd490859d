package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// tracingShutdownTimeout bounds the flush of the spans still queued at shutdown.
const tracingShutdownTimeout = 5 * time.Second

// tracing is the OpenTelemetry tracer provider, built from the standard OTEL_* variables.
// Its zero value is tracing off.
type tracing struct {
	tp  *sdktrace.TracerProvider
	log *zap.Logger
}

// openTracing reads the OTEL_* environment. Tracing is off unless OTEL_TRACES_EXPORTER is
// "otlp" (the OpenTelemetry default is otlp, but a gateway should not start sending data
// somewhere because a variable is unset) and OTEL_SDK_DISABLED is not "true". The OTLP
// protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf
// (the default) or grpc. The exporters read their endpoint, headers, TLS, compression and
// timeout from the OTEL_EXPORTER_OTLP_* variables, the SDK reads OTEL_TRACES_SAMPLER(_ARG),
// OTEL_BSP_* and OTEL_SPAN_* limits, and OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES name the
// service (default "tollgate"). Nothing is dialled here: the exporters connect when they
// first export.
func openTracing(ctx context.Context, log *zap.Logger) (*tracing, error) {
	on, err := tracesExporter()
	if err != nil || !on {
		return &tracing{}, err
	}
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdktrace.SpanExporter
	switch strings.TrimSpace(proto) {
	case "", "http/protobuf":
		proto = "http/protobuf"
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q is not supported; use http/protobuf or grpc", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	// Export and sampler-configuration errors go to the log; their text names no header value.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", zap.Error(err)) }))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(tracingResource()))
	log.Info("tracing on", zap.String("exporter", "otlp"), zap.String("protocol", proto))
	return &tracing{tp: tp, log: log}, nil
}

// tracesExporter reads OTEL_TRACES_EXPORTER: true for "otlp", false for unset or "none"; any
// other exporter is an error rather than silently no traces.
func tracesExporter() (bool, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	on := false
	for e := range strings.SplitSeq(os.Getenv("OTEL_TRACES_EXPORTER"), ",") {
		switch e = strings.TrimSpace(e); e {
		case "", "none":
		case "otlp":
			on = true
		default:
			return false, fmt.Errorf("OTEL_TRACES_EXPORTER %q is not supported; use otlp or none", e)
		}
	}
	return on, nil
}

// tracingResource names the service "tollgate" at this version, unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise.
func tracingResource() *resource.Resource {
	base, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(semconv.ServiceName("tollgate"), semconv.ServiceVersion(version)))
	if err != nil {
		base = resource.Default()
	}
	r, err := resource.Merge(base, resource.Environment())
	if err != nil {
		return base
	}
	return r
}

// provider is the tracer provider for extproc.WithTracing; nil when tracing is off.
func (t *tracing) provider() trace.TracerProvider {
	if t.tp == nil {
		return nil
	}
	return t.tp
}

// shutdown flushes the queued spans, bounded, after the last stream ended.
func (t *tracing) shutdown() {
	if t.tp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		t.log.Warn("flushing traces at shutdown", zap.Error(err))
	}
}
