package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/test/bench/internal/profcat"
	"github.com/tollgate-ai/tollgate/test/bench/internal/results"
)

// profile restarts Tollgate with a CPU profile (serve --cpuprofile), runs F with workload
// (W1 at 1,000 requests a second, or W2 at the plan's highest stream rate) for the plan's
// profileFor, stops Tollgate so the profile is written, and returns the top of
// `go tool pprof`. The profile file stays in the work directory for closer reading.
func (b *bench) profile(ctx context.Context, c *common, workload string) (*results.Profile, error) {
	rate := 1000.0
	if workload == W2 {
		rate = b.p.w2Rates[len(b.p.w2Rates)-1]
	}
	path := filepath.Join(c.work, "tollgate-"+workload+".cpu.pprof")
	fmt.Fprintf(b.log, "profile: Tollgate restarted with --cpuprofile %s\n", path)
	if err := b.st.RestartTollgate("--cpuprofile", path); err != nil {
		return nil, err
	}
	b.pids[results.ProcTollgate] = b.st.Tollgate.Pid()
	b.smp.setPid(results.ProcTollgate, b.st.Tollgate.Pid())
	if err := b.setShape(shapeFor(workload, b.p)); err != nil {
		return nil, err
	}
	a := newAcc()
	b.segment(ctx, fmt.Sprintf("profile %s %g/s F", workload, rate), workload, results.PathF, rate, b.p.profileFor, a)
	b.st.Tollgate.Stop(20 * time.Second)
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=30", c.tollgate, path).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	var top []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		top = append(top, strings.TrimRight(line, " "))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	breakdown, err := profcat.Categorize(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &results.Profile{Segment: fmt.Sprintf("%s at %g req/s through F", workload, rate), Seconds: b.p.profileFor.Seconds(), Top: top, Breakdown: breakdown}, nil
}
