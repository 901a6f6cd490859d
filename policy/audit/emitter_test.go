package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// gateSink blocks every Write until gate is closed or the context ends, and
// signals entered when a Write starts.
type gateSink struct {
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
	inner   audit.Sink
}

func newGateSink(inner audit.Sink) *gateSink {
	return &gateSink{gate: make(chan struct{}), entered: make(chan struct{}), inner: inner}
}

func (g *gateSink) Write(ctx context.Context, batch [][]byte) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.inner.Write(ctx, batch)
}

func (g *gateSink) Close() error { return g.inner.Close() }

// flakySink fails while fail is set.
type flakySink struct {
	fail   atomic.Bool
	writes atomic.Int64
}

var errFlaky = errors.New("disk on fire")

func (f *flakySink) Write(context.Context, [][]byte) error {
	f.writes.Add(1)
	if f.fail.Load() {
		return errFlaky
	}
	return nil
}

func (f *flakySink) Close() error { return nil }

func TestEmitterChainsConcurrentEmits(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, MaxBytes: 64 << 10, CheckpointKey: ckPriv})
	require.NoError(t, err)
	e := newEmitter(t, audit.EmitterConfig{QueueSize: 10000}, fs)
	const workers, each = 16, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ev := sampleEvent(w*each + i)
				e.Emit(&ev)
			}
		})
	}
	wg.Wait()
	closeEmitter(t, e)
	require.Equal(t, audit.Stats{Emitted: workers * each, Written: workers * each}, e.Stats())
	rep, err := audit.Verify(rotatedFiles(t, path), chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, uint64(workers*each), rep.Events)
	require.Greater(t, len(rep.Files), 1, "rotated")
}

func TestEmitterDropsWhenFullAndMarksTheChain(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	g := newGateSink(audit.NewWriterSink(&out, ckPriv))
	e := newEmitter(t, audit.EmitterConfig{QueueSize: 4, BatchSize: 1}, g)
	ev := sampleEvent(0)
	e.Emit(&ev)
	<-g.entered // the writer is now stuck in the sink with event 1

	for i := range 100 {
		ev := sampleEvent(i + 1)
		e.Emit(&ev) // never blocks: 4 fit in the queue, the rest are dropped
	}
	st := e.Stats()
	require.Positive(t, st.QueuedBytes)
	st.QueuedBytes = 0
	require.Equal(t, audit.Stats{Emitted: 5, Dropped: 96}, st)
	require.False(t, e.Healthy(), "queue full")

	close(g.gate)
	closeEmitter(t, e)
	require.Equal(t, audit.Stats{Emitted: 5, Dropped: 96, Written: 6}, e.Stats())

	p := filepath.Join(t.TempDir(), "out.log")
	require.NoError(t, os.WriteFile(p, out.Bytes(), 0o600))
	rep, err := audit.Verify([]string{p}, chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, uint64(5), rep.Events)
	require.Equal(t, uint64(96), rep.Dropped, "the chain records the drops")
	require.Equal(t, uint64(6), rep.Records)
}

func TestEmitterHealth(t *testing.T) {
	t.Parallel()
	f := &flakySink{}
	var sinkErrs atomic.Int64
	e := newEmitter(t, audit.EmitterConfig{OnSinkError: func(i int, err error) {
		if i == 0 && errors.Is(err, errFlaky) {
			sinkErrs.Add(1)
		}
	}}, f)
	require.True(t, e.Healthy())

	f.fail.Store(true)
	ev := sampleEvent(0)
	e.Emit(&ev)
	require.Eventually(t, func() bool { return !e.Healthy() }, 5*time.Second, time.Millisecond)
	require.Equal(t, uint64(1), e.Stats().SinkErrors)
	require.Equal(t, int64(1), sinkErrs.Load())

	f.fail.Store(false)
	e.Emit(&ev)
	require.Eventually(t, e.Healthy, 5*time.Second, time.Millisecond)

	closeEmitter(t, e)
	require.False(t, e.Healthy(), "closed")
	e.Emit(&ev) // after Close: dropped, no panic
	require.Equal(t, uint64(1), e.Stats().Dropped)
	e.Emit(nil)
}

