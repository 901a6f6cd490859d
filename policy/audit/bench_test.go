package audit_test

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// BenchmarkEmit measures the request path's cost of auditing: one Emit.
//
// "accepted" is the normal case: the queue has room, and the timer is paused
// while the writer drains each round, so only Emit itself is measured.
// "queue_full" is the overload case, where Emit drops and counts.
func BenchmarkEmit(b *testing.B) {
	b.Run("accepted", func(b *testing.B) {
		const round = 4096
		e := newEmitter(b, audit.EmitterConfig{QueueSize: round}, audit.NewWriterSink(io.Discard, nil))
		ev := sampleEvent(0)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += round {
			for range min(round, b.N-i) {
				e.Emit(&ev)
			}
			b.StopTimer()
			waitWritten(e)
			b.StartTimer()
		}
		b.StopTimer()
		closeEmitter(b, e)
		require.Zero(b, e.Stats().Dropped)
	})
	b.Run("queue_full", func(b *testing.B) {
		g := newGateSink(audit.NewWriterSink(io.Discard, nil))
		e := newEmitter(b, audit.EmitterConfig{QueueSize: 16}, g)
		ev := sampleEvent(0)
		e.Emit(&ev)
		<-g.entered
		for range 16 {
			e.Emit(&ev)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			e.Emit(&ev)
		}
		b.StopTimer()
		close(g.gate)
		closeEmitter(b, e)
	})
}

// BenchmarkEmitParallel is BenchmarkEmit/accepted from GOMAXPROCS goroutines,
// as concurrent streams call it. The queue is large enough that little is
// dropped; drops/op reports what was.
func BenchmarkEmitParallel(b *testing.B) {
	e := newEmitter(b, audit.EmitterConfig{QueueSize: 1 << 20}, audit.NewWriterSink(io.Discard, nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ev := sampleEvent(0)
		for pb.Next() {
			e.Emit(&ev)
		}
	})
	b.StopTimer()
	closeEmitter(b, e)
	b.ReportMetric(float64(e.Stats().Dropped)/float64(b.N), "drops/op")
}

// waitWritten polls until everything emitted has been written, sleeping so
// as not to take CPU from the writer.
func waitWritten(e *audit.Emitter) {
	for {
		s := e.Stats()
		if s.Written >= s.Emitted {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// captureSink keeps the chained records it is given.
type captureSink struct {
	mu   sync.Mutex
	recs [][]byte
}

func (c *captureSink) Write(_ context.Context, batch [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, batch...)
	return nil
}

func (c *captureSink) Close() error { return nil }

// chainedRecords returns n chained event records.
func chainedRecords(b *testing.B, n int) [][]byte {
	c := &captureSink{}
	e := newEmitter(b, audit.EmitterConfig{QueueSize: n}, c)
	for i := range n {
		ev := sampleEvent(i)
		e.Emit(&ev)
	}
	closeEmitter(b, e)
	require.Len(b, c.recs, n)
	return c.recs
}

// BenchmarkFileSink measures FileSink throughput in events per second, in
// batches of 256 (the emitter's default), per fsync mode.
func BenchmarkFileSink(b *testing.B) {
	const batch = 256
	recs := chainedRecords(b, batch)
	for _, mode := range []audit.FsyncMode{audit.FsyncNever, audit.FsyncInterval, audit.FsyncAlways} {
		b.Run(string(mode), func(b *testing.B) {
			fs, err := audit.NewFileSink(audit.FileSinkConfig{
				Path: filepath.Join(b.TempDir(), "audit.log"), Fsync: mode, CheckpointKey: ckPriv,
			})
			require.NoError(b, err)
			ctx := context.Background()
			b.SetBytes(int64(len(recs[0])))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				require.NoError(b, fs.Write(ctx, recs[:min(batch, b.N-i)]))
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			require.NoError(b, fs.Close())
		})
	}
}

// BenchmarkEmitterToFile measures the whole pipeline (serialize, chain,
// write) in events per second: Emit in rounds no larger than the queue, and
// wait for each round to be written.
func BenchmarkEmitterToFile(b *testing.B) {
	fs, err := audit.NewFileSink(audit.FileSinkConfig{
		Path: filepath.Join(b.TempDir(), "audit.log"), Fsync: audit.FsyncInterval, CheckpointKey: ckPriv,
	})
	require.NoError(b, err)
	const round = 4096
	e := newEmitter(b, audit.EmitterConfig{QueueSize: round}, fs)
	ev := sampleEvent(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += round {
		for range min(round, b.N-i) {
			e.Emit(&ev)
		}
		waitWritten(e)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	closeEmitter(b, e)
	require.Zero(b, e.Stats().Dropped)
}

// BenchmarkVerify measures verification speed in records per second.
func BenchmarkVerify(b *testing.B) {
	files := writeSet(b, b.TempDir(), 2000, 256<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_, err := audit.Verify(files, chainKey, ckPub)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "records/s")
}
