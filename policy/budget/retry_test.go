package budget_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

// manualTimers is a hand-driven budget.AfterFunc: nothing runs until the test fires it.
type manualTimers struct {
	mu      sync.Mutex
	pending []*manualTimer
}

type manualTimer struct {
	mt      *manualTimers
	d       time.Duration
	f       func()
	stopped bool
}

func (mt *manualTimers) after(d time.Duration, f func()) budget.Timer {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	t := &manualTimer{mt: mt, d: d, f: f}
	mt.pending = append(mt.pending, t)
	return t
}

func (t *manualTimer) Stop() bool {
	t.mt.mu.Lock()
	defer t.mt.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// scheduled lists the delays of live timers.
func (mt *manualTimers) scheduled() []time.Duration {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	var out []time.Duration
	for _, t := range mt.pending {
		if !t.stopped {
			out = append(out, t.d)
		}
	}
	return out
}

// fire runs every live timer once, outside the lock.
func (mt *manualTimers) fire() {
	mt.mu.Lock()
	due := mt.pending
	mt.pending = nil
	mt.mu.Unlock()
	for _, t := range due {
		if !t.stopped {
			t.f()
		}
	}
}

// outageLedger is a memory ledger behind a store that can go down. While down, calls fail
// with ErrUnavailable; with applyThenFail a Reserve is applied before it fails, as a reserve
// that timed out in the client but reached the server is.
type outageLedger struct {
	*budget.MemoryLedger
	mu            sync.Mutex
	down          bool
	applyThenFail bool
	settles       int
}

var errDown = fmt.Errorf("%w: store down", budget.ErrUnavailable)

func (l *outageLedger) set(down, applyThenFail bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down, l.applyThenFail = down, applyThenFail
}

func (l *outageLedger) state() (bool, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.down, l.applyThenFail
}

func (l *outageLedger) Reserve(ctx context.Context, id string, items []budget.Item, hold time.Duration) (int, error) {
	down, apply := l.state()
	if down {
		if apply {
			_, _ = l.MemoryLedger.Reserve(ctx, id, items, hold)
		}
		return 0, errDown
	}
	return l.MemoryLedger.Reserve(ctx, id, items, hold)
}

func (l *outageLedger) Settle(ctx context.Context, id string, items []budget.Item, actual []int64) error {
	l.mu.Lock()
	l.settles++
	down := l.down
	l.mu.Unlock()
	if down {
		return errDown
	}
	return l.MemoryLedger.Settle(ctx, id, items, actual)
}

func newRetrying(t *testing.T, opts ...budget.RetryOption) (*budget.Retrying, *outageLedger, *manualTimers) {
	t.Helper()
	inner := &outageLedger{MemoryLedger: budget.NewMemoryLedger()}
	timers := &manualTimers{}
	r := budget.NewRetrying(inner, append([]budget.RetryOption{budget.WithRetryTimers(timers.after),
		budget.WithRetryBackoff(100*time.Millisecond, time.Second)}, opts...)...)
	return r, inner, timers
}

func TestRetryingSettleSurvivesAnOutage(t *testing.T) {
	r, inner, timers := newRetrying(t)
	items := []budget.Item{{Key: "a", Limit: 100, Amount: 50}, {Key: "b", Limit: 100, Amount: 50}}
	denied, err := r.Reserve(ctx, "r1", items, time.Hour)
	require.NoError(t, err)
	require.Equal(t, -1, denied)

	inner.set(true, false)
	require.NoError(t, r.Settle(ctx, "r1", items, []int64{30, 40}), "a settle the store missed is queued, not lost")
	require.Equal(t, budget.RetryStats{Deferred: 1, Pending: 1}, r.Stats())

	// Retries back off exponentially up to the maximum while the store stays down.
	require.Equal(t, []time.Duration{100 * time.Millisecond}, timers.scheduled())
	for _, want := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second} {
		timers.fire()
		require.Equal(t, []time.Duration{want}, timers.scheduled())
	}
	require.Equal(t, budget.RetryStats{Deferred: 1, Retries: 5, Pending: 1}, r.Stats())

	inner.set(false, false)
	timers.fire()
	require.Empty(t, timers.scheduled())
	require.Equal(t, budget.RetryStats{Deferred: 1, Retries: 6, Recovered: 1}, r.Stats())
	b, err := r.Balances(ctx, []string{"a", "b"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Used: 30}, {Used: 40}}, b, "the spend arrived, exactly once")

	// The backoff starts over after a success.
	inner.set(true, false)
	require.NoError(t, r.Settle(ctx, "r2", items, []int64{1, 1}))
	require.Equal(t, []time.Duration{100 * time.Millisecond}, timers.scheduled())
}