func TestEmitterCloseDeadline(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	g := newGateSink(audit.NewWriterSink(&out, nil)) // the gate never opens
	e := newEmitter(t, audit.EmitterConfig{BatchSize: 1}, g)
	ev := sampleEvent(0)
	e.Emit(&ev)
	<-g.entered
	for range 10 {
		e.Emit(&ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, e.Close(ctx), context.DeadlineExceeded)

	// A second Close waits for the writer to finish giving up.
	require.NoError(t, e.Close(context.Background()))
	st := e.Stats()
	require.Equal(t, uint64(11), st.Emitted)
	require.Equal(t, uint64(10), st.Dropped, "what was still queued at the deadline")
	require.Equal(t, uint64(1), st.SinkErrors, "the canceled write")
	require.Empty(t, out.Bytes())
}

func TestEmitterStampsTime(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	e := newEmitter(t, audit.EmitterConfig{Now: func() time.Time { return t0 }}, audit.NewWriterSink(&out, nil))
	e.Emit(&audit.Event{RequestID: "no-time"})
	paris := time.FixedZone("CEST", 2*3600)
	e.Emit(&audit.Event{RequestID: "local", Time: time.Date(2026, 8, 17, 12, 0, 0, 0, paris)})
	e.Emit(&audit.Event{RequestID: "unencodable", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	closeEmitter(t, e)
	got := string(out.Bytes())
	require.Contains(t, got, `"time":"2026-08-17T10:15:00.123456789Z","request_id":"no-time"`)
	require.Contains(t, got, `"time":"2026-08-17T10:00:00Z","request_id":"local"`)
	require.NotContains(t, got, "unencodable")
	require.Contains(t, got, `"type":"dropped","time":"2026-08-17T10:15:00.123456789Z","count":1`)
	require.Equal(t, uint64(1), e.Stats().Dropped)
}

func TestNewEmitterValidates(t *testing.T) {
	t.Parallel()
	_, err := audit.NewEmitter(audit.EmitterConfig{ChainKey: []byte("k3y-v4lue")})
	require.ErrorIs(t, err, audit.ErrWeakKey)
	require.NotContains(t, err.Error(), "k3y-v4lue")
	_, err = audit.NewEmitter(audit.EmitterConfig{ChainKey: chainKey, QueueSize: -1})
	require.ErrorIs(t, err, audit.ErrBadConfig)
}

// TestHostileFieldValues checks that field values cannot forge record
// structure: newlines, quotes and a fake chain suffix stay inside their JSON
// strings, the record stays one line, verifies, and round-trips.
func TestHostileFieldValues(t *testing.T) {
	t.Parallel()
	hostile := "x\"}\n{\"v\":1,\"seq\":9,\"prev\":\"" + string(make([]byte, 3)) + "\",\"mac\":\"00\"}\u2028<script>"
	var out syncBuffer
	e := newEmitter(t, audit.EmitterConfig{}, audit.NewWriterSink(&out, ckPriv))
	ev := sampleEvent(0)
	ev.RequestID, ev.Team, ev.Limits = hostile, hostile, []string{hostile}
	e.Emit(&ev)
	closeEmitter(t, e)
	lines := readLinesBytes(out.Bytes())
	require.Len(t, lines, 2, "one record and one checkpoint")
	var back audit.Event
	require.NoError(t, json.Unmarshal(lines[0], &back))
	require.Equal(t, hostile, back.RequestID)
	require.Equal(t, []string{hostile}, back.Limits)

	p := filepath.Join(t.TempDir(), "a.log")
	require.NoError(t, os.WriteFile(p, out.Bytes(), 0o600))
	_, err := audit.Verify([]string{p}, chainKey, ckPub)
	require.NoError(t, err)
}
