package integration

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/budget/budgettest"
	"github.com/tollgate-ai/tollgate/policy/budget/redisledger"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// suiteTimeout replaces the 250 ms default in the conformance runs only, so a loaded CI
// machine under -race does not fail them; the default itself is exercised by the outage tests.
const suiteTimeout = 5 * time.Second

func TestRedisLedgerConformance(t *testing.T) {
	t.Run("Node", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		client := newClient(t, srv.Addr())
		budgettest.Run(t, func(t *testing.T, now func() time.Time) budget.Ledger {
			return newLedger(t, client, redisledger.WithTimeout(suiteTimeout), redisledger.WithClock(now))
		})
	})
	t.Run("NodeWithKeyPrefix", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		client := newClient(t, srv.Addr())
		n := 0
		budgettest.Run(t, func(t *testing.T, now func() time.Time) budget.Ledger {
			n++
			return newLedger(t, client, redisledger.WithTimeout(suiteTimeout), redisledger.WithClock(now),
				redisledger.WithKeyPrefix("it"+strconv.Itoa(n)+":"))
		})
	})
	// A one-node Redis Cluster rejects any script whose keys span slots (CROSSSLOT), so this
	// run proves that every call passes all its keys, the settled marker included, in one slot.
	t.Run("Cluster", func(t *testing.T) {
		srv := testutil.StartRedisCluster(t)
		client := newClusterClient(t, srv.Addr())
		ctx := context.Background()
		err := client.Eval(ctx, "return redis.call('GET', KEYS[2])", []string{"{a}1", "{b}2"}).Err()
		require.ErrorContains(t, err, "CROSSSLOT", "the server enforces cluster key rules")
		require.NoError(t, newLedger(t, client).LoadScripts(ctx), "SCRIPT LOAD on every primary")
		budgettest.Run(t, func(t *testing.T, now func() time.Time) budget.Ledger {
			return newLedger(t, client, redisledger.WithTimeout(suiteTimeout), redisledger.WithClock(now))
		})
	})
}

// TestRedisLedgerRoundTrips counts commands twice: on the client (a go-redis hook) and on
// the server (MONITOR, which client-side retries cannot hide).
func TestRedisLedgerRoundTrips(t *testing.T) {
	srv := testutil.StartRedis(t)
	client := newClient(t, srv.Addr())
	log := &cmdLog{}
	client.AddHook(log)
	l := newLedger(t, client)
	ctx := context.Background()
	p := budgettest.Prefix()
	ks := budgettest.Keys(p, 3)
	items := budgettest.Items(ks, 1000, 10)

	reserve := func(id string) {
		t.Helper()
		denied, err := l.Reserve(ctx, id, items, time.Minute)
		require.NoError(t, err)
		require.Equal(t, -1, denied)
	}
	settle := func(id string) {
		t.Helper()
		require.NoError(t, l.Settle(ctx, id, items, []int64{5, 6, 7}))
	}

	// Open the connection first: a new connection's handshake (HELLO, CLIENT SETINFO) is
	// paid once per pooled connection, not per call.
	require.NoError(t, client.Ping(ctx).Err())
	log.take()

	// Cold: the server has never seen the scripts. EVALSHA fails with NOSCRIPT and EVAL
	// follows (which caches the script): two round trips, once per script per server.
	mon := startMonitor(t, srv.Addr())
	reserve("cold")
	require.Equal(t, []string{"evalsha", "eval"}, log.take())
	require.Equal(t, []string{"evalsha", "eval"}, mon.sync(t))

	// Steady state: exactly one command per call.
	for i := range 3 {
		id := "warm-" + strconv.Itoa(i)
		reserve(id)
		require.Equal(t, []string{"evalsha"}, log.take(), "reserve")
		require.Equal(t, []string{"evalsha"}, mon.sync(t), "reserve")
		settle(id)
		if i == 0 { // the settle script's first run is cold too
			require.Equal(t, []string{"evalsha", "eval"}, log.take(), "settle")
			require.Equal(t, []string{"evalsha", "eval"}, mon.sync(t), "settle")
			continue
		}
		require.Equal(t, []string{"evalsha"}, log.take(), "settle")
		require.Equal(t, []string{"evalsha"}, mon.sync(t), "settle")
	}
	// A repeated settle (no-op) is one round trip as well.
	settle("warm-1")
	require.Equal(t, []string{"evalsha"}, log.take())
	require.Equal(t, []string{"evalsha"}, mon.sync(t))

	// Balances: one pipeline, one read-only script per key.
	_, err := l.Balances(ctx, ks) // warms the read-only script
	require.NoError(t, err)
	log.take()
	mon.sync(t)
	_, err = l.Balances(ctx, ks)
	require.NoError(t, err)
	require.Equal(t, []string{"pipeline[evalsha_ro evalsha_ro evalsha_ro]"}, log.take())
	require.Equal(t, []string{"evalsha_ro", "evalsha_ro", "evalsha_ro"}, mon.sync(t))

	// After SCRIPT FLUSH (or a restart, or a failover) the first call per script pays the
	// fallback once; LoadScripts avoids even that.
	require.NoError(t, raw(t, srv).ScriptFlush(ctx).Err())
	reserve("flushed-1")
	require.Equal(t, []string{"evalsha", "eval"}, log.take())
	reserve("flushed-2")
	require.Equal(t, []string{"evalsha"}, log.take())

	require.NoError(t, raw(t, srv).ScriptFlush(ctx).Err())
	require.NoError(t, l.LoadScripts(ctx))
	log.take()
	reserve("loaded")
	settle("loaded")
	_, err = l.Balances(ctx, ks)
	require.NoError(t, err)
	require.Equal(t, []string{"evalsha", "evalsha", "pipeline[evalsha_ro evalsha_ro evalsha_ro]"}, log.take())

	// Balances after a flush: the refused keys are read again with EVAL_RO.
	require.NoError(t, raw(t, srv).ScriptFlush(ctx).Err())
	b, err := l.Balances(ctx, ks[:2])
	require.NoError(t, err)
	require.Len(t, b, 2)
	require.Equal(t, []string{"pipeline[evalsha_ro evalsha_ro]", "pipeline[eval_ro eval_ro]"}, log.take())
}

