package results

import (
	"fmt"
	"strings"

	"github.com/tollgate-ai/tollgate/test/bench/internal/profcat"
)

// Bounds is the report's reading of what limits the CPU and latency figures, computed from
// the run alone so it stays true when the run is repeated: the do-nothing ext_proc server's
// cost at the same rate (the protocol's floor, which no policy can go under), the machine's
// calibration, how busy the cores were, and the profile's split of Tollgate's CPU.
func Bounds(r *Run) []string {
	var out []string
	calRTT := 0.0
	if c := r.Machine.Calibration; c != nil {
		calRTT = c.LoopbackCPUMicros
	}
	if s := commonBelowKnee(r); s != nil {
		n, f := s.Paths[PathN], s.Paths[PathF]
		noop, tg := n.CPUPerRequest(ProcNoop), f.CPUPerRequest(ProcTollgate)
		line := fmt.Sprintf("**CPU per request.** At %.0f req/s (the highest rate both N and F were measured at below F's knee) the do-nothing ext_proc server, which decides nothing and answers every message with an empty reply, uses %.1f µs of CPU per request; Tollgate uses %.1f µs. The exchange itself (one gRPC stream per request, four messages each way over loopback) costs %.1f× the 100 µs target before any policy runs; the policy, the adapter and their bigger replies (header and body mutations) add %.1f µs (%.0f%% over the floor).",
			s.Rate, noop, tg, noop/100, tg-noop, 100*(tg-noop)/max(noop, 1e-9))
		if calRTT > 0 {
			line += fmt.Sprintf(" One bare 64-byte loopback round trip between two goroutines costs %.1f µs of CPU on this machine (calibration), so eight one-way messages and their wake-ups account for much of the floor.", calRTT)
		}
		out = append(out, line)
	}
	fSat, _ := r.Saturation(PathF)
	nSat, _ := r.Saturation(PathN)
	if fSat.Result != nil && nSat.Result != nil {
		fAll, nAll := allCPUPerRequest(fSat.Result), allCPUPerRequest(nSat.Result)
		out = append(out, fmt.Sprintf("**Saturation.** The knee comes when the machine's cores are full (%.0f%% busy at F's %.0f req/s, %.0f%% at N's %.0f req/s). A request through F costs the whole machine (Envoy, ext_proc server, upstream, driver) %.1f µs of CPU, through N %.1f µs, so F can reach about %.0f%% of N's throughput on the same cores.",
			busy(fSat.Result, r.Machine.NProc), fSat.Rate, busy(nSat.Result, r.Machine.NProc), nSat.Rate, fAll, nAll, 100*nAll/max(fAll, 1e-9)))
	}
	if w2 := highestW2(r); w2 != nil {
		n, f := w2.Paths[PathN], w2.Paths[PathF]
		s := fmt.Sprintf("**CPU per streamed chunk.** The do-nothing server uses %.2f µs per chunk, Tollgate %.2f µs: each chunk is one ext_proc round trip (Envoy sends it, the server answers before Envoy forwards it), so the 5 µs target is below the cost of the round trip itself", n.CPUPerEvent(ProcNoop), f.CPUPerEvent(ProcTollgate))
		if calRTT > 0 {
			s += fmt.Sprintf(" (a bare loopback round trip: %.1f µs of CPU)", calRTT)
		}
		out = append(out, s+". With response guardrails on, Tollgate must see a chunk before Envoy forwards it; answering before inspecting would let unscanned text through.")
	}
	if w2 := highestW2(r); w2 != nil && w2.Paths[PathD].TTFB != nil && w2.Paths[PathN].TTFB != nil && w2.Paths[PathF].TTFB != nil {
		d, n, f := w2.Paths[PathD], w2.Paths[PathN], w2.Paths[PathF]
		out = append(out, fmt.Sprintf("**Streams at %g streams/s.** About %.0f chunks a second each cross the ext_proc stream and wait for its answer: the cores are %.0f%% busy on D, %.0f%% on N and %.0f%% on F. The do-nothing server alone adds %.3f ms to the time to first byte (p50) and %.3f ms to the gap between chunks (p99); Tollgate adds %.3f ms and %.3f ms. Every chunk waits for one round trip and the first byte for four (request headers, body, response headers, first chunk), each interleaved with the other streams' chunks on the same ext_proc connection; the do-nothing server's share is the floor of that wait.",
			w2.Rate, float64(f.Events)/max(f.WallS, 1e-9), busy(d, r.Machine.NProc), busy(n, r.Machine.NProc), busy(f, r.Machine.NProc),
			n.TTFB.P50-d.TTFB.P50, n.Gap.P99-d.Gap.P99, f.TTFB.P50-d.TTFB.P50, f.Gap.P99-d.Gap.P99))
	}
	if w1 := r.FindStep("W1", 1000); w1 != nil {
		d, n, f := w1.Paths[PathD], w1.Paths[PathN], w1.Paths[PathF]
		out = append(out, fmt.Sprintf("**Added latency at 1,000 req/s.** Every process shares the machine's %d cores: the cores are %.0f%% busy on D, %.0f%% on N and %.0f%% on F (all processes' CPU over the segments' wall time), so F's added p50 (%.3f ms) and p99 (%.3f ms) include waiting for a core behind the other processes, and the policy-cost ratio divides two such delays (N−D p50 %.3f ms), not two amounts of work. Tollgate's CPU per request beyond the do-nothing server's at this rate is %.1f µs.",
			r.Machine.NProc, busy(d, r.Machine.NProc), busy(n, r.Machine.NProc), busy(f, r.Machine.NProc),
			f.Latency.P50-d.Latency.P50, f.Latency.P99-d.Latency.P99, n.Latency.P50-d.Latency.P50,
			f.CPUPerRequest(ProcTollgate)-n.CPUPerRequest(ProcNoop)))
	}
	if p := r.Profile; p != nil && len(p.Breakdown) > 0 {
		var parts []string
		for _, sh := range profcat.Sorted(p.Breakdown) {
			if sh.Percent >= 0.5 {
				parts = append(parts, fmt.Sprintf("%s %.1f%%", sh.Category, sh.Percent))
			}
		}
		out = append(out, fmt.Sprintf("**Profile (%s).** The protocol (gRPC and HTTP/2, protobuf, socket system calls) takes %.1f%% of Tollgate's CPU and the Go runtime on its own %.1f%%; the policy takes %.1f%% and the adapter %.1f%%. In full: %s.",
			p.Segment, profcat.Sum(p.Breakdown, profcat.ProtocolCategories...), profcat.Sum(p.Breakdown, profcat.Runtime),
			profcat.Sum(p.Breakdown, profcat.Policy), profcat.Sum(p.Breakdown, profcat.Adapter), strings.Join(parts, ", ")))
	}
	return out
}

