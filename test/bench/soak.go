package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/tollgate-ai/tollgate/test/bench/internal/load"
	"github.com/tollgate-ai/tollgate/test/bench/internal/results"
	"github.com/tollgate-ai/tollgate/test/bench/internal/stack"
	"github.com/tollgate-ai/tollgate/test/bench/internal/upstream"
)

// runSoak is `bench soak`: streams concurrent W2 streams through F, each chunks long at
// cadence, for the ramp (until streams are open) plus hold, sampling memory every second.
// Writes soak.json and regenerates the report when results.json exists.
func runSoak(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := commonFlags(fs)
	streams := fs.Int("streams", 1000, "concurrent streams to hold")
	hold := fs.Duration("hold", 10*time.Minute, "how long to hold them after the ramp")
	chunks := fs.Int("chunks", 200, "content chunks per stream")
	cadence := fs.Duration("cadence", 250*time.Millisecond, "pause before each chunk")
	if err := fs.Parse(args); err != nil {
		return err
	}
	streamLen := time.Duration(*chunks) * *cadence
	rate := float64(*streams) / streamLen.Seconds()
	ramp := streamLen
	out := &results.Soak{Started: time.Now().UTC(), Machine: machine(), Streams: *streams, HoldSeconds: hold.Seconds(),
		RampSeconds: ramp.Seconds(), CadenceMs: float64(cadence.Microseconds()) / 1000, Chunks: *chunks}
	st, err := c.startStack(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Stop()
	b := &bench{p: plans["default"], st: st, client: load.NewClient(), log: stderr, pids: pidsOf(st),
		bodies: map[string][]byte{W2: requestBody(W2, 4096)}}
	b.p.maxFlight = *streams * 2
	b.p.timeout = streamLen + time.Minute
	b.smp = newSampler(pidsOf(st), "http://"+stack.Addr(st.AdminPort)+"/metrics")
	smpCtx, stopSmp := context.WithCancel(ctx)
	defer stopSmp()
	go b.smp.run(smpCtx)
	sh := upstream.DefaultShape
	sh.Chunks, sh.Cadence = *chunks, *cadence
	if err := b.setShape(sh); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "soak: %.1f streams/s of %s each (%d open after %s), held %s\n", rate, streamLen, *streams, ramp, *hold)
	a := newAcc()
	b.segment(ctx, "soak W2 F", W2, results.PathF, rate, ramp+*hold, a)
	stopSmp()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	out.Result = summarize(a)
	out.Timeline = b.smp.ticks()
	if err := results.Write(filepath.Join(c.out, results.SoakFile), out); err != nil {
		return err
	}
	if fileExists(filepath.Join(c.out, results.RunFile)) {
		return results.Render(c.out)
	}
	return nil
}
