package policy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// fakeTimers is a hand-driven policy.AfterFunc: nothing runs until the test fires it.
type fakeTimers struct {
	mu      sync.Mutex
	pending []*fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped bool
}

func (ft *fakeTimers) after(d time.Duration, f func()) policy.Timer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	t := &fakeTimer{d: d, f: f}
	ft.pending = append(ft.pending, t)
	return stopper{ft, t}
}

type stopper struct {
	ft *fakeTimers
	t  *fakeTimer
}

func (s stopper) Stop() bool {
	s.ft.mu.Lock()
	defer s.ft.mu.Unlock()
	was := !s.t.stopped
	s.t.stopped = true
	return was
}

// scheduled lists the delays of the timers that are neither stopped nor fired.
func (ft *fakeTimers) scheduled() []time.Duration {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var out []time.Duration
	for _, t := range ft.pending {
		if !t.stopped {
			out = append(out, t.d)
		}
	}
	return out
}

// fire runs every live timer once, outside the lock (a callback schedules the next one).
func (ft *fakeTimers) fire() {
	ft.mu.Lock()
	due := ft.pending
	ft.pending = nil
	ft.mu.Unlock()
	for _, t := range due {
		if !t.stopped {
			t.f()
		}
	}
}

// settableClock is a fake clock for the ledger.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *settableClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestHoldRenewedWhileStreamIsAlive is a stream that outlives budget.reservation_hold: its
// reservation stays held (renewed every third of the hold) until it is settled, and no
// renewal is left behind afterwards.
func TestHoldRenewedWhileStreamIsAlive(t *testing.T) {
	timers := &fakeTimers{}
	fxNow := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clk := &settableClock{t: fxNow}
	l := budget.NewMemoryLedger(budget.WithClock(clk.Now))
	fx := budgetFixture(t, l, nil, policy.WithAfterFunc(timers.after))
	require.Equal(t, fxNow, fx.Now)
	hold := policy.DefaultHold
	a, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":100,"messages":[]}`)
	h, rep := fx.Snapshot.Reserve(context.Background(), a, f, fx.Now)
	require.Nil(t, rep)
	require.NotNil(t, h)
	reserved := h.Estimate.CostMicros
	require.Equal(t, []time.Duration{hold / 3}, timers.scheduled(), "renewal starts at reserve time")

	for range 6 { // two full holds
		clk.Advance(hold / 3)
		timers.fire()
		require.Equal(t, []time.Duration{hold / 3}, timers.scheduled())
	}
	require.Greater(t, clk.Now().Sub(fxNow), hold)
	require.Equal(t, reserved, policytest.TeamUSDPerDay(t, fx.Snapshot, clk.Now()).Reserved, "still reserved after 2 holds")

	st, err := f.Settle(context.Background(), h, policy.Outcome{Usage: llm.Usage{InputTokens: 10, OutputTokens: 5}, UsageSeen: true, Ended: true, Status: 200})
	require.NoError(t, err)
	require.Empty(t, timers.scheduled(), "settling stops the renewal")
	e := policytest.TeamUSDPerDay(t, fx.Snapshot, clk.Now())
	require.Zero(t, e.Reserved, "released when settled")
	require.Equal(t, st.CostMicros, e.Used)
}

// TestHoldWithoutRenewalExpires pins the baseline: without renewals (the timer never fires)
// the hold is gone one hold after reserve time.
func TestHoldWithoutRenewalExpires(t *testing.T) {
	timers := &fakeTimers{}
	clk := &settableClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	fx := budgetFixture(t, budget.NewMemoryLedger(budget.WithClock(clk.Now)), nil, policy.WithAfterFunc(timers.after))
	a, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":100,"messages":[]}`)
	h, rep := fx.Snapshot.Reserve(context.Background(), a, f, fx.Now)
	require.Nil(t, rep)
	clk.Advance(policy.DefaultHold)
	require.Zero(t, policytest.TeamUSDPerDay(t, fx.Snapshot, clk.Now()).Reserved)
	_, err := f.Settle(context.Background(), h, policy.Outcome{Status: 200})
	require.NoError(t, err)
}

// flakyExtender is a memory ledger whose Extend fails while down is set, and counts calls.
type flakyExtender struct {
	*budget.MemoryLedger
	mu    sync.Mutex
	down  bool
	calls int
}

func (l *flakyExtender) Extend(ctx context.Context, id string, items []budget.Item, hold time.Duration) (bool, error) {
	l.mu.Lock()
	l.calls++
	down := l.down
	l.mu.Unlock()
	if down {
		return false, errors.New("boom: " + budget.ErrUnavailable.Error())
	}
	return l.MemoryLedger.Extend(ctx, id, items, hold)
}

func TestHoldRenewalRetriesAndStops(t *testing.T) {
	timers := &fakeTimers{}
	clk := &settableClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	l := &flakyExtender{MemoryLedger: budget.NewMemoryLedger(budget.WithClock(clk.Now)), down: true}
	fx := budgetFixture(t, l, nil, policy.WithAfterFunc(timers.after))
	hold := policy.DefaultHold
	a, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","max_tokens":100,"messages":[]}`)
	h, rep := fx.Snapshot.Reserve(context.Background(), a, f, fx.Now)
	require.Nil(t, rep)

	// A failed renewal is retried sooner, well before the deadline.
	clk.Advance(hold / 3)
	timers.fire()
	require.Equal(t, []time.Duration{hold / 10}, timers.scheduled())
	l.mu.Lock()
	l.down = false
	l.mu.Unlock()
	clk.Advance(hold / 10)
	timers.fire()
	require.Equal(t, []time.Duration{hold / 3}, timers.scheduled())

	// A hold the ledger no longer has (here: it expired while renewals failed) is not
	// renewed again: re-reserving without a limit check is not an option.
	clk.Advance(hold)
	timers.fire()
	require.Empty(t, timers.scheduled())
	require.Zero(t, policytest.TeamUSDPerDay(t, fx.Snapshot, clk.Now()).Reserved)
	_, err := f.Settle(context.Background(), h, policy.Outcome{Status: 200})
	require.NoError(t, err)
	l.mu.Lock()
	require.Equal(t, 3, l.calls)
	l.mu.Unlock()
}

func TestFailedOpenHoldIsNotRenewed(t *testing.T) {
	timers := &fakeTimers{}
	fx := budgetFixture(t, failingLedger{}, func(c *policy.Config) {
		c.Budget.FailOpen = []string{"usd_per_day", "requests_per_minute"}
	}, policy.WithAfterFunc(timers.after))
	a, f := route(t, fx, "valid", `{"model":"gpt-4o-mini","messages":[]}`)
	h, rep := fx.Snapshot.Reserve(context.Background(), a, f, fx.Now)
	require.Nil(t, rep)
	require.True(t, h.FailedOpen)
	require.Empty(t, timers.scheduled())
}
