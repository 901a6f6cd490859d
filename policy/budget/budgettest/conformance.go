// Package budgettest is the conformance suite every budget.Ledger passes: the in-process
// memory ledger, the embedded file ledger and the Redis ledger run the same subtests.
//
// Every subtest draws its counter keys from a fresh Prefix, so one store (one Redis) can
// serve every subtest and every run without flushing in between. All keys of one prefix
// share the Redis Cluster hash tag "{t:<random>}", as keys built by budget.Plan do.
//
// Time is a Clock per subtest, handed to the ledger: where expiry is the point the suite
// advances it instead of sleeping, so no result depends on how fast the machine is. The
// clock starts at the real time and only moves forward, because a Redis server still
// expires keys on its own clock.
package budgettest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

// ShortHold is the hold used where the suite lets a reservation expire; ExpiryWait is how
// far it then advances the clock.
const (
	ShortHold  = time.Minute
	ExpiryWait = ShortHold + time.Second
)

// LongHold is the hold of every reservation the suite does not let expire.
const LongHold = 10 * time.Minute

// Clock is a settable clock, safe for concurrent use. It has millisecond resolution, like
// the Redis ledger's scripts.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock set to the current time.
func NewClock() *Clock { return &Clock{t: time.Now().Truncate(time.Millisecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Prefix returns a counter-key prefix no other call returns (in this process or any other):
// "tg:{t:bt-<16 hex>}:". Keys under it share one Redis Cluster slot.
func Prefix() string {
	return "tg:{t:bt-" + random() + "}:"
}

// Keys returns n distinct keys under prefix: prefix+"c0", prefix+"c1", ...
func Keys(prefix string, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = prefix + "c" + strconv.Itoa(i)
	}
	return ks
}

// ID returns a reservation id no other call returns.
func ID() string {
	return "bt-" + random()
}

// random is 16 hex characters from crypto/rand (which never fails on supported platforms).
func random() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Items builds one item per key, all with the same limit and amount. Counters expire two
// hours from now, so a shared store cleans up after the suite.
func Items(keys []string, limit, amount int64) []budget.Item {
	exp := time.Now().Add(2 * time.Hour)
	items := make([]budget.Item, len(keys))
	for i, k := range keys {
		items[i] = budget.Item{Key: k, Limit: limit, Amount: amount, Expires: exp}
	}
	return items
}

// Run runs the conformance subtests. newLedger is called once per subtest and returns a
// ledger ready for use that takes its time from now; it registers its own cleanup with
// t.Cleanup. Ledgers returned for different subtests may share one store.
func Run(t *testing.T, newLedger func(t *testing.T, now func() time.Time) budget.Ledger) {
	tests := []struct {
		name string
		run  func(t *testing.T, l budget.Ledger, clk *Clock)
	}{
		{"BasicReserveSettle", testBasic},
		{"BalancesOfUnknownKeys", testUnknownKeys},
		{"EmptyReservation", testEmpty},
		{"LifetimeCounter", testLifetime},
		{"AllOrNothing", testAllOrNothing},
		{"LimitExactlyReached", testExactLimit},
		{"SettleIdempotent", testSettleIdempotent},
		{"ReserveSameIDHoldsOnce", testReserveIdempotent},
		{"SettleBelowReservedReleasesRest", testSettleBelow},
		{"SettleAboveReservedRecordsActual", testSettleAbove},
		{"SettleWithoutReservation", testSettleWithoutReserve},
		{"SettleAfterHoldExpired", testSettleAfterExpiry},
		{"ExpiredHoldDoesNotBlock", testExpiredHoldDoesNotBlock},
		{"Concurrent", testConcurrent},
		{"InvalidArguments", testInvalid},
		{"ExtendKeepsHold", testExtendKeepsHold},
		{"ExtendKeepsCounterAlive", testExtendKeepsCounter},
		{"ExtendNeverShortens", testExtendNeverShortens},
		{"ExtendWithoutHold", testExtendWithoutHold},
		{"ExtendInvalidArguments", testExtendInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := NewClock()
			tc.run(t, newLedger(t, clk.Now), clk)
		})
	}
}

// balances reads keys and fails the test on error.
func balances(t *testing.T, l budget.Ledger, keys ...string) []budget.Balance {
	t.Helper()
	b, err := l.Balances(context.Background(), keys)
	require.NoError(t, err)
	require.Len(t, b, len(keys))
	return b
}

// reserve reserves and fails the test on error; it returns the denied index.
func reserve(t *testing.T, l budget.Ledger, id string, items []budget.Item, hold time.Duration) int {
	t.Helper()
	denied, err := l.Reserve(context.Background(), id, items, hold)
	require.NoError(t, err)
	return denied
}

// settle settles and fails the test on error.
func settle(t *testing.T, l budget.Ledger, id string, items []budget.Item, actual ...int64) {
	t.Helper()
	require.NoError(t, l.Settle(context.Background(), id, items, actual))
}

func testBasic(t *testing.T, l budget.Ledger, _ *Clock) {
	ks := Keys(Prefix(), 2)
	items := Items(ks, 100, 30)
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	require.Equal(t, []budget.Balance{{Reserved: 30}, {Reserved: 30}}, balances(t, l, ks...))

	settle(t, l, id, items, 20, 25)
	require.Equal(t, []budget.Balance{{Used: 20}, {Used: 25}}, balances(t, l, ks...))

	// A second request sees the first one's usage: 25 + 76 > 100 on the second counter.
	items = Items(ks, 100, 76)
	require.Equal(t, 1, reserve(t, l, ID(), items, LongHold))
	require.Equal(t, []budget.Balance{{Used: 20}, {Used: 25}}, balances(t, l, ks...))
}

func testUnknownKeys(t *testing.T, l budget.Ledger, _ *Clock) {
	ks := Keys(Prefix(), 3)
	require.Equal(t, []budget.Balance{{}, {}, {}}, balances(t, l, ks...))
	b, err := l.Balances(context.Background(), nil)
	require.NoError(t, err)
	require.Empty(t, b)
}

func testEmpty(t *testing.T, l budget.Ledger, _ *Clock) {
	// A request under no limit plans no items; the ledger accepts that trivially.
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, nil, LongHold))
	settle(t, l, id, nil)
}

