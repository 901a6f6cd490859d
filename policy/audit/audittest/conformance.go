// Package audittest is the conformance suite every audit sink passes: the writer (standard
// output) sink, the file sink and the webhook sink run the same subtests, each against its
// own destination (a buffer, a directory, an httptest receiver).
//
// The suite feeds a sink records chained by a real audit.Emitter, as production does, and
// checks what reached the destination, what the sink reports (errors, Healthy, SinkStats)
// and what it does after Close. Sinks that deliver in the background (the webhook) are
// waited for by polling their counters, never by sleeping.
package audittest

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// Sink is what every audit sink implements: the Emitter's audit.Sink, plus the health and
// the counters the Emitter reports for it.
type Sink interface {
	audit.Sink
	// Healthy reports false while the sink cannot deliver: its last delivery failed, or it
	// is closed. It is called concurrently with Write (readiness probes).
	Healthy() bool
	// SinkStats returns the sink's counters; Healthy agrees with Healthy(). It is called
	// concurrently with Write (metrics scrapes).
	SinkStats() audit.SinkStats
}

// Options say what a subtest needs of the sink it is given.
type Options struct {
	// HoldUntilClose asks a sink that delivers in the background to hold what it is given
	// until Close (a long flush interval, a large batch), so the suite can tell Close's
	// flush from a background one. Otherwise it delivers promptly. Sinks that deliver in
	// Write ignore it.
	HoldUntilClose bool
}

// Target is one sink under test and its destination.
type Target struct {
	Sink Sink
	// Output returns every line that reached the destination so far, in order, each ending
	// in "\n": records, and the checkpoints and gap records the sink writes itself.
	Output func(t *testing.T) [][]byte
	// Break makes every later delivery fail (a broken pipe, a full disk, a receiver that
	// refuses the batch); Repair undoes it.
	Break, Repair func()
	// Errors returns the errors the sink reported out of band (the webhook's OnError), in
	// addition to what Write and Close return. Nil when the sink reports none that way.
	Errors func() []error
	// Secrets are values that must never appear in an error: credentials and tokens of
	// the sink's configuration, and text of the destination's own replies.
	Secrets []string
}

// Factory builds a fresh sink, with its own destination, for one subtest. It registers its
// own cleanup; the suite closes the sink.
type Factory func(t *testing.T, o Options) Target

// Marker is in every record the suite writes (as its request id), so an error that
// echoes record content is caught.
const Marker = "audittest-record-content"

// chainKey chains the suite's records. It is a test value only.
var chainKey = []byte("audittest-chain-key-0123456789abcdef")

// settleTimeout bounds the wait for a background sink to process what it was given. It
// is a deadlock guard, not a performance bound.
const settleTimeout = 10 * time.Second

// RunSinks runs the conformance suite against the sinks newTarget builds.
func RunSinks(t *testing.T, newTarget Factory) {
	t.Run("WriteDelivers", func(t *testing.T) { testWriteDelivers(t, newTarget) })
	t.Run("CloseFlushes", func(t *testing.T) { testCloseFlushes(t, newTarget) })
	t.Run("CloseIsIdempotent", func(t *testing.T) { testCloseIsIdempotent(t, newTarget) })
	t.Run("WriteAfterCloseFails", func(t *testing.T) { testWriteAfterCloseFails(t, newTarget) })
	t.Run("FailedDeliveryIsReportedAndRecovers", func(t *testing.T) { testFailedDelivery(t, newTarget) })
	t.Run("FailedFlushAtCloseIsReported", func(t *testing.T) { testFailedFlushAtClose(t, newTarget) })
	t.Run("HealthAndStatsDuringWrites", func(t *testing.T) { testConcurrentReads(t, newTarget) })
}

// testWriteDelivers: batches written to a working sink reach the destination whole and in
// order, and are counted as delivered; the sink stays healthy.
func testWriteDelivers(t *testing.T, newTarget Factory) {
	tg := newTarget(t, Options{})
	recs := ChainedRecords(t, 5)
	require.True(t, tg.Sink.Healthy(), "a new sink is healthy")
	requireStats(t, tg.Sink, audit.SinkStats{Healthy: true})

	require.NoError(t, tg.Sink.Write(t.Context(), recs[:3]))
	require.NoError(t, tg.Sink.Write(t.Context(), recs[3:]))
	settle(t, tg.Sink, 5)
	eventually(t, tg.Sink.Healthy, "a sink that delivered is healthy")
	requireStats(t, tg.Sink, audit.SinkStats{Healthy: true, Delivered: 5})

	require.NoError(t, tg.Sink.Close())
	require.Equal(t, recs, RecordLines(tg.Output(t)), "every record, byte for byte, in order")
	require.False(t, tg.Sink.Healthy(), "a closed sink is not healthy")
	requireStats(t, tg.Sink, audit.SinkStats{Healthy: false, Delivered: 5})
	requireClean(t, tg, nil)
}