// TestRedisLedgerKeyLayout pins the data layout documented in redisledger/keys.go.
func TestRedisLedgerKeyLayout(t *testing.T) {
	srv := testutil.StartRedis(t)
	r := raw(t, srv)
	l := newLedger(t, newClient(t, srv.Addr()))
	ctx := context.Background()
	p := budgettest.Prefix() // "tg:{t:bt-<hex>}:"
	ks := budgettest.Keys(p, 2)
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	items := []budget.Item{
		{Key: ks[0], Limit: 100, Amount: 30, Expires: exp},
		{Key: ks[1], Limit: 100, Amount: 40, Expires: exp},
	}

	denied, err := l.Reserve(ctx, "r1", items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)
	srvNow := serverTime(t, r)
	require.Equal(t, map[string]string{"r": "30", "h:r1": "30"}, r.HGetAll(ctx, ks[0]).Val())
	require.Equal(t, map[string]string{"r": "40", "h:r1": "40"}, r.HGetAll(ctx, ks[1]).Val())
	for _, k := range ks {
		score := r.ZScore(ctx, k+":x", "r1").Val()
		require.InDelta(t, float64(srvNow.Add(time.Minute).UnixMilli()), score, 2000, "hold deadline, server clock")
		require.Equal(t, exp.UnixMilli(), r.PExpireTime(ctx, k).Val().Milliseconds(), "counter expiry")
		require.Equal(t, exp.UnixMilli(), r.PExpireTime(ctx, k+":x").Val().Milliseconds(), "hold set expiry")
	}

	require.NoError(t, l.Settle(ctx, "r1", items, []int64{20, 0}))
	require.Equal(t, map[string]string{"u": "20", "r": "0"}, r.HGetAll(ctx, ks[0]).Val())
	require.Equal(t, map[string]string{"r": "0"}, r.HGetAll(ctx, ks[1]).Val(), "a zero actual writes no u")
	require.Zero(t, r.Exists(ctx, ks[0]+":x", ks[1]+":x").Val(), "empty hold sets are gone")
	marker := p[:len(p)-1] + ":settled:r1"
	require.Equal(t, "1", r.Get(ctx, marker).Val())
	require.InDelta(t, redisledger.DefaultSettledTTL.Seconds(), r.TTL(ctx, marker).Val().Seconds(), 5)

	// Every key lives in the items' slot.
	slot := r.ClusterKeySlot(ctx, ks[0])
	if slot.Err() == nil { // CLUSTER KEYSLOT also works outside cluster mode
		for _, k := range []string{ks[1], ks[0] + ":x", marker} {
			require.Equal(t, slot.Val(), r.ClusterKeySlot(ctx, k).Val(), k)
		}
	}

	// The whole layout, nothing else.
	keys := r.Keys(ctx, "*").Val()
	require.ElementsMatch(t, []string{ks[0], ks[1], marker}, keys)

	// A settled id cannot reserve again.
	_, err = l.Reserve(ctx, "r1", items, time.Minute)
	require.ErrorIs(t, err, budget.ErrInvalidArgument)
	require.NotErrorIs(t, err, budget.ErrUnavailable)
}

