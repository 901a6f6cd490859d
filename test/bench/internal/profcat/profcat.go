// Package profcat splits a CPU profile of Tollgate into where the time went: the policy,
// the ext_proc adapter, the protocol under them (gRPC and HTTP/2, protobuf, the system calls
// that move the bytes), and the Go runtime on its own (scheduler, garbage collector). It is
// the evidence the report gives for what bounds a missed target.
package profcat

import (
	"errors"
	"io"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// Categories, in the order the report shows them.
const (
	Policy   = "policy (key check, budget, guardrails, audit)"
	Adapter  = "ext_proc adapter (extproc)"
	GRPC     = "gRPC and HTTP/2"
	Protobuf = "protobuf"
	Kernel   = "system calls (socket reads and writes)"
	Logging  = "logging and metrics"
	Runtime  = "Go runtime alone (scheduler, GC, idle)"
	Other    = "other"
)

// Order is every category in report order.
var Order = []string{Policy, Adapter, GRPC, Protobuf, Kernel, Logging, Runtime, Other}

// ProtocolCategories are the ones any ext_proc server pays, whatever it decides.
var ProtocolCategories = []string{GRPC, Protobuf, Kernel}

// rules map a function name prefix to its category. A sample belongs to the category of its
// innermost frame that matches a rule; frames of the runtime (allocation, scheduling) are
// charged to the code that caused them.
var rules = []struct{ prefix, category string }{
	{"internal/runtime/syscall.", Kernel},
	{"syscall.", Kernel},
	{"internal/poll.", Kernel},
	{"net.", Kernel},
	{"google.golang.org/grpc", GRPC},
	{"golang.org/x/net/http2", GRPC},
	{"google.golang.org/protobuf", Protobuf},
	{"github.com/envoyproxy/go-control-plane", Protobuf},
	{"github.com/tollgate-ai/tollgate/policy", Policy},
	{"github.com/tollgate-ai/tollgate/extproc", Adapter},
	{"go.uber.org/zap", Logging},
	{"github.com/prometheus", Logging},
}

// Share is one category's part of the profile.
type Share struct {
	Category string  `json:"category"`
	Seconds  float64 `json:"seconds"`
	Percent  float64 `json:"percent"`
}

// Categorize reads a CPU profile and returns every category's share of its samples, in
// report order (categories with no samples included, so the table's shape never changes).
func Categorize(r io.Reader) ([]Share, error) {
	p, err := profile.Parse(r)
	if err != nil {
		return nil, err
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			idx = i
		}
	}
	if idx < 0 {
		return nil, errors.New("profile has no cpu nanoseconds sample type")
	}
	ns := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[idx]
		ns[category(s)] += v
		total += v
	}
	out := make([]Share, 0, len(Order))
	for _, c := range Order {
		sh := Share{Category: c, Seconds: float64(ns[c]) / 1e9}
		if total > 0 {
			sh.Percent = 100 * float64(ns[c]) / float64(total)
		}
		out = append(out, sh)
	}
	return out, nil
}

// category is the category of one sample: its innermost frame that matches a rule; a stack
// of runtime frames only is the runtime's own work.
func category(s *profile.Sample) string {
	onlyRuntime := true
	for _, loc := range s.Location { // leaf first
		for _, line := range loc.Line { // inlined frames: innermost first, the caller last
			fn := line.Function
			if fn == nil {
				continue
			}
			name := fn.Name
			for _, r := range rules {
				if strings.HasPrefix(name, r.prefix) {
					return r.category
				}
			}
			if !isRuntime(name) {
				onlyRuntime = false
			}
		}
	}
	if onlyRuntime {
		return Runtime
	}
	return Other
}

// isRuntime reports whether a function is part of the Go runtime or its internal packages.
func isRuntime(name string) bool {
	return strings.HasPrefix(name, "runtime.") || strings.HasPrefix(name, "internal/") ||
		strings.HasPrefix(name, "sync.") || strings.HasPrefix(name, "sync/atomic.")
}

// Sum adds the shares of the given categories, in percent.
func Sum(shares []Share, categories ...string) float64 {
	want := map[string]bool{}
	for _, c := range categories {
		want[c] = true
	}
	var pct float64
	for _, s := range shares {
		if want[s.Category] {
			pct += s.Percent
		}
	}
	return pct
}

// Sorted returns the shares largest first (a copy).
func Sorted(shares []Share) []Share {
	out := append([]Share(nil), shares...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Percent > out[j].Percent })
	return out
}