// testCloseFlushes: records a sink still holds when Close is called reach the destination
// before Close returns.
func testCloseFlushes(t *testing.T, newTarget Factory) {
	tg := newTarget(t, Options{HoldUntilClose: true})
	recs := ChainedRecords(t, 4)
	require.NoError(t, tg.Sink.Write(t.Context(), recs))
	require.NoError(t, tg.Sink.Close())
	require.Equal(t, recs, RecordLines(tg.Output(t)), "Close delivers what the sink held")
	requireStats(t, tg.Sink, audit.SinkStats{Healthy: false, Delivered: 4})
	requireClean(t, tg, nil)
}

// testCloseIsIdempotent: a second Close returns nil and writes nothing more (no second
// checkpoint), and changes no counter.
func testCloseIsIdempotent(t *testing.T, newTarget Factory) {
	tg := newTarget(t, Options{HoldUntilClose: true})
	recs := ChainedRecords(t, 2)
	require.NoError(t, tg.Sink.Write(t.Context(), recs))
	require.NoError(t, tg.Sink.Close())
	out, stats := tg.Output(t), tg.Sink.SinkStats()
	require.NoError(t, tg.Sink.Close())
	require.NoError(t, tg.Sink.Close())
	require.Equal(t, out, tg.Output(t), "a repeated Close writes nothing")
	require.Equal(t, stats, tg.Sink.SinkStats(), "a repeated Close counts nothing")
	require.False(t, tg.Sink.Healthy())
}

// testWriteAfterCloseFails: a Write after Close returns an error wrapping audit.ErrClosed,
// delivers nothing, and counts its records as failed or dropped.
func testWriteAfterCloseFails(t *testing.T, newTarget Factory) {
	tg := newTarget(t, Options{})
	recs := ChainedRecords(t, 5)
	require.NoError(t, tg.Sink.Write(t.Context(), recs[:2]))
	require.NoError(t, tg.Sink.Close())
	out := tg.Output(t)

	err := tg.Sink.Write(t.Context(), recs[2:])
	require.ErrorIs(t, err, audit.ErrClosed)
	require.Equal(t, out, tg.Output(t), "nothing is written after Close")
	st := tg.Sink.SinkStats()
	require.Equal(t, uint64(2), st.Delivered)
	require.Equal(t, uint64(3), st.Failed+st.Dropped, "the refused records are counted")
	require.False(t, st.Healthy)
	require.False(t, tg.Sink.Healthy())
	requireClean(t, tg, []error{err})
}

// testFailedDelivery: a batch the destination refuses is reported (by Write or out of
// band) without content or secrets, counted as failed, and makes the sink unhealthy; once
// the destination works again, the next batch is delivered and the sink is healthy again.
func testFailedDelivery(t *testing.T, newTarget Factory) {
	tg := newTarget(t, Options{})
	recs := ChainedRecords(t, 5)
	tg.Break()
	var errs []error
	if err := tg.Sink.Write(t.Context(), recs[:3]); err != nil {
		errs = append(errs, err)
	}
	settle(t, tg.Sink, 3)
	eventually(t, func() bool { return !tg.Sink.Healthy() }, "a sink whose delivery failed is unhealthy")
	requireStats(t, tg.Sink, audit.SinkStats{Healthy: false, Failed: 3})
	if tg.Errors != nil {
		errs = append(errs, tg.Errors()...)
	}
	require.NotEmpty(t, errs, "the failure is reported")

	tg.Repair()
	require.NoError(t, tg.Sink.Write(t.Context(), recs[3:]))
	settle(t, tg.Sink, 5)
	eventually(t, tg.Sink.Healthy, "a sink that delivers again is healthy again")
	requireStats(t, tg.Sink, audit.SinkStats{Healthy: true, Delivered: 2, Failed: 3})

	require.NoError(t, tg.Sink.Close())
	require.Equal(t, recs[3:], RecordLines(tg.Output(t)), "only the records delivered after the repair")
	requireClean(t, tg, errs)
}

// testFailedFlushAtClose: when the destination fails while the sink still owes it a write
// (held records, a checkpoint), Close returns an error without content or secrets; a
// second Close returns nil.
func testFailedFlushAtClose(t *testing.T, newTarget Factory) {
	tg := newTarget(t, Options{HoldUntilClose: true})
	recs := ChainedRecords(t, 3)
	require.NoError(t, tg.Sink.Write(t.Context(), recs))
	tg.Break()
	err := tg.Sink.Close()
	require.Error(t, err, "Close reports the write it could not make")
	require.False(t, tg.Sink.Healthy())
	require.NoError(t, tg.Sink.Close(), "a repeated Close does not try again")
	requireClean(t, tg, []error{err})
}