// busy is the share of the machine's cores used by every process during a path's segments.
func busy(p *PathResult, nproc int) float64 {
	if p == nil || p.WallS == 0 || nproc == 0 {
		return 0
	}
	var cpu float64
	for _, s := range p.CPU {
		cpu += s
	}
	return 100 * cpu / p.WallS / float64(nproc)
}

// highestW2 is the W2 step at the highest stream rate with every path, or nil.
func highestW2(r *Run) *Step {
	var w2 *Step
	for _, s := range r.Steps {
		if s.Workload == "W2" && len(s.Paths) == len(PathOrder) && (w2 == nil || s.Rate > w2.Rate) {
			w2 = s
		}
	}
	return w2
}

// commonBelowKnee is the W1 step at the highest rate with both N and F measured and F below
// its knee (p99 within the knee, no failure), or nil.
func commonBelowKnee(r *Run) *Step {
	var best *Step
	for _, s := range r.Steps {
		n, f := s.Paths[PathN], s.Paths[PathF]
		if s.Workload != "W1" || n == nil || f == nil || f.Failed() > 0 || f.Latency.P99 > r.Settings.KneeP99Ms {
			continue
		}
		if best == nil || s.Rate > best.Rate {
			best = s
		}
	}
	return best
}

// allCPUPerRequest is every process's CPU per completed request, µs.
func allCPUPerRequest(p *PathResult) float64 {
	if p == nil || p.OK == 0 {
		return 0
	}
	var cpu float64
	for _, s := range p.CPU {
		cpu += s
	}
	return cpu / float64(p.OK) * 1e6
}
