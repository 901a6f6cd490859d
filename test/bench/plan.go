package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/test/bench/internal/upstream"
)

// Workloads.
const (
	W1 = "W1" // POST /v1/chat/completions, 4 KiB body, 1 KiB JSON reply
	W2 = "W2" // W1 with stream: true, 200 chunks of ~150 bytes plus the usage chunk
	W3 = "W3" // W1 with a prompt the guardrails redact
)

// plan is one profile of the run.
type plan struct {
	name       string
	segment    time.Duration // one path's share of a round
	w1Rates    []float64
	w1Rounds   int
	sweep      []float64 // W1 rates after w1Rates, until each path's knee
	bisect     int       // refinements between a path's last good and first bad rate
	w3Rates    []float64
	w3Rounds   int
	w2Rates    []float64 // streams per second
	w2Rounds   int
	w2Segment  time.Duration
	w2Cadence  time.Duration
	kneeP99    time.Duration
	maxFlight  int
	timeout    time.Duration
	profileFor time.Duration // Tollgate CPU profile at the end (0: none)
}

var plans = map[string]plan{
	// default fits `make bench` in well under 15 minutes on 2 cores.
	"default": {
		name: "default", segment: 4 * time.Second,
		w1Rates: []float64{200, 500, 1000, 2000}, w1Rounds: 3,
		sweep:   []float64{2500, 3000, 3500, 4000, 5000, 6000, 7000, 8000, 10000, 12000},
		bisect:  2,
		w3Rates: []float64{200, 500, 1000}, w3Rounds: 2,
		w2Rates: []float64{10, 25}, w2Rounds: 2, w2Segment: 6 * time.Second, w2Cadence: 10 * time.Millisecond,
		kneeP99: 50 * time.Millisecond, maxFlight: 2000, timeout: 10 * time.Second,
		profileFor: 10 * time.Second,
	},
	// focus compares settings: W1 at 1,000 and 2,000 req/s and W2, no sweep, no profile.
	"focus": {
		name: "focus", segment: 4 * time.Second,
		w1Rates: []float64{1000, 2000}, w1Rounds: 2,
		w2Rates: []float64{25}, w2Rounds: 1, w2Segment: 6 * time.Second, w2Cadence: 10 * time.Millisecond,
		kneeP99: 50 * time.Millisecond, maxFlight: 2000, timeout: 10 * time.Second,
	},
	// quick is for developing the harness: every phase, briefly.
	"quick": {
		name: "quick", segment: 1500 * time.Millisecond,
		w1Rates: []float64{200, 1000}, w1Rounds: 1,
		sweep:   []float64{2000, 4000},
		bisect:  0,
		w3Rates: []float64{200}, w3Rounds: 1,
		w2Rates: []float64{10}, w2Rounds: 1, w2Segment: 3 * time.Second, w2Cadence: 10 * time.Millisecond,
		kneeP99: 50 * time.Millisecond, maxFlight: 2000, timeout: 10 * time.Second,
		profileFor: 3 * time.Second,
	},
}

// Marker is the W3 prompt's e-mail address: the guardrails (pii.email, action redact) must
// replace it before the request reaches the upstream, which counts its arrivals.
const Marker = "jane.roe.bench@example.com"

// requestBody returns a chat request of about size bytes; W3 carries PII to redact.
func requestBody(workload string, size int) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o-mini",`)
	if workload == W2 {
		b.WriteString(`"stream":true,"stream_options":{"include_usage":true},`)
	}
	b.WriteString(`"temperature":0.2,"max_tokens":256,"messages":[{"role":"system","content":"You are a careful assistant."}`)
	turn := strings.Repeat("Explain the trade-offs of consistent hashing for cache clusters. ", 6)
	if workload == W3 {
		turn = fmt.Sprintf("Please write to %s or call +1 415 555 0199 about the consistent hashing review. ", Marker) +
			strings.Repeat("Explain the trade-offs of consistent hashing. ", 5)
	}
	const open, closing = `,{"role":"user","content":"`, `"}`
	for b.Len()+2*(len(open)+len(closing))+len(turn)+len("]}") <= size {
		b.WriteString(open + turn + closing)
	}
	// One last message fills the body to exactly size bytes.
	if pad := size - b.Len() - len(open) - len(closing) - len("]}"); pad > 0 {
		b.WriteString(open + strings.Repeat("consistent hashing ", pad/19+1)[:pad] + closing)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// shapeFor is the upstream's answer for a workload.
func shapeFor(workload string, p plan) upstream.Shape {
	sh := upstream.DefaultShape
	if workload == W2 {
		sh.Cadence = p.w2Cadence
	}
	return sh
}
