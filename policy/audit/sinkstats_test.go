package audit_test

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// deadURL returns an http URL on a loopback port nothing listens on, with a
// token in its query that must never show up in an error or a log.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr + "/ingest?token=" + plantedHookToken
}

// errRecorder collects errors reported from another goroutine.
type errRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (r *errRecorder) add(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *errRecorder) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// TestSinkStatsMakeLossVisible: a webhook at a dead port, a failing custom
// sink and a healthy file sink behind one emitter. Each sink's delivered,
// failed, dropped and retry counts are reported per sink, the failing ones
// are unhealthy, and the webhook reports its failure without the URL.
func TestSinkStatsMakeLossVisible(t *testing.T) {
	t.Parallel()
	var hookErrs errRecorder
	ws, err := audit.NewWebhookSink(audit.WebhookConfig{URL: deadURL(t), BatchSize: 3, FlushInterval: time.Hour,
		MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, OnError: hookErrs.add})
	require.NoError(t, err)
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: filepath.Join(t.TempDir(), "a.log"), CheckpointKey: ckPriv})
	require.NoError(t, err)
	flaky := &flakySink{}
	flaky.fail.Store(true)
	var sinkErrs atomic.Int64
	e := newEmitter(t, audit.EmitterConfig{OnSinkError: func(int, error) { sinkErrs.Add(1) }},
		fs, ws, flaky, audit.NewWriterSink(io.Discard, nil))
	for i := range 3 {
		ev := sampleEvent(i)
		e.Emit(&ev)
	}
	require.Eventually(t, func() bool {
		s := e.SinkStats()
		return s[1].Failed == 3 && s[2].Failed == 3 && s[3].Delivered == 3
	}, 10*time.Second, time.Millisecond)

	got := e.SinkStats()
	require.Len(t, got, 4)
	require.Equal(t, audit.SinkStats{Index: 0, Type: "file", Healthy: true, Delivered: 3}, got[0])
	require.Equal(t, audit.SinkStats{Index: 1, Type: "webhook", Healthy: false, Failed: 3, Retries: 2}, got[1])
	require.Equal(t, audit.SinkStats{Index: 2, Type: "custom", Healthy: false, Failed: 3}, got[2])
	require.Equal(t, audit.SinkStats{Index: 3, Type: "writer", Healthy: true, Delivered: 3}, got[3])
	require.False(t, e.Healthy())
	require.Positive(t, sinkErrs.Load())

	errs := hookErrs.all()
	require.NotEmpty(t, errs, "the webhook reports what it gave up on")
	for _, err := range errs {
		require.ErrorIs(t, err, audit.ErrDelivery)
		require.Contains(t, err.Error(), "3 records")
		require.NotContains(t, err.Error(), plantedHookToken)
		require.NotContains(t, err.Error(), "/ingest")
	}
	closeEmitter(t, e)
}

// TestEmitterReportsDrops: events that could not be queued are reported to
// OnDrop (for a log line) when the chain marks them, not only counted.
func TestEmitterReportsDrops(t *testing.T) {
	t.Parallel()
	g := newGateSink(audit.NewWriterSink(io.Discard, nil))
	var reported atomic.Uint64
	e := newEmitter(t, audit.EmitterConfig{QueueSize: 1, BatchSize: 1, OnDrop: func(n uint64) { reported.Add(n) }}, g)
	ev := sampleEvent(0)
	e.Emit(&ev)
	<-g.entered
	for range 5 {
		e.Emit(&ev) // 1 fits, 4 are dropped
	}
	close(g.gate)
	closeEmitter(t, e)
	require.Equal(t, uint64(4), e.Stats().Dropped)
	require.Equal(t, uint64(4), reported.Load())
}

func TestWebhookErrorsNeverNameTheURL(t *testing.T) {
	t.Parallel()
	u := deadURL(t)
	ws, err := audit.NewWebhookSink(audit.WebhookConfig{URL: strings.Replace(u, "http://", "http://user:PLANTEDPASS@", 1),
		FlushInterval: time.Millisecond, MaxAttempts: 1})
	require.NoError(t, err)
	require.NoError(t, ws.Write(t.Context(), [][]byte{[]byte("{}\n")}))
	err = ws.Close()
	require.ErrorIs(t, err, audit.ErrDelivery)
	require.NotContains(t, err.Error(), "PLANTEDPASS")
	require.NotContains(t, err.Error(), plantedHookToken)
	require.Equal(t, audit.SinkStats{Type: "webhook", Failed: 1}, ws.SinkStats())
}

// brokenPipe fails every write, like standard output whose reader went away.
type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, errFlaky }

func TestWriterSinkCountsFailedWrites(t *testing.T) {
	t.Parallel()
	e := newEmitter(t, audit.EmitterConfig{}, audit.NewWriterSink(brokenPipe{}, nil))
	for i := range 2 {
		ev := sampleEvent(i)
		e.Emit(&ev)
	}
	require.Eventually(t, func() bool { return e.Stats().Written == 2 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []audit.SinkStats{{Type: "writer", Failed: 2}}, e.SinkStats())
	require.False(t, e.Healthy())
	closeEmitter(t, e)
}