func serverTime(t testing.TB, r *redis.Client) time.Time {
	t.Helper()
	now, err := r.Time(context.Background()).Result()
	require.NoError(t, err)
	return now
}

// TestRedisLedgerExpiry checks counter TTLs: set from Item.Expires, never shortened, never
// set for lifetime counters, and never in the past.
func TestRedisLedgerExpiry(t *testing.T) {
	srv := testutil.StartRedis(t)
	r := raw(t, srv)
	l := newLedger(t, newClient(t, srv.Addr()))
	ctx := context.Background()
	p := budgettest.Prefix()
	k := p + "c"
	hour := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	reserve := func(id string, exp time.Time) {
		t.Helper()
		denied, err := l.Reserve(ctx, id, []budget.Item{{Key: k, Limit: 1000, Amount: 1, Expires: exp}}, time.Minute)
		require.NoError(t, err)
		require.Equal(t, -1, denied)
	}
	expiry := func(key string) int64 { return r.PExpireTime(ctx, key).Val().Milliseconds() }

	reserve("a", hour)
	require.Equal(t, hour.UnixMilli(), expiry(k))
	reserve("b", hour.Add(-30*time.Minute))
	require.Equal(t, hour.UnixMilli(), expiry(k), "an earlier expiry does not shorten")
	require.Equal(t, hour.UnixMilli(), expiry(k+":x"))
	later := hour.Add(time.Hour)
	reserve("c", later)
	require.Equal(t, later.UnixMilli(), expiry(k), "a later expiry extends")
	require.Equal(t, later.UnixMilli(), expiry(k+":x"), "the hold set follows its counter")

	// Settle sets the expiry too (its counter may have expired meanwhile).
	k2 := p + "settle-only"
	require.NoError(t, l.Settle(ctx, "s", []budget.Item{{Key: k2, Expires: hour}}, []int64{3}))
	require.Equal(t, hour.UnixMilli(), expiry(k2))

	// Lifetime counters never expire, nor do their hold sets.
	life := p + "life"
	denied, err := l.Reserve(ctx, "l", []budget.Item{{Key: life, Limit: 10, Amount: 1}}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)
	require.Equal(t, time.Duration(-1), r.PTTL(ctx, life).Val())
	require.Equal(t, time.Duration(-1), r.PTTL(ctx, life+":x").Val())

	// An Expires already past (clock skew) does not delete the counter being written: it
	// lives at least until its hold's deadline, or a minute after a settle.
	past := p + "past"
	pastItems := []budget.Item{{Key: past, Limit: 10, Amount: 2, Expires: time.Now().Add(-time.Hour)}}
	denied, err = l.Reserve(ctx, "p", pastItems, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)
	require.InDelta(t, time.Minute.Seconds(), r.PTTL(ctx, past).Val().Seconds(), 5)
	require.NoError(t, l.Settle(ctx, "p", pastItems, []int64{2}))
	b, err := l.Balances(ctx, []string{past})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Used: 2}}, b)
	require.Positive(t, r.PTTL(ctx, past).Val())
}

// TestRedisLedgerOutage stops Redis under a ledger with the default 250 ms timeout: every
// call must fail with ErrUnavailable, promptly, and work again once Redis is back.
func TestRedisLedgerOutage(t *testing.T) {
	srv := testutil.StartRedis(t)
	l := newLedger(t, newClient(t, srv.Addr()))
	ctx := context.Background()
	ks := budgettest.Keys(budgettest.Prefix(), 2)
	items := budgettest.Items(ks, 100, 10)
	denied, err := l.Reserve(ctx, budgettest.ID(), items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)

	srv.Stop()
	calls := map[string]func() error{
		"reserve":  func() error { _, err := l.Reserve(ctx, budgettest.ID(), items, time.Minute); return err },
		"settle":   func() error { return l.Settle(ctx, budgettest.ID(), items, []int64{1, 1}) },
		"balances": func() error { _, err := l.Balances(ctx, ks); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		took := time.Since(start)
		require.ErrorIs(t, err, budget.ErrUnavailable, name)
		// No timing assertion (timings belong in benchmarks): a call without a deadline
		// would hang here until the test binary's timeout fails the run.
		t.Logf("%s with redis down: %v after %v", name, err, took)
	}

	// Redis comes back empty (no persistence in tests); the ledger reconnects and the
	// scripts reload through the NOSCRIPT fallback without any help.
	srv.Start()
	require.Eventually(t, func() bool {
		_, err := l.Reserve(ctx, budgettest.ID(), items, time.Minute)
		return err == nil
	}, 5*time.Second, 50*time.Millisecond)
	b, err := l.Balances(ctx, ks)
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Reserved: 10}, {Reserved: 10}}, b)
}

