package budget_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

// requestItems are the five counters one request under key and team limits draws on.
func requestItems() []budget.Item {
	day := time.Now().Add(24 * time.Hour)
	return []budget.Item{
		{Key: "tg:{t:platform}:k:abc123:rpm:m1", Limit: 1 << 60, Amount: 1, Expires: day},
		{Key: "tg:{t:platform}:k:abc123:tpm:m1", Limit: 1 << 60, Amount: 500, Expires: day},
		{Key: "tg:{t:platform}:k:abc123:usd:d1", Limit: 1 << 60, Amount: 900, Expires: day},
		{Key: "tg:{t:platform}:team:usd:d1", Limit: 1 << 60, Amount: 900, Expires: day},
		{Key: "tg:{t:platform}:team:usd:mo1", Limit: 1 << 60, Amount: 900, Expires: day},
	}
}

// serve runs n requests (reserve, settle) with ids unique across calls, as random
// production ids are.
func serve(tb testing.TB, l budget.Ledger, from, n int) {
	items := requestItems()
	actual := []int64{1, 400, 700, 700, 700}
	for i := from; i < from+n; i++ {
		id := "0123456789abcdef0123456789" + strconv.Itoa(1_000_000+i) // 33 bytes, like randomID's 32
		if _, err := l.Reserve(ctx, id, items, time.Minute); err != nil {
			tb.Fatal(err)
		}
		if err := l.Settle(ctx, id, items, actual); err != nil {
			tb.Fatal(err)
		}
	}
}

func fileSize(tb testing.TB, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// TestEmbeddedFootprintIndependentOfTraffic: what the embedded ledger keeps in memory and
// writes in every snapshot does not grow with the number of requests it has served.
func TestEmbeddedFootprintIndependentOfTraffic(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.json")
	l := openEmbedded(t, path)
	defer func() { require.NoError(t, l.Close()) }()
	serve(t, l, 0, 1000)
	require.NoError(t, l.Flush())
	small := fileSize(t, path)
	settled := l.Stats().Settled

	serve(t, l, 1000, 3*budget.DefaultSettledCap)
	require.NoError(t, l.Flush())
	require.LessOrEqual(t, l.Stats().Settled, budget.DefaultSettledCap, "settled ids are bounded")
	require.LessOrEqual(t, fileSize(t, path), small+64, "the snapshot does not grow with traffic (only the counters' digits may)")
	require.Positive(t, settled)
}

// BenchmarkEmbeddedFootprint serves 100k requests on one embedded ledger (real clock,
// default options) and reports the live heap and the snapshot size after 20k and after 100k
// requests: flat means the two are about equal.
func BenchmarkEmbeddedFootprint(b *testing.B) {
	heap := func() float64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc)
	}
	var h20, h100, s20, s100 float64
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "ledger.json")
		base := heap()
		l, err := budget.OpenEmbedded(path)
		if err != nil {
			b.Fatal(err)
		}
		serve(b, l, 0, 20_000)
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
		h20, s20 = heap()-base, float64(fileSize(b, path))
		serve(b, l, 20_000, 80_000)
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
		h100, s100 = heap()-base, float64(fileSize(b, path))
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(h20, "heap-B@20k")
	b.ReportMetric(h100, "heap-B@100k")
	b.ReportMetric(s20, "snapshot-B@20k")
	b.ReportMetric(s100, "snapshot-B@100k")
}

// TestSettledIdsBoundedByCap: beyond the cap the oldest settled id is forgotten first. A
// repeated settle of a forgotten id then counts again: the bound errs toward refusing,
// never toward overspending.
func TestSettledIdsBoundedByCap(t *testing.T) {
	t.Parallel()
	m := budget.NewMemoryLedger(budget.WithSettledCap(2))
	items := []budget.Item{{Key: "a", Limit: 100}}
	for _, id := range []string{"r1", "r2", "r3"} {
		require.NoError(t, m.Settle(ctx, id, items, []int64{1}))
	}
	require.Equal(t, 2, m.Stats().Settled)
	require.NoError(t, m.Settle(ctx, "r3", items, []int64{1}), "still remembered: a no-op")
	require.NoError(t, m.Settle(ctx, "r1", items, []int64{1}), "forgotten: counted again")
	require.Equal(t, []budget.Balance{{Used: 4}}, balancesOf(t, m, "a"))
	_, err := m.Reserve(ctx, "r1", items, time.Minute)
	require.ErrorIs(t, err, budget.ErrInvalidArgument, "r1 is remembered again")
}