func testLifetime(t *testing.T, l budget.Ledger, _ *Clock) {
	// A zero Expires is a counter that never expires (usd_lifetime).
	ks := Keys(Prefix(), 1)
	items := []budget.Item{{Key: ks[0], Limit: 50, Amount: 50}}
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	settle(t, l, id, items, 40)
	require.Equal(t, []budget.Balance{{Used: 40}}, balances(t, l, ks...))
	items[0].Amount = 11
	require.Equal(t, 0, reserve(t, l, ID(), items, LongHold))
}

func testAllOrNothing(t *testing.T, l budget.Ledger, _ *Clock) {
	ks := Keys(Prefix(), 3)
	items := []budget.Item{
		{Key: ks[0], Limit: 100, Amount: 10, Expires: time.Now().Add(2 * time.Hour)},
		{Key: ks[1], Limit: 5, Amount: 10, Expires: time.Now().Add(2 * time.Hour)},
		{Key: ks[2], Limit: 100, Amount: 10, Expires: time.Now().Add(2 * time.Hour)},
	}
	require.Equal(t, 1, reserve(t, l, ID(), items, LongHold))
	require.Equal(t, []budget.Balance{{}, {}, {}}, balances(t, l, ks...), "no item of a denied reservation is held")

	// The first failing item is reported, even when a later one fails too.
	items[2].Limit = 1
	require.Equal(t, 1, reserve(t, l, ID(), items, LongHold))

	// The denial is not remembered: the same id may reserve once it fits.
	id := ID()
	items[2].Limit = 100
	require.Equal(t, 1, reserve(t, l, id, items, LongHold))
	items[1].Limit = 10
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	require.Equal(t, []budget.Balance{{Reserved: 10}, {Reserved: 10}, {Reserved: 10}}, balances(t, l, ks...))
}