// TestRedisLedgerHungServer freezes Redis (SIGSTOP): connections stay open and nothing
// answers, which only a deadline can end.
func TestRedisLedgerHungServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(addr string) *redis.Options
	}{
		// The ledger's context deadline reaches the socket.
		{"ContextTimeoutEnabled", clientOptions},
		// cmd/tollgate's options: socket timeouts equal to the ledger timeout.
		{"SocketTimeouts", func(addr string) *redis.Options {
			return &redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: redisledger.DefaultTimeout,
				ReadTimeout: redisledger.DefaultTimeout, WriteTimeout: redisledger.DefaultTimeout}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testutil.StartRedis(t)
			client := redis.NewClient(tc.opts(srv.Addr()))
			t.Cleanup(func() { client.Close() })
			l := newLedger(t, client)
			ctx := context.Background()
			items := budgettest.Items(budgettest.Keys(budgettest.Prefix(), 1), 100, 1)
			_, err := l.Reserve(ctx, budgettest.ID(), items, time.Minute) // connect while up
			require.NoError(t, err)

			srv.Pause()
			start := time.Now()
			_, err = l.Reserve(ctx, budgettest.ID(), items, time.Minute)
			took := time.Since(start)
			require.ErrorIs(t, err, budget.ErrUnavailable) // without a deadline this would hang
			t.Logf("reserve with redis frozen: %v after %v", err, took)

			srv.Resume()
			require.Eventually(t, func() bool {
				_, err := l.Reserve(ctx, budgettest.ID(), items, time.Minute)
				return err == nil
			}, 5*time.Second, 50*time.Millisecond)
		})
	}
}

// TestRedisLedgerTwoReplicas races two ledgers on two clients (two Tollgate replicas) for a
// budget that fits 10 of 50 requests.
func TestRedisLedgerTwoReplicas(t *testing.T) {
	srv := testutil.StartRedis(t)
	replicas := []*redisledger.Ledger{
		newLedger(t, newClient(t, srv.Addr()), redisledger.WithTimeout(suiteTimeout)),
		newLedger(t, newClient(t, srv.Addr()), redisledger.WithTimeout(suiteTimeout)),
	}
	const requests, cost, limit = 50, 7, 70
	ks := budgettest.Keys(budgettest.Prefix(), 3) // e.g. key usd/day, team usd/day, key rpm
	items := budgettest.Items(ks, limit, cost)

	var (
		wg       sync.WaitGroup
		admitted [2]atomic.Int64
		failures atomic.Int64
		start    = make(chan struct{})
	)
	for i := range requests {
		wg.Go(func() {
			<-start
			denied, err := replicas[i%2].Reserve(context.Background(), budgettest.ID(), items, time.Minute)
			switch {
			case err != nil:
				failures.Add(1)
			case denied == -1:
				admitted[i%2].Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Zero(t, failures.Load())
	require.EqualValues(t, limit/cost, admitted[0].Load()+admitted[1].Load())
	t.Logf("admitted per replica: %d + %d", admitted[0].Load(), admitted[1].Load())
	for _, l := range replicas {
		b, err := l.Balances(context.Background(), ks)
		require.NoError(t, err)
		for _, bal := range b {
			require.Equal(t, budget.Balance{Reserved: limit}, bal)
		}
	}
}

// TestRedisLedgerLargeAmounts checks exactness at MaxAmount, where Lua doubles run out.
func TestRedisLedgerLargeAmounts(t *testing.T) {
	srv := testutil.StartRedis(t)
	l := newLedger(t, newClient(t, srv.Addr()))
	ctx := context.Background()
	const maxA = redisledger.MaxAmount
	reserve := func(k string, limit, amount int64) int {
		t.Helper()
		denied, err := l.Reserve(ctx, budgettest.ID(), []budget.Item{{Key: k, Limit: limit, Amount: amount}}, time.Minute)
		require.NoError(t, err)
		return denied
	}
	p := budgettest.Prefix()

	require.Equal(t, -1, reserve(p+"a", maxA, maxA-1))
	require.Equal(t, -1, reserve(p+"a", maxA, 1), "exactly MaxAmount fits")
	require.Equal(t, 0, reserve(p+"a", maxA, 1), "one more does not")
	require.Equal(t, 0, reserve(p+"a", 1<<62, 1), "limits above MaxAmount act as MaxAmount")

	id := budgettest.ID()
	items := []budget.Item{{Key: p + "b", Limit: maxA, Amount: maxA}}
	denied, err := l.Reserve(ctx, id, items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)
	require.NoError(t, l.Settle(ctx, id, items, []int64{maxA}))
	require.NoError(t, l.Settle(ctx, budgettest.ID(), items, []int64{maxA}))
	b, err := l.Balances(ctx, []string{p + "b"})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Used: 2 * maxA}}, b, "used is an exact int64 beyond 2^53")
	require.Equal(t, 0, reserve(p+"b", maxA, 0))

	_, err = l.Reserve(ctx, budgettest.ID(), []budget.Item{{Key: p + "c", Limit: maxA, Amount: maxA + 1}}, time.Minute)
	require.ErrorIs(t, err, budget.ErrInvalidArgument)
}

// TestRedisLedgerRepeatedKey covers one counter listed twice in a reservation (two limits
// on one counter): the amounts add up, and settling releases both.
func TestRedisLedgerRepeatedKey(t *testing.T) {
	srv := testutil.StartRedis(t)
	l := newLedger(t, newClient(t, srv.Addr()))
	ctx := context.Background()
	k := budgettest.Prefix() + "c"
	items := []budget.Item{{Key: k, Limit: 100, Amount: 30}, {Key: k, Limit: 50, Amount: 30}}

	denied, err := l.Reserve(ctx, "dup-1", items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 1, denied, "30+30 > 50 on the second item")

	items[1].Limit = 60
	denied, err = l.Reserve(ctx, "dup-2", items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)
	b, err := l.Balances(ctx, []string{k})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Reserved: 60}}, b)

	require.NoError(t, l.Settle(ctx, "dup-2", items, []int64{10, 5}))
	b, err = l.Balances(ctx, []string{k})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Used: 15}}, b)
}