// testConcurrentReads: Healthy and SinkStats may be called while Write runs (the race
// detector checks it), and the counts add up.
func testConcurrentReads(t *testing.T, newTarget Factory) {
	tg := newTarget(t, Options{})
	recs := ChainedRecords(t, 40)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = tg.Sink.Healthy()
				_ = tg.Sink.SinkStats()
			}
		}
	}()
	for i := 0; i < len(recs); i += 4 {
		require.NoError(t, tg.Sink.Write(t.Context(), recs[i:i+4]))
	}
	settle(t, tg.Sink, uint64(len(recs)))
	close(stop)
	wg.Wait()
	require.NoError(t, tg.Sink.Close())
	requireStats(t, tg.Sink, audit.SinkStats{Healthy: false, Delivered: uint64(len(recs))})
	require.Equal(t, recs, RecordLines(tg.Output(t)))
}

// ChainedRecords returns n records chained by an audit.Emitter, each one JSON line ending in
// "\n" and holding Marker.
func ChainedRecords(t *testing.T, n int) [][]byte {
	t.Helper()
	c := &capture{}
	e, err := audit.NewEmitter(audit.EmitterConfig{ChainKey: chainKey}, c)
	require.NoError(t, err)
	for i := range n {
		e.Emit(&audit.Event{
			RequestID: Marker + "-" + strconv.Itoa(i), KeyID: "key_audittest", Team: "conformance",
			Endpoint: "chat_completions", Status: 200, Decision: audit.DecisionAllow, Reason: "ok", Complete: true,
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	require.NoError(t, e.Close(ctx))
	require.Equal(t, audit.Stats{Emitted: uint64(n), Written: uint64(n)}, e.Stats())
	return c.records()
}

// RecordLines returns the lines of out that are records, leaving out the checkpoints and gap
// records a sink writes itself.
func RecordLines(out [][]byte) [][]byte {
	var recs [][]byte
	for _, l := range out {
		if bytes.HasPrefix(l, []byte(`{"v":1,"type":"checkpoint",`)) || bytes.HasPrefix(l, []byte(`{"v":1,"type":"gap",`)) {
			continue
		}
		recs = append(recs, l)
	}
	return recs
}

// Lines splits b into lines, each keeping its "\n"; an unterminated last line is kept as is.
func Lines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(out, bytes.Clone(b))
		}
		out = append(out, bytes.Clone(b[:i+1]))
		b = b[i+1:]
	}
	return out
}

// capture is a sink that keeps copies of what it is given.
type capture struct {
	mu   sync.Mutex
	recs [][]byte
}

func (c *capture) Write(_ context.Context, batch [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range batch {
		c.recs = append(c.recs, bytes.Clone(r))
	}
	return nil
}

func (c *capture) Close() error { return nil }

func (c *capture) records() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.recs...)
}

// settle waits until the sink has accounted for n records (delivered, failed or dropped).
func settle(t *testing.T, s Sink, n uint64) {
	t.Helper()
	eventually(t, func() bool {
		st := s.SinkStats()
		return st.Delivered+st.Failed+st.Dropped >= n
	}, "the sink accounts for "+strconv.FormatUint(n, 10)+" records")
}

// eventually waits for cond, which a background sink reaches once it has processed what
// it was given (a synchronous sink at once).
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, settleTimeout, time.Millisecond, msg)
}

// requireStats checks the counters that the suite controls, and that SinkStats names the
// sink's own type at index 0 (the Emitter sets the index).
func requireStats(t *testing.T, s Sink, want audit.SinkStats) {
	t.Helper()
	got := s.SinkStats()
	require.NotEmpty(t, got.Type)
	require.NotEqual(t, "custom", got.Type, "a sink counts itself")
	require.Zero(t, got.Index)
	require.Equal(t, want.Healthy, got.Healthy, "SinkStats().Healthy")
	require.Equal(t, want.Delivered, got.Delivered, "delivered")
	require.Equal(t, want.Failed, got.Failed, "failed")
	require.Equal(t, want.Dropped, got.Dropped, "dropped")
}

// requireClean checks that errs, and every error the sink reported out of band, hold no
// record content and none of the target's secrets.
func requireClean(t *testing.T, tg Target, errs []error) {
	t.Helper()
	if tg.Errors != nil {
		errs = append(errs, tg.Errors()...)
	}
	for _, err := range errs {
		if err == nil {
			continue
		}
		msg := err.Error()
		require.NotContains(t, msg, Marker, "an error must not echo record content")
		require.NotContains(t, msg, `"mac":"`, "an error must not echo a record")
		for _, s := range tg.Secrets {
			require.NotContains(t, msg, s, "an error must not hold a secret")
		}
	}
}