func testExactLimit(t *testing.T, l budget.Ledger, _ *Clock) {
	ks := Keys(Prefix(), 1)
	require.Equal(t, -1, reserve(t, l, ID(), Items(ks, 100, 60), LongHold))
	require.Equal(t, -1, reserve(t, l, ID(), Items(ks, 100, 40), LongHold), "Used+Reserved+Amount == Limit fits")
	require.Equal(t, 0, reserve(t, l, ID(), Items(ks, 100, 1), LongHold))
	require.Equal(t, []budget.Balance{{Reserved: 100}}, balances(t, l, ks...))

	// One reservation of exactly the limit on a fresh counter fits; one more unit does not.
	ks = Keys(Prefix(), 1)
	require.Equal(t, 0, reserve(t, l, ID(), Items(ks, 100, 101), LongHold))
	require.Equal(t, -1, reserve(t, l, ID(), Items(ks, 100, 100), LongHold))
}

func testSettleIdempotent(t *testing.T, l budget.Ledger, _ *Clock) {
	ks := Keys(Prefix(), 2)
	items := Items(ks, 100, 40)
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	settle(t, l, id, items, 30, 35)
	settle(t, l, id, items, 30, 35)
	settle(t, l, id, items, 99, 99) // different actuals change nothing either
	require.Equal(t, []budget.Balance{{Used: 30}, {Used: 35}}, balances(t, l, ks...))
}

func testReserveIdempotent(t *testing.T, l budget.Ledger, _ *Clock) {
	// A caller that retries Reserve after a lost reply must not hold twice.
	ks := Keys(Prefix(), 1)
	items := Items(ks, 100, 60)
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	require.Equal(t, []budget.Balance{{Reserved: 60}}, balances(t, l, ks...))
	settle(t, l, id, items, 60)
	require.Equal(t, []budget.Balance{{Used: 60}}, balances(t, l, ks...))
}

func testSettleBelow(t *testing.T, l budget.Ledger, _ *Clock) {
	ks := Keys(Prefix(), 1)
	items := Items(ks, 100, 80)
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	require.Equal(t, 0, reserve(t, l, ID(), Items(ks, 100, 70), LongHold))
	settle(t, l, id, items, 30)
	require.Equal(t, []budget.Balance{{Used: 30}}, balances(t, l, ks...))
	require.Equal(t, -1, reserve(t, l, ID(), Items(ks, 100, 70), LongHold), "the unused 50 was released")
}

func testSettleAbove(t *testing.T, l budget.Ledger, _ *Clock) {
	// The provider may bill more than the estimate; the ledger records it rather than hide it,
	// and the counter then refuses everything until its window ends.
	ks := Keys(Prefix(), 2)
	items := Items(ks, 100, 50)
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	settle(t, l, id, items, 150, 50)
	require.Equal(t, []budget.Balance{{Used: 150}, {Used: 50}}, balances(t, l, ks...))
	require.Equal(t, 0, reserve(t, l, ID(), Items(ks, 100, 0), LongHold), "an overspent counter refuses even a zero amount")
	require.Equal(t, 0, reserve(t, l, ID(), Items(ks, 100, 1), LongHold))
}

func testSettleWithoutReserve(t *testing.T, l budget.Ledger, _ *Clock) {
	// A settle for an id the ledger does not hold (never reserved, or dropped) still records
	// the usage: money spent is never forgotten.
	ks := Keys(Prefix(), 1)
	items := Items(ks, 100, 10)
	require.Equal(t, -1, reserve(t, l, ID(), items, LongHold))
	id := ID()
	settle(t, l, id, items, 25)
	settle(t, l, id, items, 25)
	require.Equal(t, []budget.Balance{{Used: 25, Reserved: 10}}, balances(t, l, ks...))
}

func testSettleAfterExpiry(t *testing.T, l budget.Ledger, clk *Clock) {
	ks := Keys(Prefix(), 1)
	items := Items(ks, 100, 50)
	late := ID()
	require.Equal(t, -1, reserve(t, l, late, items, ShortHold))
	clk.Advance(ExpiryWait)

	// A new hold on the same counter; then the late settle must add its actual without
	// releasing the expired 50 a second time (which would eat into the new hold).
	other := ID()
	require.Equal(t, -1, reserve(t, l, other, Items(ks, 100, 20), LongHold))
	settle(t, l, late, items, 30)
	require.Equal(t, []budget.Balance{{Used: 30, Reserved: 20}}, balances(t, l, ks...))
	settle(t, l, late, items, 30)
	require.Equal(t, []budget.Balance{{Used: 30, Reserved: 20}}, balances(t, l, ks...))
	settle(t, l, other, Items(ks, 100, 20), 20)
	require.Equal(t, []budget.Balance{{Used: 50}}, balances(t, l, ks...))
}

