package budget_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: utc("2026-11-27T12:00:00Z")} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var ctx = context.Background()

func TestMemoryHoldExpiresOnTheClock(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	m := budget.NewMemoryLedger(budget.WithClock(clk.Now))
	items := []budget.Item{{Key: "a", Limit: 100, Amount: 100}}
	denied, err := m.Reserve(ctx, "r1", items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)

	clk.Advance(time.Minute - time.Nanosecond)
	denied, err = m.Reserve(ctx, "r2", items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 0, denied, "still held one nanosecond before the deadline")

	clk.Advance(time.Nanosecond)
	b, err := m.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{}}, b, "released at the deadline")
	require.Equal(t, 0, m.Stats().Holds)
}

func TestMemoryCountersExpire(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	m := budget.NewMemoryLedger(budget.WithClock(clk.Now), budget.WithSettledTTL(time.Minute))
	exp := clk.Now().Add(time.Hour)
	items := []budget.Item{{Key: "a", Limit: 100, Amount: 10, Expires: exp}, {Key: "life", Limit: 100, Amount: 10}}
	_, err := m.Reserve(ctx, "r1", items, time.Minute)
	require.NoError(t, err)
	require.NoError(t, m.Settle(ctx, "r1", items, []int64{10, 10}))
	require.Equal(t, budget.Stats{Counters: 2, Settled: 1}, m.Stats())

	clk.Advance(time.Hour - 1)
	b, err := m.Balances(ctx, []string{"a", "life"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Used: 10}, {Used: 10}}, b)

	clk.Advance(1)
	b, err = m.Balances(ctx, []string{"a", "life"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{}, {Used: 10}}, b, "an expired counter reads as zero; a lifetime one never expires")
	require.Equal(t, budget.Stats{Counters: 1}, m.Stats(), "expired counters and tombstones are forgotten")
}

func TestMemoryCounterSweep(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	m := budget.NewMemoryLedger(budget.WithClock(clk.Now))
	// Counters nobody reads again are swept about once a minute.
	for i := range 100 {
		items := []budget.Item{{Key: "k" + strconv.Itoa(i), Limit: 10, Amount: 1, Expires: clk.Now().Add(time.Duration(i%3+1) * time.Minute)}}
		_, err := m.Reserve(ctx, "r"+strconv.Itoa(i), items, time.Second)
		require.NoError(t, err)
	}
	require.Equal(t, 100, m.Stats().Counters)
	clk.Advance(2*time.Minute + time.Second)
	_, err := m.Balances(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 33, m.Stats().Counters)
	clk.Advance(time.Minute)
	_, err = m.Balances(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, budget.Stats{}, m.Stats())
}

func TestMemoryHoldKeepsCounterAlive(t *testing.T) {
	t.Parallel()
	// An Expires earlier than the hold's deadline does not drop the hold with the counter.
	clk := newFakeClock()
	m := budget.NewMemoryLedger(budget.WithClock(clk.Now))
	items := []budget.Item{{Key: "a", Limit: 10, Amount: 10, Expires: clk.Now().Add(time.Second)}}
	_, err := m.Reserve(ctx, "r1", items, time.Minute)
	require.NoError(t, err)
	clk.Advance(30 * time.Second)
	denied, err := m.Reserve(ctx, "r2", items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 0, denied)
}

func TestMemorySettledTTL(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	m := budget.NewMemoryLedger(budget.WithClock(clk.Now), budget.WithSettledTTL(time.Minute))
	items := []budget.Item{{Key: "a", Limit: 100, Amount: 10}}
	require.NoError(t, m.Settle(ctx, "r1", items, []int64{10}))
	_, err := m.Reserve(ctx, "r1", items, time.Minute)
	require.ErrorIs(t, err, budget.ErrInvalidArgument, "a settled id cannot hold again")
	clk.Advance(time.Minute - 1)
	require.NoError(t, m.Settle(ctx, "r1", items, []int64{10}))
	clk.Advance(1)
	// Past the retention the id is forgotten, so a (very) late duplicate counts again.
	require.NoError(t, m.Settle(ctx, "r1", items, []int64{10}))
	b, err := m.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Used: 20}}, b)
}

func TestMemoryDuplicateKeysInOneReservation(t *testing.T) {
	t.Parallel()
	m := budget.NewMemoryLedger()
	items := []budget.Item{{Key: "a", Limit: 100, Amount: 60}, {Key: "a", Limit: 100, Amount: 60}}
	denied, err := m.Reserve(ctx, "r1", items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 1, denied)
	items[1].Amount = 40
	denied, err = m.Reserve(ctx, "r1", items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)
	b, err := m.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Reserved: 100}}, b)
}

func TestMemorySaturates(t *testing.T) {
	t.Parallel()
	m := budget.NewMemoryLedger()
	items := []budget.Item{{Key: "a", Limit: math.MaxInt64, Amount: 1}}
	require.NoError(t, m.Settle(ctx, "r1", items, []int64{math.MaxInt64 - 1}))
	require.NoError(t, m.Settle(ctx, "r2", items, []int64{math.MaxInt64}))
	b, err := m.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Used: math.MaxInt64}}, b)
	denied, err := m.Reserve(ctx, "r3", []budget.Item{{Key: "a", Limit: math.MaxInt64, Amount: math.MaxInt64}}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied, "a saturated sum equals MaxInt64, which is within the limit")
	denied, err = m.Reserve(ctx, "r4", []budget.Item{{Key: "a", Limit: math.MaxInt64 - 1, Amount: 0}}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 0, denied)
}