func TestRetryingQueueIsBounded(t *testing.T) {
	r, inner, timers := newRetrying(t, budget.WithRetryQueue(2))
	items := []budget.Item{{Key: "a", Limit: 100}}
	inner.set(true, false)
	require.NoError(t, r.Settle(ctx, "r1", items, []int64{1}))
	require.NoError(t, r.Settle(ctx, "r2", items, []int64{2}))
	err := r.Settle(ctx, "r3", items, []int64{4})
	require.ErrorIs(t, err, budget.ErrUnavailable, "a full queue gives the error back")
	require.Equal(t, budget.RetryStats{Deferred: 2, Dropped: 1, Pending: 2}, r.Stats())

	inner.set(false, false)
	timers.fire()
	require.Equal(t, budget.RetryStats{Deferred: 2, Dropped: 1, Retries: 2, Recovered: 2}, r.Stats())
	b, err := r.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Used: 3}}, b)
}

func TestRetryingDoesNotRetryRefusals(t *testing.T) {
	r, _, timers := newRetrying(t)
	err := r.Settle(ctx, "r1", []budget.Item{{Key: "a"}}, []int64{-1})
	require.ErrorIs(t, err, budget.ErrInvalidArgument)
	require.Empty(t, timers.scheduled())
	require.Equal(t, budget.RetryStats{}, r.Stats())
}

// TestRetryingReleasesAFailedReserve is the phantom reservation: a reserve that failed in the
// caller (who refused the request) but reached the store. The queued release frees it, and
// leaves the id settled, so a reserve of it arriving even later holds nothing.
func TestRetryingReleasesAFailedReserve(t *testing.T) {
	r, inner, timers := newRetrying(t)
	items := []budget.Item{{Key: "a", Limit: 100, Amount: 60}}
	inner.set(true, true)
	_, err := r.Reserve(ctx, "r1", items, time.Hour)
	require.ErrorIs(t, err, budget.ErrUnavailable)
	require.Equal(t, budget.RetryStats{Releases: 1, Pending: 1}, r.Stats())
	b, err := inner.MemoryLedger.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Reserved: 60}}, b, "the phantom")

	inner.set(false, false)
	timers.fire()
	b, err = r.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{}}, b, "released, and nothing charged")
	require.Equal(t, budget.RetryStats{Releases: 1, Retries: 1, Recovered: 1}, r.Stats())

	_, err = inner.MemoryLedger.Reserve(ctx, "r1", items, time.Hour) // the late arrival
	require.ErrorIs(t, err, budget.ErrInvalidArgument)
	b, err = r.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{}}, b)

	// A reserve refused for a reason other than an outage leaves nothing to release.
	_, err = r.Reserve(ctx, "", items, time.Hour)
	require.ErrorIs(t, err, budget.ErrInvalidArgument)
	require.Equal(t, int64(1), r.Stats().Releases)
}

func TestRetryingCloseFlushes(t *testing.T) {
	r, inner, timers := newRetrying(t)
	items := []budget.Item{{Key: "a", Limit: 100}}
	inner.set(true, false)
	require.NoError(t, r.Settle(ctx, "r1", items, []int64{5}))
	require.NoError(t, r.Settle(ctx, "r2", items, []int64{6}))
	inner.set(false, false)
	require.NoError(t, r.Close(ctx), "the store is back: the final flush records both")
	require.Empty(t, timers.scheduled())
	require.Equal(t, budget.RetryStats{Deferred: 2, Retries: 2, Recovered: 2}, r.Stats())
	b, err := inner.MemoryLedger.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Used: 11}}, b)

	r, inner, _ = newRetrying(t)
	inner.set(true, false)
	require.NoError(t, r.Settle(ctx, "r1", items, []int64{5}))
	err = r.Close(ctx)
	require.ErrorIs(t, err, budget.ErrUnavailable)
	require.ErrorContains(t, err, "1 settlement")
	require.Equal(t, budget.RetryStats{Deferred: 1, Retries: 1, Dropped: 1}, r.Stats())
	require.ErrorIs(t, r.Settle(ctx, "r2", items, []int64{1}), budget.ErrUnavailable, "nothing is queued after Close")
	require.Equal(t, int64(2), r.Stats().Dropped)
}

func TestRetryingIsAnExtender(t *testing.T) {
	r, _, _ := newRetrying(t)
	items := []budget.Item{{Key: "a", Limit: 100, Amount: 10}}
	_, err := r.Reserve(ctx, "r1", items, time.Minute)
	require.NoError(t, err)
	held, err := r.Extend(ctx, "r1", items, time.Hour)
	require.NoError(t, err)
	require.True(t, held)

	plain := budget.NewRetrying(struct{ budget.Ledger }{budget.NewMemoryLedger()})
	held, err = plain.Extend(ctx, "r1", items, time.Hour)
	require.NoError(t, err)
	require.False(t, held, "a ledger without Extend holds nothing it could extend")
	require.False(t, errors.Is(err, budget.ErrUnavailable))
}