func testExpiredHoldDoesNotBlock(t *testing.T, l budget.Ledger, clk *Clock) {
	ks := Keys(Prefix(), 2)
	require.Equal(t, -1, reserve(t, l, ID(), Items(ks, 100, 100), ShortHold))
	require.Equal(t, 0, reserve(t, l, ID(), Items(ks, 100, 1), LongHold))
	clk.Advance(ExpiryWait)
	require.Equal(t, -1, reserve(t, l, ID(), Items(ks, 100, 100), LongHold))
	require.Equal(t, []budget.Balance{{Reserved: 100}, {Reserved: 100}}, balances(t, l, ks...))
}

func testConcurrent(t *testing.T, l budget.Ledger, _ *Clock) {
	const workers, cost, limit = 50, 10, 100
	ks := Keys(Prefix(), 3)
	items := Items(ks, limit, cost)
	var (
		wg    sync.WaitGroup
		won   atomic.Int64
		mu    sync.Mutex
		held  []string
		errs  []error
		start = make(chan struct{})
	)
	for range workers {
		wg.Go(func() {
			id := ID()
			<-start
			denied, err := l.Reserve(context.Background(), id, items, LongHold)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case denied == -1:
				won.Add(1)
				held = append(held, id)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Empty(t, errs)
	require.EqualValues(t, limit/cost, won.Load(), "exactly limit/cost reservations fit")
	for _, b := range balances(t, l, ks...) {
		require.Equal(t, budget.Balance{Reserved: limit}, b)
	}

	for _, id := range held {
		wg.Go(func() {
			err := l.Settle(context.Background(), id, items, []int64{cost, cost, cost})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Empty(t, errs)
	for _, b := range balances(t, l, ks...) {
		require.Equal(t, budget.Balance{Used: limit}, b)
	}
	require.Equal(t, 0, reserve(t, l, ID(), items, LongHold))
}

func testInvalid(t *testing.T, l budget.Ledger, _ *Clock) {
	ctx := context.Background()
	ks := Keys(Prefix(), 2)
	items := Items(ks, 100, 10)

	_, err := l.Reserve(ctx, ID(), []budget.Item{{Key: ks[0], Limit: 100, Amount: -1}}, LongHold)
	require.ErrorIs(t, err, budget.ErrInvalidArgument, "negative amount")
	_, err = l.Reserve(ctx, ID(), items, 0)
	require.ErrorIs(t, err, budget.ErrInvalidArgument, "zero hold")
	_, err = l.Reserve(ctx, "", items, LongHold)
	require.ErrorIs(t, err, budget.ErrInvalidArgument, "empty id")

	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	err = l.Settle(ctx, id, items, []int64{1})
	require.ErrorIs(t, err, budget.ErrInvalidArgument, "fewer actuals than items")
	err = l.Settle(ctx, id, items, []int64{1, -1})
	require.ErrorIs(t, err, budget.ErrInvalidArgument, "negative actual")
	require.NotErrorIs(t, err, budget.ErrUnavailable)
	require.Equal(t, []budget.Balance{{Reserved: 10}, {Reserved: 10}}, balances(t, l, ks...), "a refused call changes nothing")

	// The reservation is still intact and settles normally.
	settle(t, l, id, items, 5, 6)
	require.Equal(t, []budget.Balance{{Used: 5}, {Used: 6}}, balances(t, l, ks...))
}

// extend extends and fails the test on error; it returns whether id was held. Every ledger
// of the suite must implement budget.Extender.
func extend(t *testing.T, l budget.Ledger, id string, items []budget.Item, hold time.Duration) bool {
	t.Helper()
	ext, ok := l.(budget.Extender)
	require.True(t, ok, "%T does not implement budget.Extender", l)
	held, err := ext.Extend(context.Background(), id, items, hold)
	require.NoError(t, err)
	return held
}

func testExtendKeepsHold(t *testing.T, l budget.Ledger, clk *Clock) {
	// A stream longer than the hold keeps its reservation by extending it in time.
	ks := Keys(Prefix(), 2)
	items := Items(ks, 100, 60)
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, ShortHold))
	for range 4 { // four extensions: well past the first deadline
		clk.Advance(ShortHold / 2)
		require.True(t, extend(t, l, id, items, ShortHold))
	}
	clk.Advance(ShortHold - time.Second)
	require.Equal(t, []budget.Balance{{Reserved: 60}, {Reserved: 60}}, balances(t, l, ks...))
	require.Equal(t, 0, reserve(t, l, ID(), Items(ks, 100, 41), LongHold), "the extended hold still counts")

	// Settling releases it as usual.
	settle(t, l, id, items, 10, 20)
	require.Equal(t, []budget.Balance{{Used: 10}, {Used: 20}}, balances(t, l, ks...))
	require.False(t, extend(t, l, id, items, ShortHold), "a settled reservation is not held")
	require.Equal(t, []budget.Balance{{Used: 10}, {Used: 20}}, balances(t, l, ks...))

	// Without extensions a hold ends one hold after the last one.
	id = ID()
	require.Equal(t, -1, reserve(t, l, id, items, ShortHold))
	clk.Advance(ShortHold / 2)
	require.True(t, extend(t, l, id, items, ShortHold))
	clk.Advance(ShortHold)
	require.Equal(t, []budget.Balance{{Used: 10}, {Used: 20}}, balances(t, l, ks...))
}

func testExtendKeepsCounter(t *testing.T, l budget.Ledger, clk *Clock) {
	// A counter whose window ends while a hold on it is extended lives as long as the hold.
	ks := Keys(Prefix(), 1)
	items := []budget.Item{{Key: ks[0], Limit: 100, Amount: 70, Expires: clk.Now().Add(ShortHold / 2)}}
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, ShortHold))
	clk.Advance(ShortHold * 3 / 4)
	require.True(t, extend(t, l, id, items, ShortHold))
	clk.Advance(ShortHold / 2) // past the window and the first deadline
	require.Equal(t, []budget.Balance{{Reserved: 70}}, balances(t, l, ks...))
	settle(t, l, id, items, 70)
	require.Equal(t, []budget.Balance{{Used: 70}}, balances(t, l, ks...))
}

func testExtendNeverShortens(t *testing.T, l budget.Ledger, clk *Clock) {
	ks := Keys(Prefix(), 1)
	items := Items(ks, 100, 30)
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	require.True(t, extend(t, l, id, items, ShortHold))
	clk.Advance(ExpiryWait)
	require.Equal(t, []budget.Balance{{Reserved: 30}}, balances(t, l, ks...))
}

func testExtendWithoutHold(t *testing.T, l budget.Ledger, clk *Clock) {
	ks := Keys(Prefix(), 2)
	items := Items(ks, 100, 50)
	require.False(t, extend(t, l, ID(), items, LongHold), "never reserved")
	require.Equal(t, []budget.Balance{{}, {}}, balances(t, l, ks...))

	// An expired hold is not revived, even before anything else touched its counters.
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, ShortHold))
	clk.Advance(ExpiryWait)
	require.False(t, extend(t, l, id, items, LongHold))
	require.Equal(t, []budget.Balance{{}, {}}, balances(t, l, ks...))
	require.Equal(t, -1, reserve(t, l, ID(), Items(ks, 100, 100), LongHold), "the expired 50 is free")

	// A denied reservation holds nothing to extend.
	id = ID()
	require.Equal(t, 0, reserve(t, l, id, Items(ks, 100, 1), LongHold))
	require.False(t, extend(t, l, id, items, LongHold))
}

func testExtendInvalid(t *testing.T, l budget.Ledger, _ *Clock) {
	ext, ok := l.(budget.Extender)
	require.True(t, ok, "%T does not implement budget.Extender", l)
	ctx := context.Background()
	ks := Keys(Prefix(), 1)
	items := Items(ks, 100, 10)
	id := ID()
	require.Equal(t, -1, reserve(t, l, id, items, LongHold))
	_, err := ext.Extend(ctx, "", items, LongHold)
	require.ErrorIs(t, err, budget.ErrInvalidArgument, "empty id")
	_, err = ext.Extend(ctx, id, items, 0)
	require.ErrorIs(t, err, budget.ErrInvalidArgument, "zero hold")
	require.Equal(t, []budget.Balance{{Reserved: 10}}, balances(t, l, ks...))
}
