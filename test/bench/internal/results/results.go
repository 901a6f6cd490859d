// Package results is the bench's JSON result format, the targets checked against it, the
// Markdown report and the PNG charts, all regenerated from the JSON alone.
package results

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/tollgate-ai/tollgate/test/bench/internal/calib"
	"github.com/tollgate-ai/tollgate/test/bench/internal/profcat"
)

// Paths, in the order they run in every round.
const (
	PathD = "D" // Envoy only
	PathN = "N" // Envoy + ext_proc to the do-nothing server
	PathF = "F" // Envoy + ext_proc to Tollgate with the example's full policy
)

// PathOrder is the round order.
var PathOrder = []string{PathD, PathN, PathF}

// Processes whose CPU is accounted.
const (
	ProcEnvoy    = "envoy"
	ProcTollgate = "tollgate"
	ProcNoop     = "noop"
	ProcUpstream = "upstream"
	ProcDriver   = "driver"
)

// Run is one `make bench` run.
type Run struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	Versions Versions  `json:"versions"`
	Settings Settings  `json:"settings"`
	Steps    []*Step   `json:"steps"`
	// Timeline is sampled every second for the whole run.
	Timeline []Tick `json:"timeline"`
	// Upstream is what reached the upstream over the whole run.
	Upstream UpstreamStats `json:"upstream"`
	// Profile is the pprof top of Tollgate's CPU during the profiled segment, if taken.
	Profile *Profile `json:"profile,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	NProc       int        `json:"nproc"`
	CPUModel    string     `json:"cpu_model"`
	Kernel      string     `json:"kernel"`
	MemTotal    string     `json:"mem_total"`
	LoadAtStart [3]float64 `json:"load_at_start"`
	LoadAtEnd   [3]float64 `json:"load_at_end"`
	// Calibration is what a syscall and a loopback round trip cost here, measured before
	// the stack starts.
	Calibration *calib.Result `json:"calibration,omitempty"`
}

// Versions are what was measured.
type Versions struct {
	Envoy     string            `json:"envoy"`
	Go        string            `json:"go"`
	Tollgate  string            `json:"tollgate"`
	Libraries map[string]string `json:"libraries"` // module → version, from the tollgate binary
	Bench     map[string]string `json:"bench_libraries"`
}

// Settings are the run's knobs.
type Settings struct {
	Profile          string  `json:"profile"`
	SegmentSeconds   float64 `json:"segment_seconds"`
	EnvoyConcurrency int     `json:"envoy_concurrency"`
	KneeP99Ms        float64 `json:"knee_p99_ms"`
	MaxInFlight      int     `json:"max_in_flight"`
	RequestBodyBytes int     `json:"request_body_bytes"`
	ReplyBytes       int     `json:"reply_bytes"`
	StreamChunks     int     `json:"stream_chunks"`
	StreamChunkBytes int     `json:"stream_chunk_bytes"`
	StreamCadenceMs  float64 `json:"stream_cadence_ms"`
	Transport        string  `json:"transport"`
	// ExtProcEnv is what was added to the ext_proc servers' environment (e.g. GOMAXPROCS=1).
	ExtProcEnv []string `json:"extproc_env,omitempty"`
}

// Step is one workload at one offered rate, every path measured over the same rounds.
type Step struct {
	Workload string                 `json:"workload"` // W1, W2, W3
	Phase    string                 `json:"phase"`    // fixed, sweep
	Rate     float64                `json:"rate"`     // offered requests per second
	Rounds   int                    `json:"rounds"`
	Paths    map[string]*PathResult `json:"paths"`
}

// PathResult is one path's figures in a step, summed over its segments.
type PathResult struct {
	Scheduled  int64   `json:"scheduled"`
	OK         int64   `json:"ok"`
	Non2xx     int64   `json:"non_2xx"`
	Errors     int64   `json:"errors"`
	Dropped    int64   `json:"dropped"`
	Events     int64   `json:"events"`
	WallS      float64 `json:"wall_s"`
	Throughput float64 `json:"throughput"` // OK per second of wall time

	Latency Percentiles  `json:"latency_ms"`
	TTFB    *Percentiles `json:"ttfb_ms,omitempty"`
	Gap     *Percentiles `json:"gap_ms,omitempty"`

	// CPU is each process's CPU seconds during this path's segments.
	CPU map[string]float64 `json:"cpu_s"`
	// RSSMax is each process's largest resident set during this path's segments, bytes.
	RSSMax        map[string]int64  `json:"rss_max_bytes"`
	GoroutinesMax int64             `json:"tollgate_goroutines_max"`
	Load1Max      float64           `json:"load1_max"`
	Failures      map[string]string `json:"failures,omitempty"`
}

// CPUPerRequest is proc's CPU per completed request, µs.
func (p *PathResult) CPUPerRequest(proc string) float64 {
	if p == nil || p.OK == 0 {
		return 0
	}
	return p.CPU[proc] / float64(p.OK) * 1e6
}

// CPUPerEvent is proc's CPU per SSE event received, µs.
func (p *PathResult) CPUPerEvent(proc string) float64 {
	if p == nil || p.Events == 0 {
		return 0
	}
	return p.CPU[proc] / float64(p.Events) * 1e6
}

// Failed counts requests that did not end in a complete 2xx.
func (p *PathResult) Failed() int64 { return p.Non2xx + p.Errors + p.Dropped }

// Percentiles of a latency histogram, milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// Tick is one second of the run.
type Tick struct {
	T          float64          `json:"t"` // seconds since the start
	Label      string           `json:"label,omitempty"`
	RSS        map[string]int64 `json:"rss"`
	Goroutines int64            `json:"tollgate_goroutines"`
	Load1      float64          `json:"load1"`
}

// UpstreamStats mirrors the upstream's counters.
type UpstreamStats struct {
	Requests     int64 `json:"requests"`
	Streams      int64 `json:"streams"`
	ProviderKey  int64 `json:"provider_key"`
	Marker       int64 `json:"marker"`
	MarkerWithPK int64 `json:"marker_with_provider_key"`
}

// Profile is the top of a CPU profile.
type Profile struct {
	Segment string   `json:"segment"`
	Seconds float64  `json:"seconds"`
	Top     []string `json:"top"`
	// Breakdown splits the profile's samples into policy, adapter, protocol and runtime.
	Breakdown []profcat.Share `json:"breakdown,omitempty"`
}

// Soak is `make bench-soak`: many concurrent streams through F for a long time.
type Soak struct {
	Started     time.Time   `json:"started"`
	Machine     Machine     `json:"machine"`
	Streams     int         `json:"streams"`
	HoldSeconds float64     `json:"hold_seconds"`
	RampSeconds float64     `json:"ramp_seconds"`
	CadenceMs   float64     `json:"cadence_ms"`
	Chunks      int         `json:"chunks"`
	Result      *PathResult `json:"result"`
	Timeline    []Tick      `json:"timeline"`
}

// Write writes v as indented JSON.
func Write(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read reads JSON from path into v.
func Read(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
