package extproc_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// chat4KiB is a realistic 4 KiB chat request: a system prompt and a few turns.
func chat4KiB() string {
	var b strings.Builder
	b.WriteString(`{"model":"fast","stream":true,"temperature":0.2,"messages":[{"role":"system","content":"You are a careful assistant."}`)
	turn := strings.Repeat("Explain the trade-offs of consistent hashing for cache clusters. ", 6)
	for b.Len() < 4000 {
		b.WriteString(`,{"role":"user","content":"` + turn + `"},{"role":"assistant","content":"` + turn + `"}`)
	}
	b.WriteString(`]}`)
	return b.String()
}

// BenchmarkRequestPath measures the request path over gRPC (bufconn): request headers and a
// 4 KiB buffered body, i.e. key verification, body parse, routing and the credential swap.
// One op is one whole ext_proc stream.
func BenchmarkRequestPath(b *testing.B) {
	benchmarkRequestPath(b, newHarness(b))
}

// BenchmarkRequestPathTraced is BenchmarkRequestPath with tracing on: every stream is sampled
// and its span handed to an exporter that drops it, so the figure is the span's own cost.
func BenchmarkRequestPathTraced(b *testing.B) {
	benchmarkRequestPath(b, tracedWith(b, policytest.New(b), tracetest.NewNoopExporter()))
}

func benchmarkRequestPath(b *testing.B, h *harness) {
	hdr := chatHeaders(h.fx.Keys["valid"])
	body := reqBody(chat4KiB())
	b.ReportAllocs()
	b.SetBytes(int64(len(body.GetRequestBody().GetBody())))
	for b.Loop() {
		s, cancel := h.open(b)
		roundTrip(b, s, hdr)
		if resp := roundTrip(b, s, body); resp.GetRequestBody() == nil {
			b.Fatalf("not forwarded: %v", resp)
		}
		_ = s.CloseSend()
		cancel()
	}
}

// BenchmarkStreamedChunk measures one streamed response chunk's round trip: the reply goes
// out before the chunk is inspected.
func BenchmarkStreamedChunk(b *testing.B) {
	h := newHarness(b)
	s, _ := h.open(b)
	roundTrip(b, s, chatHeaders(h.fx.Keys["valid"]))
	roundTrip(b, s, reqBody(`{"model":"fast","stream":true}`))
	roundTrip(b, s, respHeaders("200", "content-type", "text/event-stream"))
	chunk := respBody(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"token"}}]}`+"\n\n", false)
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk.GetResponseBody().GetBody())))
	for b.Loop() {
		if resp := roundTrip(b, s, chunk); resp.GetResponseBody() == nil {
			b.Fatal("no body reply")
		}
	}
}
