package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/test/bench/internal/calib"
	"github.com/tollgate-ai/tollgate/test/bench/internal/load"
	"github.com/tollgate-ai/tollgate/test/bench/internal/procstat"
	"github.com/tollgate-ai/tollgate/test/bench/internal/results"
	"github.com/tollgate-ai/tollgate/test/bench/internal/stack"
)

// common are the flags of run and soak.
type common struct {
	repo, tollgate, envoy, out, work string
	concurrency                      int
	extProcEnv                       envList
	unix                             bool
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func commonFlags(fs *flag.FlagSet) *common {
	c := &common{}
	fs.StringVar(&c.repo, "repo", "../..", "repository root")
	fs.StringVar(&c.tollgate, "tollgate", "../../bin/tollgate", "tollgate binary")
	fs.StringVar(&c.envoy, "envoy", os.Getenv("ENVOY_BIN"), "Envoy 1.40 binary (default $ENVOY_BIN)")
	fs.StringVar(&c.out, "out", "results", "directory for the JSON results, REPORT.md and charts")
	fs.StringVar(&c.work, "work", "", "working directory for configs, state and logs (default: a new temporary one)")
	fs.IntVar(&c.concurrency, "concurrency", 2, "Envoy worker threads (--concurrency)")
	fs.Var(&c.extProcEnv, "extproc-env", "KEY=VALUE added to the environment of Tollgate and the do-nothing server (repeatable)")
	fs.BoolVar(&c.unix, "unix", false, "ext_proc over unix sockets instead of loopback TCP (Tollgate and the do-nothing server)")
	return c
}

// startStack resolves the paths and starts the stack.
func (c *common) startStack(ctx context.Context, log io.Writer) (*stack.Stack, error) {
	if c.envoy == "" {
		return nil, errors.New("no Envoy: pass --envoy or set ENVOY_BIN (make bench finds it with test/tools/envoy-bin.sh)")
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for _, p := range []*string{&c.repo, &c.tollgate, &c.envoy, &c.out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	if c.work == "" {
		if c.work, err = os.MkdirTemp("", "tollgate-bench-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "starting the stack in %s\n", c.work)
	return stack.Start(ctx, stack.Options{Repo: c.repo, Tollgate: c.tollgate, Envoy: c.envoy, Self: self, Work: c.work,
		Concurrency: c.concurrency, Marker: Marker, ExtProcEnv: c.extProcEnv, Unix: c.unix})
}

// pidsOf names the accounted processes.
func pidsOf(st *stack.Stack) map[string]int {
	return map[string]int{results.ProcEnvoy: st.Envoy.Pid(), results.ProcTollgate: st.Tollgate.Pid(),
		results.ProcNoop: st.Noop.Pid(), results.ProcUpstream: st.Upstream.Pid(), results.ProcDriver: os.Getpid()}
}

// runBench is `bench run`.
func runBench(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := commonFlags(fs)
	profile := fs.String("profile", "default", "default, focus (W1 at 1,000 and 2,000 req/s, W2) or quick")
	profileFor := fs.Duration("cpuprofile-for", -1, "how long to profile Tollgate at the end (0: not at all; default: the profile's)")
	profileWL := fs.String("cpuprofile-workload", W1, "workload of the profile: W1 or W2")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, ok := plans[*profile]
	if !ok {
		return fmt.Errorf("unknown profile %q", *profile)
	}
	if *profileFor >= 0 {
		p.profileFor = *profileFor
	}
	out := &results.Run{Started: time.Now().UTC(), Machine: machine()}
	if cal, err := calib.Run(1_000_000, 20_000); err == nil {
		out.Machine.Calibration = &cal
	} else {
		fmt.Fprintf(stderr, "calibration: %v\n", err)
	}
	st, err := c.startStack(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Stop()
	b := &bench{p: p, st: st, client: load.NewClient(), out: out, log: stderr, pids: pidsOf(st),
		bodies: map[string][]byte{W1: requestBody(W1, 4096), W2: requestBody(W2, 4096), W3: requestBody(W3, 4096)}}
	b.smp = newSampler(pidsOf(st), "http://"+stack.Addr(st.AdminPort)+"/metrics")
	smpCtx, stopSmp := context.WithCancel(ctx)
	defer stopSmp()
	go b.smp.run(smpCtx)

	out.Settings = settings(p, c)
	if err := b.all(ctx); err != nil {
		return err
	}
	if p.profileFor > 0 && ctx.Err() == nil {
		prof, err := b.profile(ctx, c, *profileWL)
		if err != nil {
			fmt.Fprintf(stderr, "profile: %v\n", err)
		}
		out.Profile = prof
	}
	if out.Upstream, err = b.upstreamStats(); err != nil {
		return err
	}
	stopSmp()
	out.Timeline = b.smp.ticks()
	out.Versions = versions(ctx, c)
	out.Finished = time.Now().UTC()
	out.Machine.LoadAtEnd, _ = procstat.LoadAvg()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := results.Write(filepath.Join(c.out, "results.json"), out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s in %s\n", filepath.Join(c.out, "results.json"), out.Finished.Sub(out.Started).Round(time.Second))
	return results.Render(c.out)
}

// settings records the plan.
func settings(p plan, c *common) results.Settings {
	transport := "HTTP/1.1 plaintext on loopback (driver → Envoy → upstream); ext_proc gRPC h2c on loopback TCP"
	if c.unix {
		transport = "HTTP/1.1 plaintext on loopback (driver → Envoy → upstream); ext_proc gRPC h2c on unix sockets"
	}
	return results.Settings{Profile: p.name, SegmentSeconds: p.segment.Seconds(), EnvoyConcurrency: c.concurrency,
		ExtProcEnv: c.extProcEnv,
		KneeP99Ms:  float64(p.kneeP99.Milliseconds()), MaxInFlight: p.maxFlight,
		RequestBodyBytes: len(requestBody(W1, 4096)), ReplyBytes: shapeFor(W1, p).ReplyBytes,
		StreamChunks: shapeFor(W2, p).Chunks, StreamChunkBytes: shapeFor(W2, p).ChunkBytes,
		StreamCadenceMs: float64(p.w2Cadence.Microseconds()) / 1000,
		Transport:       transport}
}

// machine describes this machine now.
func machine() results.Machine {
	m := results.Machine{NProc: runtime.NumCPU(), CPUModel: procstat.CPUModel()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		m.MemTotal = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
	}
	m.LoadAtStart, _ = procstat.LoadAvg()
	return m
}

// libraries are the modules whose versions the report names.
var libraries = []string{
	"google.golang.org/grpc", "github.com/envoyproxy/go-control-plane/envoy", "google.golang.org/protobuf",
	"go.uber.org/zap", "github.com/redis/go-redis/v9", "github.com/prometheus/client_golang",
	"github.com/HdrHistogram/hdrhistogram-go", "gonum.org/v1/plot",
}

// versions reads Envoy's version, and Tollgate's Go and module versions from its binary.
func versions(ctx context.Context, c *common) results.Versions {
	v := results.Versions{Go: runtime.Version(), Libraries: map[string]string{}, Bench: map[string]string{}}
	if out, err := exec.CommandContext(ctx, c.envoy, "--version").Output(); err == nil {
		v.Envoy = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), filepath.Base(c.envoy)))
		if _, after, ok := strings.Cut(v.Envoy, "version:"); ok {
			v.Envoy = strings.TrimSpace(after)
		}
	}
	if out, err := exec.CommandContext(ctx, "go", "version", "-m", c.tollgate).Output(); err == nil {
		for line := range strings.SplitSeq(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && strings.HasSuffix(f[0], ":"):
				v.Go = f[1]
			case len(f) >= 3 && f[0] == "mod":
				v.Tollgate = f[2]
			case len(f) >= 3 && f[0] == "dep":
				for _, l := range libraries {
					if f[1] == l {
						v.Libraries[l] = f[2]
					}
				}
			}
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			for _, l := range libraries {
				if d.Path == l {
					v.Bench[l] = d.Version
				}
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", c.repo, "describe", "--always", "--dirty").Output(); err == nil {
		v.Tollgate = strings.TrimSpace(string(out))
	}
	return v
}

// runReport is `bench report`: REPORT.md and the charts from the JSON.
func runReport(args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "results", "directory with results.json (and soak.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return results.Render(*out)
}