func TestMemoryCanceledContext(t *testing.T) {
	t.Parallel()
	m := budget.NewMemoryLedger()
	c, cancel := context.WithCancel(ctx)
	cancel()
	_, err := m.Reserve(c, "r1", nil, time.Minute)
	require.ErrorIs(t, err, budget.ErrUnavailable)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, m.Settle(c, "r1", nil, nil), budget.ErrUnavailable)
	_, err = m.Balances(c, nil)
	require.ErrorIs(t, err, budget.ErrUnavailable)
}

// TestMemoryMatchesModel drives the ledger with random operations and a fake clock and
// compares every answer with a plain reference model (which recomputes Reserved from
// scratch), checking the deadline heap and the release bookkeeping.
func TestMemoryMatchesModel(t *testing.T) {
	t.Parallel()
	type modelHold struct {
		amounts  map[string]int64
		deadline time.Time
	}
	keys := []string{"a", "b", "c"}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		clk := newFakeClock()
		// Settled ids are remembered longer than the run, as the model remembers them forever.
		m := budget.NewMemoryLedger(budget.WithClock(clk.Now), budget.WithSettledTTL(1000*time.Hour))
		used := map[string]int64{}
		holds := map[string]*modelHold{}
		settled := map[string]bool{}
		reserved := func(k string) int64 {
			var s int64
			for _, h := range holds {
				if h.deadline.After(clk.Now()) {
					s += h.amounts[k]
				}
			}
			return s
		}
		var ids []string
		for step := range 400 {
			switch op := rng.IntN(10); {
			case op < 5: // reserve
				id := "r" + strconv.Itoa(step)
				var items []budget.Item
				for _, k := range keys {
					if rng.IntN(2) == 0 {
						items = append(items, budget.Item{Key: k, Limit: 100, Amount: rng.Int64N(40)})
					}
				}
				hold := time.Duration(rng.IntN(60)+1) * time.Second
				want := -1
				for i, it := range items {
					if used[it.Key]+reserved(it.Key)+it.Amount > it.Limit {
						want = i
						break
					}
				}
				got, err := m.Reserve(ctx, id, items, hold)
				require.NoError(t, err)
				require.Equal(t, want, got, "seed %d step %d", seed, step)
				if want == -1 && len(items) > 0 {
					h := &modelHold{amounts: map[string]int64{}, deadline: clk.Now().Add(hold)}
					for _, it := range items {
						h.amounts[it.Key] += it.Amount
					}
					holds[id] = h
					ids = append(ids, id)
				}
			case op < 8 && len(ids) > 0: // settle, sometimes twice
				id := ids[rng.IntN(len(ids))]
				var items []budget.Item
				var actual []int64
				for _, k := range keys {
					items = append(items, budget.Item{Key: k, Limit: 100})
					actual = append(actual, rng.Int64N(30))
				}
				require.NoError(t, m.Settle(ctx, id, items, actual))
				if !settled[id] {
					settled[id] = true
					delete(holds, id)
					for i, k := range keys {
						used[k] += actual[i]
					}
				}
			default:
				clk.Advance(time.Duration(rng.IntN(20000)) * time.Millisecond)
			}
			b, err := m.Balances(ctx, keys)
			require.NoError(t, err)
			for i, k := range keys {
				require.Equal(t, budget.Balance{Used: used[k], Reserved: reserved(k)}, b[i], "seed %d step %d key %s", seed, step, k)
			}
		}
	}
}

// BenchmarkReserveSettle is one request's ledger work: reserve five counters (key requests,
// tokens and USD per day; team USD per day and month) and settle them.
func BenchmarkReserveSettle(b *testing.B) {
	m := budget.NewMemoryLedger()
	plan := budget.Plan("platform", "abc123",
		budget.Limits{RequestsPerMinute: math.MaxInt64, TokensPerMinute: math.MaxInt64, USDPerDay: math.MaxInt64},
		budget.Limits{USDPerDay: math.MaxInt64, USDPerMonth: math.MaxInt64},
		budget.Estimate{Tokens: 5000, CostMicros: 1200}, time.Now(), time.UTC)
	items := budget.Items(plan)
	actual := budget.Actuals(plan, 3000, 700)
	buf := make([]byte, 0, 32)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		buf = strconv.AppendInt(append(buf[:0], "req-"...), int64(i), 10)
		id := string(buf) // request ids arrive as strings; this is the benchmark's one allocation
		if denied, err := m.Reserve(ctx, id, items, time.Minute); err != nil || denied != -1 {
			b.Fatal(denied, err)
		}
		if err := m.Settle(ctx, id, items, actual); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReserveSettleParallel is BenchmarkReserveSettle from GOMAXPROCS goroutines on one
// team's counters: the worst case for the single mutex.
func BenchmarkReserveSettleParallel(b *testing.B) {
	m := budget.NewMemoryLedger()
	plan := budget.Plan("platform", "abc123",
		budget.Limits{RequestsPerMinute: math.MaxInt64, TokensPerMinute: math.MaxInt64, USDPerDay: math.MaxInt64},
		budget.Limits{USDPerDay: math.MaxInt64, USDPerMonth: math.MaxInt64},
		budget.Estimate{Tokens: 5000, CostMicros: 1200}, time.Now(), time.UTC)
	items := budget.Items(plan)
	actual := budget.Actuals(plan, 3000, 700)
	var seq sync.Mutex
	next := 0
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		seq.Lock()
		next++
		prefix := "w" + strconv.Itoa(next) + "-"
		seq.Unlock()
		i := 0
		for pb.Next() {
			i++
			id := prefix + strconv.Itoa(i)
			if denied, err := m.Reserve(ctx, id, items, time.Minute); err != nil || denied != -1 {
				b.Fatal(denied, err)
			}
			if err := m.Settle(ctx, id, items, actual); err != nil {
				b.Fatal(err)
			}
		}
	})
}
