package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tollgate-ai/tollgate/test/bench/internal/load"
	"github.com/tollgate-ai/tollgate/test/bench/internal/procstat"
	"github.com/tollgate-ai/tollgate/test/bench/internal/results"
	"github.com/tollgate-ai/tollgate/test/bench/internal/stack"
	"github.com/tollgate-ai/tollgate/test/bench/internal/upstream"
)

// bench runs the plan against a running stack.
type bench struct {
	p      plan
	st     *stack.Stack
	client *http.Client
	smp    *sampler
	out    *results.Run
	log    io.Writer
	pids   map[string]int
	bodies map[string][]byte
}

// pathURL is the chat completions URL of a path's listener.
func (b *bench) pathURL(path string) string {
	port := map[string]int{results.PathD: b.st.Ports.D, results.PathN: b.st.Ports.N, results.PathF: b.st.Ports.F}[path]
	return "http://" + stack.Addr(port) + "/v1/chat/completions"
}

func (b *bench) request(workload, path string) load.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Bearer "+b.st.Key)
	return load.Request{URL: b.pathURL(path), Header: h, Body: b.bodies[workload], Stream: workload == W2}
}

// setShape tells the upstream how to answer.
func (b *bench) setShape(sh upstream.Shape) error {
	body, _ := json.Marshal(sh)
	req, _ := http.NewRequest(http.MethodPut, "http://"+stack.Addr(b.st.ControlPort)+"/shape", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("upstream shape: %d %s", resp.StatusCode, msg)
	}
	return nil
}

