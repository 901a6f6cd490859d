package profcat

import (
	"bytes"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/require"
)

// stack is one sample: its frames, leaf first, and its value.
type stack struct {
	ns     int64
	frames []string
}

// synthetic builds a CPU profile whose samples have the given stacks (leaf first), each
// worth its value in nanoseconds.
func synthetic(t *testing.T, stacks []stack, extraSampleTypes ...*profile.ValueType) []byte {
	t.Helper()
	p := &profile.Profile{
		SampleType: append(extraSampleTypes, &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}),
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
	}
	fns := map[string]*profile.Function{}
	var id uint64
	for _, st := range stacks {
		v := st.ns
		var locs []*profile.Location
		for _, name := range st.frames {
			fn := fns[name]
			if fn == nil {
				id++
				fn = &profile.Function{ID: id, Name: name}
				fns[name] = fn
				p.Function = append(p.Function, fn)
			}
			id++
			loc := &profile.Location{ID: id, Line: []profile.Line{{Function: fn}}}
			p.Location = append(p.Location, loc)
			locs = append(locs, loc)
		}
		values := make([]int64, len(p.SampleType))
		values[len(values)-1] = v
		p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: values})
	}
	var buf bytes.Buffer
	require.NoError(t, p.Write(&buf))
	return buf.Bytes()
}

func shareOf(shares []Share, c string) float64 {
	for _, s := range shares {
		if s.Category == c {
			return s.Percent
		}
	}
	return -1
}

func TestCategorizeChargesTheInnermostKnownFrame(t *testing.T) {
	raw := synthetic(t, []stack{
		// allocation in the guard: the runtime frames are charged to the policy
		{400, []string{"runtime.mallocgc", "runtime.newobject", "github.com/tollgate-ai/tollgate/policy/guard.(*scan).run", "github.com/tollgate-ai/tollgate/extproc.(*stream).requestBody"}},
		// a write by gRPC: the system call, not gRPC
		{300, []string{"internal/runtime/syscall/linux.Syscall6", "syscall.Syscall", "google.golang.org/grpc/internal/transport.(*bufWriter).Flush"}},
		{100, []string{"google.golang.org/protobuf/internal/impl.(*MessageInfo).unmarshalPointer", "google.golang.org/grpc.(*serverStream).RecvMsg"}},
		{50, []string{"github.com/tollgate-ai/tollgate/extproc.(*stream).reply"}},
		{100, []string{"runtime.futex", "runtime.findRunnable", "runtime.schedule"}},
		{49, []string{"go.uber.org/zap.(*Logger).Info"}},
		{1, []string{"main.main"}},
	})
	shares, err := Categorize(bytes.NewReader(raw))
	require.NoError(t, err)
	require.Len(t, shares, len(Order))
	require.InDelta(t, 40, shareOf(shares, Policy), 1e-9)
	require.InDelta(t, 30, shareOf(shares, Kernel), 1e-9)
	require.InDelta(t, 10, shareOf(shares, Protobuf), 1e-9)
	require.InDelta(t, 5, shareOf(shares, Adapter), 1e-9)
	require.InDelta(t, 10, shareOf(shares, Runtime), 1e-9)
	require.InDelta(t, 4.9, shareOf(shares, Logging), 1e-9)
	require.InDelta(t, 0.1, shareOf(shares, Other), 1e-9)
	require.InDelta(t, 0, shareOf(shares, GRPC), 1e-9)
	require.InDelta(t, 40, Sum(shares, ProtocolCategories...), 1e-9)
	require.Equal(t, Policy, Sorted(shares)[0].Category)
}

func TestCategorizeRefusesAProfileWithoutCPU(t *testing.T) {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}}
	var buf bytes.Buffer
	require.NoError(t, p.Write(&buf))
	_, err := Categorize(&buf)
	require.Error(t, err)
	_, err = Categorize(bytes.NewReader([]byte("not a profile")))
	require.Error(t, err)
}
