package integration

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget/budgettest"
	"github.com/tollgate-ai/tollgate/policy/budget/redisledger"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// BenchmarkReserveSettleRedis measures one request's ledger traffic against a local
// redis-server: a Reserve of three counters (as a key with a daily USD limit, its team's
// daily USD limit and a requests-per-minute limit would plan) and its Settle, two round
// trips in all. "serial" is the latency of one request; "parallel" is throughput with
// GOMAXPROCS concurrent requests sharing one client.
func BenchmarkReserveSettleRedis(b *testing.B) {
	srv := testutil.StartRedis(b)
	l := newLedger(b, newClient(b, srv.Addr()))
	ctx := context.Background()
	require.NoError(b, l.LoadScripts(ctx))
	items := budgettest.Items(budgettest.Keys(budgettest.Prefix(), 3), redisledger.MaxAmount, 1500)
	actual := []int64{1200, 1200, 1}
	var seq atomic.Int64
	op := func(b *testing.B) {
		id := "bench-" + strconv.FormatInt(seq.Add(1), 10)
		denied, err := l.Reserve(ctx, id, items, time.Minute)
		if err != nil || denied != -1 {
			b.Fatalf("reserve: %d, %v", denied, err)
		}
		if err := l.Settle(ctx, id, items, actual); err != nil {
			b.Fatalf("settle: %v", err)
		}
	}

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			op(b)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op(b)
			}
		})
	})
}