// TestRedisLedgerStaleHoldsDropped lets many holds expire; Balances stops counting them at
// once, and the next Reserve on the counter removes every trace of them. Time is a test
// clock, so a slow machine cannot let holds expire early (it once did: 100 reserves took
// longer than their 100 ms hold under load).
func TestRedisLedgerStaleHoldsDropped(t *testing.T) {
	srv := testutil.StartRedis(t)
	r := raw(t, srv)
	clk := budgettest.NewClock()
	l := newLedger(t, newClient(t, srv.Addr()), redisledger.WithTimeout(suiteTimeout), redisledger.WithClock(clk.Now))
	ctx := context.Background()
	k := budgettest.Prefix() + "c"
	items := budgettest.Items([]string{k}, 1000, 3)
	for i := range 100 {
		denied, err := l.Reserve(ctx, "stale-"+strconv.Itoa(i), items, time.Minute)
		require.NoError(t, err)
		require.Equal(t, -1, denied)
	}
	require.EqualValues(t, 100, r.ZCard(ctx, k+":x").Val())
	b, err := l.Balances(ctx, []string{k})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Reserved: 300}}, b)

	clk.Advance(time.Minute - time.Millisecond)
	b, err = l.Balances(ctx, []string{k})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{Reserved: 300}}, b, "held until the deadline")

	clk.Advance(time.Millisecond)
	b, err = l.Balances(ctx, []string{k})
	require.NoError(t, err)
	require.Equal(t, []budget.Balance{{}}, b, "expired holds are not reported")
	require.Equal(t, "300", r.HGet(ctx, k, "r").Val(), "though still stored until the next write")

	denied, err := l.Reserve(ctx, "live", items, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)
	require.Equal(t, map[string]string{"r": "3", "h:live": "3"}, r.HGetAll(ctx, k).Val())
	require.Equal(t, []string{"live"}, r.ZRange(ctx, k+":x", 0, -1).Val())
}

// TestRedisServerRestart checks testutil's Stop and Start keep the address.
func TestRedisServerRestart(t *testing.T) {
	srv := testutil.StartRedis(t)
	addr := srv.Addr()
	r := raw(t, srv)
	ctx := context.Background()
	require.NoError(t, r.Set(ctx, "k", "v", 0).Err())
	srv.Stop()
	require.Error(t, r.Ping(ctx).Err())
	srv.Stop() // idempotent
	srv.Start()
	require.Equal(t, addr, srv.Addr())
	require.Eventually(t, func() bool { return r.Ping(ctx).Err() == nil }, 5*time.Second, 20*time.Millisecond)
	require.Zero(t, r.Exists(ctx, "k").Val(), "nothing is persisted")
	srv.Start() // running: no-op
}
