package extproc_test

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// goroutineSource records the goroutine each stream's handler runs on: Process loads the
// snapshot once, on that goroutine.
type goroutineSource struct {
	s  *policy.Snapshot
	mu sync.Mutex
	id map[uint64]int
}

func (g *goroutineSource) Snapshot() *policy.Snapshot {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf) // "goroutine 123 [running]:"
	id, _ := strconv.ParseUint(string(f[1]), 10, 64)
	g.mu.Lock()
	g.id[id]++
	g.mu.Unlock()
	return g.s
}

// TestStreamWorkersReuseGoroutines: GRPCServerOptions serves streams on a pool of worker
// goroutines instead of a new goroutine per stream, so a stream does not start on a small
// stack that the handler's call depth must grow (runtime.morestack and copystack were 4.6%
// of Tollgate's CPU under make bench before).
func TestStreamWorkersReuseGoroutines(t *testing.T) {
	fx := policytest.New(t)
	src := &goroutineSource{s: fx.Snapshot, id: map[uint64]int{}}
	h := serveServer(t, fx, extproc.New(src, zap.NewNop(), extproc.WithClock(func() time.Time { return fx.Now })))
	const streams = 20
	for range streams {
		s, cancel := h.open(t)
		roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
		require.NoError(t, s.CloseSend())
		_, _ = s.Recv() // the server ends the stream
		cancel()
		h.waitIdle(t)
	}
	total := 0
	for _, n := range src.id {
		total += n
	}
	require.Equal(t, streams, total)
	require.LessOrEqual(t, len(src.id), runtime.GOMAXPROCS(0), "sequential streams ran on %d goroutines", len(src.id))
}
