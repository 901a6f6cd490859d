package policy_test

import (
	"strings"
	"testing"

	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// BenchmarkAdmitRoute is the decision cost of one 4 KiB chat request without the protocol:
// header checks, key verification (one HMAC), one body parse, model rewrite.
func BenchmarkAdmitRoute(b *testing.B) {
	fx := policytest.New(b)
	h := hdrs("POST", "/v1/chat/completions", false, "authorization", "Bearer "+fx.Keys["valid"], "content-type", "application/json")
	turn := strings.Repeat("Explain the trade-offs of consistent hashing for cache clusters. ", 6)
	var sb strings.Builder
	sb.WriteString(`{"model":"fast","stream":true,"messages":[{"role":"system","content":"You are a careful assistant."}`)
	for sb.Len() < 4000 {
		sb.WriteString(`,{"role":"user","content":"` + turn + `"}`)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		a, rep := fx.Snapshot.Admit(fx.Now, h)
		if rep != nil {
			b.Fatal(rep.Reason)
		}
		if _, rep := fx.Snapshot.Route(a, body); rep != nil {
			b.Fatal(rep.Reason)
		}
	}
}
