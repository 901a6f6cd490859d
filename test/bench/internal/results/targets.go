package results

import (
	"fmt"
	"math"
	"sort"
)

// Target is one of issue 11's targets, checked against a run.
type Target struct {
	Name     string
	Want     string
	Measured string
	Met      bool
	Known    bool // false: the run has no data for it
}

// FindStep returns the step of workload at rate (fixed or sweep), or nil.
func (r *Run) FindStep(workload string, rate float64) *Step {
	for _, s := range r.Steps {
		if s.Workload == workload && s.Rate == rate && len(s.Paths) == len(PathOrder) {
			return s
		}
	}
	return nil
}

// PathSteps returns, for one path, the W-steps of workload sorted by rate (one per rate:
// the first measured).
func (r *Run) PathSteps(workload, path string) []RatePoint {
	seen := map[float64]bool{}
	var out []RatePoint
	for _, s := range r.Steps {
		p, ok := s.Paths[path]
		if s.Workload != workload || !ok || seen[s.Rate] {
			continue
		}
		seen[s.Rate] = true
		out = append(out, RatePoint{Rate: s.Rate, Result: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rate < out[j].Rate })
	return out
}

// RatePoint is a path's result at one offered rate.
type RatePoint struct {
	Rate   float64
	Result *PathResult
}

// Saturation returns a path's highest W1 rate below its knee (p99 ≤ kneeMs and no failure)
// with its result, and the lowest rate past the knee (0 if none was reached).
func (r *Run) Saturation(path string) (good RatePoint, firstBad float64) {
	for _, rp := range r.PathSteps("W1", path) {
		if rp.Result.Failed() == 0 && rp.Result.Latency.P99 <= r.Settings.KneeP99Ms {
			if firstBad == 0 || rp.Rate < firstBad {
				if rp.Rate > good.Rate {
					good = rp
				}
			}
		} else if firstBad == 0 || rp.Rate < firstBad {
			firstBad = rp.Rate
		}
	}
	return good, firstBad
}

// Targets checks the run (and the soak, if any) against the targets.
func Targets(r *Run, soak *Soak) []Target {
	var out []Target
	add := func(name, want string, known, met bool, format string, a ...any) {
		out = append(out, Target{Name: name, Want: want, Known: known, Met: known && met, Measured: fmt.Sprintf(format, a...)})
	}
	w1 := r.FindStep("W1", 1000)
	if w1 != nil {
		d, n, f := w1.Paths[PathD].Latency, w1.Paths[PathN].Latency, w1.Paths[PathF].Latency
		fd50, fd99, nd50, nd99 := r3(f.P50-d.P50), r3(f.P99-d.P99), r3(n.P50-d.P50), r3(n.P99-d.P99)
		add("W1 added latency F−D at 1,000 req/s, p50", "≤ 0.6 ms", true, fd50 <= 0.6, "%.3f ms", fd50)
		add("W1 added latency F−D at 1,000 req/s, p99", "≤ 2 ms", true, fd99 <= 2, "%.3f ms", fd99)
		rp50, rp99 := r2(ratio(fd50, nd50)), r2(ratio(fd99, nd99))
		add("policy cost (F−D)/(N−D) at 1,000 req/s, p50", "≤ 1.25", true, rp50 <= 1.25, "%.2f (F−D %.3f ms, N−D %.3f ms)", rp50, fd50, nd50)
		add("policy cost (F−D)/(N−D) at 1,000 req/s, p99", "≤ 1.25", true, rp99 <= 1.25, "%.2f (F−D %.3f ms, N−D %.3f ms)", rp99, fd99, nd99)
	} else {
		add("W1 at 1,000 req/s", "measured", false, false, "no step at 1,000 req/s")
	}
	fSat, fBad := r.Saturation(PathF)
	nSat, nBad := r.Saturation(PathN)
	if fSat.Result != nil {
		cpu := r1(fSat.Result.CPUPerRequest(ProcTollgate))
		add("Tollgate CPU per request at saturation", "≤ 100 µs", true, cpu <= 100, "%.1f µs at %.0f req/s (F's highest rate below the knee)", cpu, fSat.Rate)
	}
	if fSat.Result != nil && nSat.Result != nil {
		q := fSat.Result.Throughput / nSat.Result.Throughput
		add("F saturation throughput vs N's", "≥ 80%", true, q >= 0.8, "%.0f%% (F %.0f req/s, knee at %s; N %.0f req/s, knee at %s)",
			q*100, fSat.Result.Throughput, rateOrNone(fBad), nSat.Result.Throughput, rateOrNone(nBad))
	}
	out = append(out, streamTargets(r, w1)...)
	out = append(out, soakTargets(soak)...)
	var non2xx, failed int64
	for _, s := range r.Steps {
		if s.Phase != "fixed" {
			continue
		}
		for _, p := range s.Paths {
			non2xx += p.Non2xx
			failed += p.Failed()
		}
	}
	add("non-2xx responses at the fixed rates (W1, W2, W3)", "0", true, non2xx == 0, "%d non-2xx, %d failed in all", non2xx, failed)
	return out
}

// streamTargets are the W2 targets, at the highest W2 rate.
func streamTargets(r *Run, w1 *Step) []Target {
	w2 := highestW2(r)
	if w2 == nil || w2.Paths[PathF].TTFB == nil || w2.Paths[PathD].TTFB == nil {
		return []Target{{Name: "W2 streams", Want: "measured", Measured: "no W2 step"}}
	}
	d, f := w2.Paths[PathD], w2.Paths[PathF]
	var out []Target
	addedTTFB := r3(f.TTFB.P50 - d.TTFB.P50)
	if w1 != nil {
		w1Added := r3(w1.Paths[PathF].Latency.P50 - w1.Paths[PathD].Latency.P50)
		out = append(out, Target{Name: fmt.Sprintf("W2 added time to first byte (p50, %g streams/s)", w2.Rate),
			Want: "≤ W1's added p50 + 0.1 ms", Known: true, Met: addedTTFB <= w1Added+0.1,
			Measured: fmt.Sprintf("%.3f ms (W1's added p50 at 1,000 req/s + 0.1 ms = %.3f ms)", addedTTFB, w1Added+0.1)})
	}
	gap := r3(f.Gap.P99 - d.Gap.P99)
	out = append(out, Target{Name: fmt.Sprintf("W2 added gap between chunks, p99 (%g streams/s)", w2.Rate), Want: "≤ 0.5 ms",
		Known: true, Met: gap <= 0.5, Measured: fmt.Sprintf("%.3f ms (F %.3f ms, D %.3f ms)", gap, f.Gap.P99, d.Gap.P99)})
	cpu := r2(f.CPUPerEvent(ProcTollgate))
	out = append(out, Target{Name: "Tollgate CPU per streamed chunk", Want: "≤ 5 µs", Known: true, Met: cpu <= 5,
		Measured: fmt.Sprintf("%.2f µs (all of Tollgate's CPU in W2 over the chunks received; request phase included)", cpu)})
	return out
}

// soakTargets checks the soak's resident memory.
func soakTargets(s *Soak) []Target {
	if s == nil || s.Result == nil {
		return []Target{{Name: "RSS with 1,000 concurrent streams, flat over 10 minutes", Want: "≤ 128 MiB",
			Measured: "not measured in this run (make bench-soak)"}}
	}
	peak, first, last, slope := SoakRSS(s, ProcTollgate)
	flat := math.Abs(last-first) <= 0.1*first
	return []Target{{Name: fmt.Sprintf("Tollgate RSS with %d concurrent streams over %.0f min", s.Streams, s.HoldSeconds/60),
		Want: "≤ 128 MiB, flat", Known: true, Met: peak <= 128 && flat,
		Measured: fmt.Sprintf("peak %.1f MiB; first minute %.1f MiB, last minute %.1f MiB (slope %+.2f MiB/min)", peak, first, last, slope)}}
}

// SoakRSS returns a process's peak RSS during the hold, its mean over the hold's first and
// last minute (MiB), and the least-squares slope over the hold (MiB per minute).
func SoakRSS(s *Soak, proc string) (peak, first, last, slope float64) {
	var xs, ys []float64
	for _, t := range s.Timeline {
		if t.T < s.RampSeconds || t.T > s.RampSeconds+s.HoldSeconds {
			continue
		}
		xs, ys = append(xs, t.T), append(ys, float64(t.RSS[proc])/(1<<20))
	}
	if len(xs) == 0 {
		return 0, 0, 0, 0
	}
	var fs, ls []float64
	for i, x := range xs {
		peak = max(peak, ys[i])
		if x < xs[0]+60 {
			fs = append(fs, ys[i])
		}
		if x > xs[len(xs)-1]-60 {
			ls = append(ls, ys[i])
		}
	}
	return peak, mean(fs), mean(ls), slopePerMin(xs, ys)
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func slopePerMin(xs, ys []float64) float64 {
	mx, my := mean(xs), mean(ys)
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den * 60
}

// r1, r2 and r3 round to the decimals the report shows, so that a figure shown at its bound
// meets it.
func r1(x float64) float64 { return math.Round(x*10) / 10 }
func r2(x float64) float64 { return math.Round(x*100) / 100 }
func r3(x float64) float64 { return math.Round(x*1000) / 1000 }

func ratio(a, b float64) float64 {
	if b <= 0 {
		return math.Inf(1)
	}
	return a / b
}

func rateOrNone(r float64) string {
	if r == 0 {
		return "not reached"
	}
	return fmt.Sprintf("%.0f req/s", r)
}
