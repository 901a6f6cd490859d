package results

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pr is a path result with the given latency (ms) and Tollgate CPU over ok requests.
func pr(p50, p99 float64, ok int64, tollgateS float64, failed int64) *PathResult {
	return &PathResult{OK: ok, Errors: failed, WallS: 10, Throughput: float64(ok) / 10,
		Latency: Percentiles{Count: ok, P50: p50, P99: p99}, CPU: map[string]float64{ProcTollgate: tollgateS, ProcEnvoy: 0.1},
		RSSMax: map[string]int64{ProcTollgate: 40 << 20}}
}

func step(wl, phase string, rate float64, d, n, f *PathResult) *Step {
	s := &Step{Workload: wl, Phase: phase, Rate: rate, Paths: map[string]*PathResult{}}
	for p, r := range map[string]*PathResult{PathD: d, PathN: n, PathF: f} {
		if r != nil {
			s.Paths[p] = r
		}
	}
	return s
}

func sampleRun() *Run {
	w2 := func(ttfb, gap float64, events int64, cpu float64) *PathResult {
		p := pr(2000, 2100, 100, cpu, 0)
		p.Events = events
		p.TTFB, p.Gap = &Percentiles{P50: ttfb, P99: ttfb}, &Percentiles{P50: 10, P99: gap}
		return p
	}
	return &Run{
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Finished: time.Date(2026, 1, 2, 3, 14, 5, 0, time.UTC),
		Settings: Settings{KneeP99Ms: 50},
		Steps: []*Step{
			step("W1", "fixed", 1000, pr(1.0, 3.0, 10000, 0, 0), pr(1.4, 4.0, 10000, 0, 0), pr(1.6, 4.2, 10000, 0.5, 0)),
			step("W1", "fixed", 2000, pr(1.0, 3.0, 20000, 0, 0), pr(1.5, 5.0, 20000, 0, 0), pr(2.0, 60, 19000, 1.5, 0)),
			step("W1", "sweep", 3000, pr(1.1, 3.5, 30000, 0, 0), pr(2.0, 40, 30000, 0, 0), nil),
			step("W1", "sweep", 4000, pr(1.2, 4.0, 40000, 0, 0), pr(3.0, 80, 39000, 0, 5), nil),
			step("W1", "sweep", 1500, nil, nil, pr(1.8, 20, 15000, 1.2, 0)),
			step("W3", "fixed", 1000, pr(1.0, 3.0, 10000, 0, 0), pr(1.4, 4.0, 10000, 0, 0), pr(1.6, 4.5, 10000, 0.6, 0)),
			step("W2", "fixed", 25, w2(3.0, 10.5, 20200, 0), w2(3.2, 10.7, 20200, 0), w2(3.4, 10.9, 20200, 0.05)),
		},
		Upstream: UpstreamStats{Requests: 10},
	}
}

func TestTargets(t *testing.T) {
	got := map[string]Target{}
	for _, tg := range Targets(sampleRun(), nil) {
		got[tg.Name] = tg
	}
	tests := []struct {
		name     string
		met      bool
		measured string
	}{
		{"W1 added latency F−D at 1,000 req/s, p50", true, "0.600 ms"},
		{"W1 added latency F−D at 1,000 req/s, p99", true, "1.200 ms"},
		{"policy cost (F−D)/(N−D) at 1,000 req/s, p50", false, "1.50 (F−D 0.600 ms, N−D 0.400 ms)"},
		{"policy cost (F−D)/(N−D) at 1,000 req/s, p99", true, "1.20 (F−D 1.200 ms, N−D 1.000 ms)"},
		// F's knee is at 2000 (p99 60 ms); its best rate below is the 1500 bisection step.
		{"Tollgate CPU per request at saturation", true, "80.0 µs at 1500 req/s (F's highest rate below the knee)"},
		{"F saturation throughput vs N's", false, "50% (F 1500 req/s, knee at 2000 req/s; N 3000 req/s, knee at 4000 req/s)"},
		{"W2 added gap between chunks, p99 (25 streams/s)", true, "0.400 ms (F 10.900 ms, D 10.500 ms)"},
		{"Tollgate CPU per streamed chunk", true, "2.48 µs (all of Tollgate's CPU in W2 over the chunks received; request phase included)"},
		{"non-2xx responses at the fixed rates (W1, W2, W3)", true, "0 non-2xx, 0 failed in all"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg, ok := got[tc.name]
			require.True(t, ok, "target missing; have %v", got)
			require.Equal(t, tc.measured, tg.Measured)
			require.Equal(t, tc.met, tg.Met)
		})
	}
	require.False(t, got["RSS with 1,000 concurrent streams, flat over 10 minutes"].Known)
}

func TestSoakRSS(t *testing.T) {
	s := &Soak{Streams: 1000, RampSeconds: 10, HoldSeconds: 180, Result: &PathResult{}}
	for i := range 200 {
		s.Timeline = append(s.Timeline, Tick{T: float64(i), RSS: map[string]int64{ProcTollgate: int64(50+i/60) << 20}})
	}
	peak, first, last, slope := SoakRSS(s, ProcTollgate)
	require.InDelta(t, 53, peak, 0.01)
	require.InDelta(t, 50.17, first, 0.05)
	require.InDelta(t, 52.17, last, 0.05)
	require.InDelta(t, 1, slope, 0.1)
	tg := soakTargets(s)
	require.True(t, tg[0].Met, tg[0].Measured)
}

// TestRender writes the report and the charts from JSON alone.
func TestRender(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(filepath.Join(dir, RunFile), sampleRun()))
	require.NoError(t, os.WriteFile(filepath.Join(dir, AnalysisFile), []byte("# Analysis\n\nBound by the machine.\n"), 0o644))
	require.NoError(t, Render(dir))
	md, err := os.ReadFile(filepath.Join(dir, ReportFile))
	require.NoError(t, err)
	require.Contains(t, string(md), "| W1 added latency F−D at 1,000 req/s, p50 | ≤ 0.6 ms | 0.600 ms | met |")
	require.Contains(t, string(md), "## Analysis\n\nBound by the machine.")
	for _, png := range []string{"w1-latency.png", "w1-cpu-per-request.png", "w3-latency.png"} {
		b, err := os.ReadFile(filepath.Join(dir, png))
		require.NoError(t, err)
		require.Equal(t, "\x89PNG", string(b[:4]), png)
		require.Contains(t, string(md), "!["+png+"]("+png+")")
	}
}
