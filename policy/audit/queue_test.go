package audit_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// bigEvent is an event carrying n bytes of sealed content, freshly allocated
// so that nothing but the queue can keep it alive.
func bigEvent(i, n int) *audit.Event {
	ev := sampleEvent(i)
	ev.Content = &audit.Content{Sealed: strings.Repeat(string(rune('a'+i%26)), n)}
	return &ev
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestEmitterQueueBoundedByBytes stalls the only sink and pushes 200 events
// of 1 MiB content into a queue bounded at 16 MiB: the queue's accounted bytes
// and the heap stay near the bound, the rest is counted as dropped, the
// emitter reports itself unhealthy (fail closed) while it overflows, and the
// chain records the drops once the sink frees up.
func TestEmitterQueueBoundedByBytes(t *testing.T) {
	const (
		events  = 200
		content = 1 << 20
		bound   = 16 << 20
	)
	var out syncBuffer
	g := newGateSink(audit.NewWriterSink(&out, ckPriv))
	e := newEmitter(t, audit.EmitterConfig{QueueMaxBytes: bound}, g)
	e.Emit(&audit.Event{RequestID: "first"})
	<-g.entered // the writer is stuck in the sink from now on

	before := heapInUse()
	for i := range events {
		e.Emit(bigEvent(i, content))
		require.LessOrEqual(t, e.Stats().QueuedBytes, int64(bound), "after event %d", i)
	}
	grown := int64(heapInUse()) - int64(before)
	st := e.Stats()
	t.Logf("heap grew by %d MiB; queue holds %d MiB; %d emitted, %d dropped", grown>>20, st.QueuedBytes>>20, st.Emitted, st.Dropped)
	require.Less(t, grown, int64(3*bound), "unbounded, the queue would hold %d MiB", events*content>>20)
	require.Greater(t, st.QueuedBytes, int64(bound-2*content), "the queue fills up to its bound")
	require.Equal(t, uint64(events+1), st.Emitted+st.Dropped)
	require.Greater(t, st.Dropped, uint64(events-bound/content), "what does not fit is dropped")
	require.False(t, e.Healthy(), "over its byte bound: fail closed refuses new requests")

	close(g.gate)
	require.Eventually(t, e.Healthy, 10*time.Second, time.Millisecond, "healthy again once drained")
	require.Zero(t, e.Stats().QueuedBytes)
	closeEmitter(t, e)
	rep, err := audit.VerifyBytes(map[string][]byte{"a": out.Bytes()}, []string{"a"}, chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, st.Dropped, rep.Dropped, "the chain records every drop")
	require.Equal(t, st.Emitted, rep.Events)
}

// TestEmitterQueueAdmitsOneOversizedEvent: an event larger than the whole
// bound still gets through when nothing else is waiting, so a small bound
// cannot silently discard every large request.
func TestEmitterQueueAdmitsOneOversizedEvent(t *testing.T) {
	t.Parallel()
	g := newGateSink(audit.NewWriterSink(io.Discard, nil))
	e := newEmitter(t, audit.EmitterConfig{QueueMaxBytes: 64 << 10}, g)
	e.Emit(bigEvent(0, 256<<10))
	e.Emit(bigEvent(1, 256<<10))
	st := e.Stats()
	require.Equal(t, uint64(1), st.Emitted)
	require.Equal(t, uint64(1), st.Dropped)
	require.Greater(t, st.QueuedBytes, int64(256<<10), "the content is accounted")
	close(g.gate)
	closeEmitter(t, e)
	require.Zero(t, e.Stats().QueuedBytes)
}

func TestEmitterQueueMaxBytesValidated(t *testing.T) {
	t.Parallel()
	_, err := audit.NewEmitter(audit.EmitterConfig{ChainKey: chainKey, QueueMaxBytes: -1})
	require.ErrorIs(t, err, audit.ErrBadConfig)
}

// TestWebhookQueueBoundedByBytes stalls the receiver: the webhook sink's own
// queue is bounded by bytes too, and what does not fit is counted as dropped.
func TestWebhookQueueBoundedByBytes(t *testing.T) {
	const bound = 4 << 20
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ws, err := audit.NewWebhookSink(audit.WebhookConfig{URL: srv.URL, QueueMaxBytes: bound, BatchSize: 1,
		MaxAttempts: 1, CloseTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	rec := make([]byte, 512<<10)
	copy(rec, `{"v":1,`)
	rec[len(rec)-1] = '\n'
	var refused int
	for range 40 {
		if err := ws.Write(context.Background(), [][]byte{rec}); err != nil {
			require.ErrorIs(t, err, audit.ErrQueueFull)
			refused++
		}
		require.LessOrEqual(t, ws.QueuedBytes(), int64(bound))
	}
	require.Greater(t, refused, 40-2*bound/len(rec))
	require.Equal(t, uint64(refused), ws.Stats().Dropped)
	require.False(t, ws.Healthy(), "over its byte bound")
	require.Error(t, ws.Close())
}
