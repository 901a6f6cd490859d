package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// chatChunk is one ~150-byte OpenAI stream event, as make bench's upstream sends it.
const chatChunk = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini",` +
	`"choices":[{"index":0,"delta":{"content":"the quick brown fox "},"finish_reason":null}]}` + "\n\n"

// BenchmarkExchangeResponseChunk is one streamed response chunk through policy.Exchange, the
// per-chunk work extproc does besides the protocol: ResponseChunk (the release decision;
// with guardrails, the SSE redactor) and Observe (bytes, usage). One op is one chunk of a
// long stream.
func BenchmarkExchangeResponseChunk(b *testing.B) {
	for _, bc := range []struct {
		name   string
		mutate func(*policy.Config)
	}{
		{"unguarded", nil},
		{"guarded", policytest.Guarded},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fx := policytest.NewWith(b, bc.mutate)
			x := fx.Snapshot.NewExchange(context.Background(), policy.ExchangeOptions{Now: func() time.Time { return fx.Now }})
			h := map[string]string{":method": "POST", ":path": "/v1/chat/completions",
				"authorization": "Bearer " + fx.Keys["valid"], "content-type": "application/json"}
			names := []string{":method", ":path", "authorization", "content-type"}
			if rep, err := x.RequestHeaders(policy.RequestHeaders{Method: "POST", Path: "/v1/chat/completions", Names: names,
				Get: func(n string) string { return h[n] }}); err != nil || rep != nil {
				b.Fatalf("headers: %v %v", rep, err)
			}
			body := `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
			if _, rep, err := x.RequestBody([]byte(body), true); err != nil || rep != nil {
				b.Fatalf("body: %v %v", rep, err)
			}
			if rep, err := x.ResponseHeaders(200, "text/event-stream", false); err != nil || rep != nil {
				b.Fatalf("response headers: %v %v", rep, err)
			}
			chunk := []byte(chatChunk)
			b.ReportAllocs()
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				if _, _, err := x.ResponseChunk(chunk, false); err != nil {
					b.Fatal(err)
				}
				x.Observe(chunk, false)
			}
		})
	}
}
