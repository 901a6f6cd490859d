package results

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/bench/internal/calib"
	"github.com/tollgate-ai/tollgate/test/bench/internal/profcat"
)

// TestBounds computes the bounds from the run: the do-nothing server's CPU at F's saturation
// rate, per chunk, how busy the cores were, and the profile's split.
func TestBounds(t *testing.T) {
	r := sampleRun()
	r.Machine = Machine{NProc: 2, Calibration: &calib.Result{LoopbackCPUMicros: 13.5}}
	// The do-nothing server at 1500 req/s (F's saturation rate): 15000 requests, 0.9 s of CPU.
	n := pr(1.5, 10, 15000, 0, 0)
	n.CPU[ProcNoop] = 0.9
	r.Steps[4] = step("W1", "sweep", 1500, pr(1.0, 3.0, 15000, 0, 0), n, pr(1.8, 20, 15000, 1.2, 0))
	r.FindStep("W2", 25).Paths[PathN].CPU[ProcNoop] = 0.0404
	r.Profile = &Profile{Segment: "W1 at 1000 req/s through F", Seconds: 10, Breakdown: []profcat.Share{
		{Category: profcat.Policy, Percent: 20}, {Category: profcat.Adapter, Percent: 5}, {Category: profcat.GRPC, Percent: 25},
		{Category: profcat.Protobuf, Percent: 10}, {Category: profcat.Kernel, Percent: 30}, {Category: profcat.Runtime, Percent: 10},
	}}
	got := strings.Join(Bounds(r), "\n")
	for _, want := range []string{
		"At 1500 req/s (the highest rate both N and F were measured at below F's knee) the do-nothing ext_proc server, which decides nothing and answers every message with an empty reply, uses 60.0 µs of CPU per request; Tollgate uses 80.0 µs.",
		"costs 0.6× the 100 µs target before any policy runs; the policy, the adapter and their bigger replies (header and body mutations) add 20.0 µs (33% over the floor).",
		"costs 13.5 µs of CPU on this machine",
		// F saturates at 1500 req/s (Envoy 0.1 s + Tollgate 1.2 s over 15000 requests), N at
		// 3000 req/s (Envoy 0.1 s over 30000 requests).
		"A request through F costs the whole machine (Envoy, ext_proc server, upstream, driver) 86.7 µs of CPU, through N 3.3 µs, so F can reach about 4% of N's throughput",
		// W2: 20200 events over 10 s; TTFB p50 3.0/3.2/3.4 ms, gap p99 10.5/10.7/10.9 ms.
		"**Streams at 25 streams/s.** About 2020 chunks a second",
		"The do-nothing server alone adds 0.200 ms to the time to first byte (p50) and 0.200 ms to the gap between chunks (p99); Tollgate adds 0.400 ms and 0.400 ms.",
		"The do-nothing server uses 2.00 µs per chunk, Tollgate 2.48 µs",
		// W1 at 1000: D's CPU is Envoy's 0.1 s over 10 s of wall time on 2 cores; F adds Tollgate's 0.5 s.
		"the cores are 0% busy on D, 0% on N and 3% on F",
		"Tollgate's CPU per request beyond the do-nothing server's at this rate is 50.0 µs.",
		"The protocol (gRPC and HTTP/2, protobuf, socket system calls) takes 65.0% of Tollgate's CPU and the Go runtime on its own 10.0%; the policy takes 20.0% and the adapter 5.0%.",
	} {
		require.Contains(t, got, want)
	}
}

// TestBoundsWithoutData leaves out what the run did not measure.
func TestBoundsWithoutData(t *testing.T) {
	require.Empty(t, Bounds(&Run{}))
}