// upstreamStats reads the upstream's counters.
func (b *bench) upstreamStats() (results.UpstreamStats, error) {
	var s results.UpstreamStats
	resp, err := http.Get("http://" + stack.Addr(b.st.ControlPort) + "/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// acc accumulates one path's segments in a step.
type acc struct {
	res   *load.Result
	cpu   map[string]float64
	rss   map[string]int64
	gor   int64
	load1 float64
}

func newAcc() *acc {
	return &acc{res: load.NewResult(), cpu: map[string]float64{}, rss: map[string]int64{}}
}

// cpuNow reads every accounted process's CPU time.
func (b *bench) cpuNow() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pid := range b.pids {
		if s, err := procstat.Read(pid); err == nil {
			out[name] = s.CPU
		}
	}
	return out
}

// segment runs one path at one rate for d and adds it to a.
func (b *bench) segment(ctx context.Context, label, workload, path string, rate float64, d time.Duration, a *acc) {
	b.smp.begin(label)
	before := b.cpuNow()
	cfg := load.Config{Rate: rate, Duration: d, MaxInFlight: b.p.maxFlight, Timeout: b.p.timeout,
		Progress: func(s load.Snapshot) {
			fmt.Fprintf(b.log, "\r  %-22s %5.1fs sent %7d done %7d failed %5d in flight %5d  p50 %7.2fms p99 %8.2fms   ",
				label, s.Elapsed.Seconds(), s.Sent, s.Done, s.Failed, s.InFlight,
				float64(s.LatencyP50.Microseconds())/1000, float64(s.LatencyP99.Microseconds())/1000)
		}}
	r := load.Run(ctx, b.client, b.request(workload, path), cfg)
	after := b.cpuNow()
	rss, gor, l1 := b.smp.end()
	for k, v := range after {
		a.cpu[k] += (v - before[k]).Seconds()
	}
	for k, v := range rss {
		a.rss[k] = max(a.rss[k], v)
	}
	a.gor, a.load1 = max(a.gor, gor), max(a.load1, l1)
	a.res.Merge(r)
	fmt.Fprintf(b.log, "\r  %-22s ok %7d failed %5d  %7.0f/s  p50 %7.2fms p99 %8.2fms  envoy %5.1fµs/req tollgate %5.1fµs/req\n",
		label, r.OK, r.Failed(), float64(r.OK)/r.Wall.Seconds(),
		ms(r.Latency.ValueAtQuantile(50)), ms(r.Latency.ValueAtQuantile(99)),
		perReq(after[results.ProcEnvoy]-before[results.ProcEnvoy], r.OK),
		perReq(after[results.ProcTollgate]-before[results.ProcTollgate], r.OK))
	if r.Failed() > 0 {
		for k, v := range r.Samples {
			fmt.Fprintf(b.log, "    %s: %s\n", k, v)
		}
	}
}

func perReq(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

func ms(us int64) float64 { return float64(us) / 1000 }

// step measures paths at rate in rounds (D, N, F, D, N, F, …) and records the step.
func (b *bench) step(ctx context.Context, workload, phase string, rate float64, paths []string, rounds int, d time.Duration) *results.Step {
	accs := map[string]*acc{}
	for _, p := range paths {
		accs[p] = newAcc()
	}
	for r := range rounds {
		for _, p := range paths {
			if ctx.Err() != nil {
				break
			}
			label := fmt.Sprintf("%s %s %g/s %s %d/%d", workload, phase, rate, p, r+1, rounds)
			b.segment(ctx, label, workload, p, rate, d, accs[p])
			if knee(summarize(accs[p]), b.p.kneeP99) {
				time.Sleep(time.Second) // let an overloaded stack drain before the next path
			}
		}
	}
	st := &results.Step{Workload: workload, Phase: phase, Rate: rate, Rounds: rounds, Paths: map[string]*results.PathResult{}}
	for p, a := range accs {
		st.Paths[p] = summarize(a)
	}
	b.out.Steps = append(b.out.Steps, st)
	return st
}

// knee reports whether a path is past its knee: p99 over the bound, or any failure.
func knee(p *results.PathResult, bound time.Duration) bool {
	return p.Failed() > 0 || p.Latency.P99 > float64(bound.Microseconds())/1000
}

// summarize turns an accumulator into a PathResult.
func summarize(a *acc) *results.PathResult {
	r := a.res
	pr := &results.PathResult{Scheduled: r.Scheduled, OK: r.OK, Non2xx: r.Non2xx, Errors: r.Errors, Dropped: r.Dropped,
		Events: r.Events, WallS: r.Wall.Seconds(), Latency: percentiles(r.Latency),
		CPU: a.cpu, RSSMax: a.rss, GoroutinesMax: a.gor, Load1Max: a.load1}
	if r.Wall > 0 {
		pr.Throughput = float64(r.OK) / r.Wall.Seconds()
	}
	if r.TTFB.TotalCount() > 0 {
		t, g := percentiles(r.TTFB), percentiles(r.Gap)
		pr.TTFB, pr.Gap = &t, &g
	}
	if len(r.Samples) > 0 {
		pr.Failures = r.Samples
	}
	return pr
}

func percentiles(h *hdrhistogram.Histogram) results.Percentiles {
	return results.Percentiles{Count: h.TotalCount(), Mean: h.Mean() / 1000,
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}

// all runs the whole plan.
func (b *bench) all(ctx context.Context) error {
	if err := b.setShape(shapeFor(W1, b.p)); err != nil {
		return err
	}
	fmt.Fprintln(b.log, "warm-up")
	b.step(ctx, W1, "warmup", 200, results.PathOrder, 1, 2*time.Second)
	b.out.Steps = b.out.Steps[:0]

	fmt.Fprintln(b.log, "W1: fixed rates")
	for _, r := range b.p.w1Rates {
		b.step(ctx, W1, "fixed", r, results.PathOrder, b.p.w1Rounds, b.p.segment)
	}
	b.sweep(ctx)

	fmt.Fprintln(b.log, "W3: redacted prompt")
	for _, r := range b.p.w3Rates {
		b.step(ctx, W3, "fixed", r, results.PathOrder, b.p.w3Rounds, b.p.segment)
	}

	fmt.Fprintf(b.log, "W2: streams (%d chunks, cadence %s)\n", upstream.DefaultShape.Chunks, b.p.w2Cadence)
	if err := b.setShape(shapeFor(W2, b.p)); err != nil {
		return err
	}
	for _, r := range b.p.w2Rates {
		b.step(ctx, W2, "fixed", r, results.PathOrder, b.p.w2Rounds, b.p.w2Segment)
	}
	return b.setShape(shapeFor(W1, b.p))
}

// sweep raises W1's rate past the fixed rates until every path has reached its knee, then
// narrows each path's knee down between its last good and first bad rate.
func (b *bench) sweep(ctx context.Context) {
	good, bad := map[string]float64{}, map[string]float64{}
	for _, st := range b.out.Steps {
		if st.Workload != W1 {
			continue
		}
		for p, pr := range st.Paths {
			if _, done := bad[p]; done {
				continue
			}
			if knee(pr, b.p.kneeP99) {
				bad[p] = st.Rate
			} else {
				good[p] = st.Rate
			}
		}
	}
	fmt.Fprintln(b.log, "W1: sweep to the knee (p99 > 50 ms or any failure)")
	for _, r := range b.p.sweep {
		var alive []string
		for _, p := range results.PathOrder {
			if _, done := bad[p]; !done {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 || ctx.Err() != nil {
			break
		}
		st := b.step(ctx, W1, "sweep", r, alive, 1, b.p.segment)
		for p, pr := range st.Paths {
			if knee(pr, b.p.kneeP99) {
				bad[p] = r
			} else {
				good[p] = r
			}
		}
	}
	for _, p := range results.PathOrder {
		for range b.p.bisect {
			hi, ok := bad[p]
			lo := good[p]
			if !ok || hi-lo < 200 || ctx.Err() != nil {
				break
			}
			mid := float64(int((lo+hi)/2/50) * 50)
			st := b.step(ctx, W1, "sweep", mid, []string{p}, 1, b.p.segment)
			if knee(st.Paths[p], b.p.kneeP99) {
				bad[p] = mid
			} else {
				good[p] = mid
			}
		}
	}
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
