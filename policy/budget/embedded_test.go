package budget_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func openEmbedded(t *testing.T, path string, opts ...budget.Option) *budget.EmbeddedLedger {
	t.Helper()
	l, err := budget.OpenEmbedded(path, opts...)
	require.NoError(t, err)
	return l
}

func balancesOf(t *testing.T, l budget.Ledger, keys ...string) []budget.Balance {
	t.Helper()
	b, err := l.Balances(ctx, keys)
	require.NoError(t, err)
	return b
}

func TestEmbeddedRestartLosesNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.json")
	l := openEmbedded(t, path)
	day := time.Now().Add(24 * time.Hour)
	a := []budget.Item{{Key: "a", Limit: 100, Amount: 30, Expires: day}, {Key: "life", Limit: 1000, Amount: 30}}
	b := []budget.Item{{Key: "a", Limit: 100, Amount: 40, Expires: day}}
	_, err := l.Reserve(ctx, "settled", a, time.Minute)
	require.NoError(t, err)
	require.NoError(t, l.Settle(ctx, "settled", a, []int64{25, 26}))
	_, err = l.Reserve(ctx, "live", b, time.Hour)
	require.NoError(t, err)
	require.NoError(t, l.Close())

	l = openEmbedded(t, path)
	defer func() { require.NoError(t, l.Close()) }()
	require.Equal(t, []budget.Balance{{Used: 25, Reserved: 40}, {Used: 26}}, balancesOf(t, l, "a", "life"))
	// Settled ids are not persisted: no caller of the previous process is left to repeat a
	// settle (see snapshotState).
	require.Equal(t, budget.Stats{Counters: 2, Holds: 1}, l.Stats())

	// The live hold settles.
	require.NoError(t, l.Settle(ctx, "live", b, []int64{10}))
	require.Equal(t, []budget.Balance{{Used: 35}, {Used: 26}}, balancesOf(t, l, "a", "life"))
}

func TestEmbeddedCrashKeepsLastSnapshot(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.json")
	l := openEmbedded(t, path)
	items := []budget.Item{{Key: "a", Limit: 100, Amount: 10}}
	require.NoError(t, l.Settle(ctx, "r1", items, []int64{10}))
	_, err := l.Reserve(ctx, "r2", items, time.Hour)
	require.NoError(t, err)
	require.NoError(t, l.Flush())
	// Changes after the last flush are what a crash loses; the process "dies" without Close.
	require.NoError(t, l.Settle(ctx, "r3", items, []int64{50}))
	budget.SimulateCrash(l)

	after := openEmbedded(t, path)
	defer func() { require.NoError(t, after.Close()) }()
	require.Equal(t, []budget.Balance{{Used: 10, Reserved: 10}}, balancesOf(t, after, "a"),
		"the hold in flight at the crash survives it; the unflushed settle is lost")
}

func TestEmbeddedExpiredHoldsAfterRestart(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "ledger.json")
	l := openEmbedded(t, path, budget.WithClock(clk.Now))
	_, err := l.Reserve(ctx, "r1", []budget.Item{{Key: "a", Limit: 100, Amount: 100, Expires: clk.Now().Add(time.Hour)}}, time.Minute)
	require.NoError(t, err)
	require.NoError(t, l.Close())

	clk.Advance(time.Minute)
	l = openEmbedded(t, path, budget.WithClock(clk.Now))
	require.Equal(t, []budget.Balance{{}}, balancesOf(t, l, "a"))
	require.NoError(t, l.Close())

	clk.Advance(time.Hour)
	l = openEmbedded(t, path, budget.WithClock(clk.Now))
	require.Equal(t, budget.Stats{Counters: 1}, l.Stats(), "restored as is; tidied by the next call")
	require.Equal(t, []budget.Balance{{}}, balancesOf(t, l, "a"))
	require.NoError(t, l.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(data), `"key":"a"`, "expired counters are not written")
}

// TestEmbeddedSnapshotGolden pins the file format: this build must write it byte for byte,
// and every later build must read it.
func TestEmbeddedSnapshotGolden(t *testing.T) {
	t.Parallel()
	golden := filepath.Join("testdata", "snapshot-v1.json")
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "ledger.json")
	l := openEmbedded(t, path, budget.WithClock(clk.Now))
	day := clk.Now().Add(12 * time.Hour)
	items := []budget.Item{{Key: "tg:{t:platform}:team:usd:d20261127", Limit: 5_000_000, Amount: 900, Expires: day},
		{Key: "tg:{t:platform}:k:abc123:usd:life", Limit: 50_000_000, Amount: 900}}
	_, err := l.Reserve(ctx, "req-1", items, time.Minute)
	require.NoError(t, err)
	require.NoError(t, l.Settle(ctx, "req-1", items, []int64{450, 450}))
	_, err = l.Reserve(ctx, "req-2", items, time.Minute)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	require.NotContains(t, string(got), "req-1", "settled ids are not written")

	// The golden file opens with the same state, and so does one written before settled ids
	// were dropped from the format (they are ignored).
	for _, name := range []string{"snapshot-v1.json", "snapshot-v1-settled.json"} {
		want, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "ledger.json"), want, 0o600))
		r := openEmbedded(t, filepath.Join(dir, "ledger.json"), budget.WithClock(clk.Now))
		require.Equal(t, []budget.Balance{{Used: 450, Reserved: 900}, {Used: 450, Reserved: 900}}, balancesOf(t, r, items[0].Key, items[1].Key), name)
		require.Equal(t, budget.Stats{Counters: 2, Holds: 1}, r.Stats(), name)
		require.NoError(t, r.Close())
	}
}

// snapshotWith builds a file around state with a correct checksum, so a test can reach the
// consistency checks behind it.
func snapshotWith(version int, state string) string {
	sum := sha256.Sum256([]byte(state))
	return `{"version":` + string(rune('0'+version)) + `,"sha256":"` + hex.EncodeToString(sum[:]) + `","state":` + state + `}`
}

func TestEmbeddedRefusesCorruptFiles(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile(filepath.Join("testdata", "snapshot-v1.json"))
	require.NoError(t, err)
	const ok = `{"saved_at":"2026-11-27T12:00:00Z","counters":[{"key":"a","used":1}],"holds":[],"settled":[]}`
	tests := []struct {
		name    string
		content string
		want    error
	}{
		{"empty file", "", budget.ErrCorruptSnapshot},
		{"garbage", "not json at all", budget.ErrCorruptSnapshot},
		{"truncated", string(good[:len(good)/2]), budget.ErrCorruptSnapshot},
		{"one byte of state changed", strings.Replace(string(good), `"used":450`, `"used":451`, 1), budget.ErrCorruptSnapshot},
		{"checksum changed", strings.Replace(string(good), `"sha256":"`, `"sha256":"00`, 1), budget.ErrCorruptSnapshot},
		{"no checksum", `{"version":1,"state":` + ok + `}`, budget.ErrCorruptSnapshot},
		{"json null", "null", budget.ErrSnapshotVersion},
		{"future version", snapshotWith(2, ok), budget.ErrSnapshotVersion},
		{"negative usage", snapshotWith(1, strings.Replace(ok, `"used":1`, `"used":-1`, 1)), budget.ErrCorruptSnapshot},
		{"duplicate counter", snapshotWith(1, strings.Replace(ok, `{"key":"a","used":1}`, `{"key":"a","used":1},{"key":"a","used":2}`, 1)), budget.ErrCorruptSnapshot},
		{"unknown field", snapshotWith(1, strings.Replace(ok, `"holds"`, `"extra":1,"holds"`, 1)), budget.ErrCorruptSnapshot},
		{"hold on an unknown counter", snapshotWith(1, strings.Replace(ok, `"holds":[]`,
			`"holds":[{"id":"r","deadline":"2026-11-27T12:01:00Z","parts":[{"key":"b","amount":1}]}]`, 1)), budget.ErrCorruptSnapshot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.json")
			require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))
			l, err := budget.OpenEmbedded(path)
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, l)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tc.content, string(data), "a refused file is left as it was")
		})
	}
	t.Run("valid", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.json")
		require.NoError(t, os.WriteFile(path, []byte(snapshotWith(1, ok)), 0o600))
		l := openEmbedded(t, path)
		require.Equal(t, []budget.Balance{{Used: 1}}, balancesOf(t, l, "a"))
		require.NoError(t, l.Close())
	})
}

func TestEmbeddedFlushOnlyWhenDirty(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.json")
	l := openEmbedded(t, path)
	defer func() { require.NoError(t, l.Close()) }()
	stat := func() os.FileInfo {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi
	}
	first := stat() // OpenEmbedded wrote the empty ledger
	require.NoError(t, l.Flush())
	require.True(t, os.SameFile(first, stat()), "nothing changed: no write")
	_, err := l.Balances(ctx, []string{"a"})
	require.NoError(t, err)
	require.NoError(t, l.Flush())
	require.True(t, os.SameFile(first, stat()), "reads are not changes")

	require.NoError(t, l.Settle(ctx, "r1", []budget.Item{{Key: "a", Limit: 1}}, []int64{1}))
	require.NoError(t, l.Flush())
	second := stat()
	require.False(t, os.SameFile(first, second), "a change is written (by rename, so a new file)")
	require.Equal(t, os.FileMode(0o600), second.Mode().Perm())
}

func TestEmbeddedRunFlushesPeriodically(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.json")
	l := openEmbedded(t, path, budget.WithFlushInterval(10*time.Millisecond))
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, l.Run(runCtx)) })

	require.NoError(t, l.Settle(ctx, "r1", []budget.Item{{Key: "flushed", Limit: 1}}, []int64{1}))
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(path)
		return err == nil && strings.Contains(string(data), `"key":"flushed"`)
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	wg.Wait()

	// Close also stops Run.
	wg.Go(func() { require.NoError(t, l.Run(ctx)) })
	require.NoError(t, l.Close())
	wg.Wait()
}

func TestEmbeddedFlushErrors(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "ledger.json")
	errs := make(chan error, 100)
	l := openEmbedded(t, path, budget.WithFlushInterval(time.Millisecond), budget.WithFlushErrors(func(err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	require.NoError(t, os.RemoveAll(dir))
	items := []budget.Item{{Key: "a", Limit: 100, Amount: 1}}
	require.NoError(t, l.Settle(ctx, "r1", items, []int64{5}))
	require.Error(t, l.Flush())

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, l.Run(runCtx)) })
	require.Error(t, <-errs, "Run reports failed flushes")
	cancel()
	wg.Wait()

	// The ledger keeps serving from memory, and the change is written once the disk is back.
	require.Equal(t, []budget.Balance{{Used: 5}}, balancesOf(t, l, "a"))
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, l.Close())
	r := openEmbedded(t, path)
	require.Equal(t, []budget.Balance{{Used: 5}}, balancesOf(t, r, "a"))
	require.NoError(t, r.Close())
}

func TestEmbeddedOpenErrors(t *testing.T) {
	t.Parallel()
	_, err := budget.OpenEmbedded(filepath.Join(t.TempDir(), "missing", "ledger.json"))
	require.Error(t, err, "an unwritable location fails at open, not at the first flush")

	dir := t.TempDir()
	_, err = budget.OpenEmbedded(dir)
	require.Error(t, err, "a directory is not a snapshot")
}

func TestEmbeddedRemovesLeftoverTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.json")
	leftover := filepath.Join(dir, ".ledger.json.tmp-12345")
	other := filepath.Join(dir, ".other.json.tmp-1")
	require.NoError(t, os.WriteFile(leftover, []byte("half a snap"), 0o600))
	require.NoError(t, os.WriteFile(other, nil, 0o600))
	l := openEmbedded(t, path)
	require.NoError(t, l.Close())
	require.NoFileExists(t, leftover)
	require.FileExists(t, other)
}

func TestEmbeddedClosed(t *testing.T) {
	t.Parallel()
	l := openEmbedded(t, filepath.Join(t.TempDir(), "ledger.json"))
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	_, err := l.Reserve(ctx, "r1", nil, time.Minute)
	require.ErrorIs(t, err, budget.ErrClosed)
	require.ErrorIs(t, err, budget.ErrUnavailable)
	require.ErrorIs(t, l.Settle(ctx, "r1", nil, nil), budget.ErrClosed)
	_, err = l.Balances(ctx, nil)
	require.ErrorIs(t, err, budget.ErrUnavailable)
}

// TestEmbeddedLedgerIsExclusive: a second opener of the same ledger file is refused while the
// first holds it, in another process as in this one, so two writers never each forget the
// other's spend; after Close (or a crash) it opens.
func TestEmbeddedLedgerIsExclusive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.json")
	l := openEmbedded(t, path)
	_, err := budget.OpenEmbedded(path)
	require.ErrorIs(t, err, budget.ErrLedgerInUse)

	// Another process: flock(1) with a non-blocking exclusive lock on the same lock file.
	if flock, lookErr := exec.LookPath("flock"); lookErr == nil {
		out, err := exec.Command(flock, "-n", "-x", path+".lock", "true").CombinedOutput()
		require.Error(t, err, "another process got the lock: %s", out)
	}

	require.NoError(t, l.Close())
	again, err := budget.OpenEmbedded(path)
	require.NoError(t, err, "released on Close")
	budget.SimulateCrash(again)
	third, err := budget.OpenEmbedded(path)
	require.NoError(t, err, "released when the process dies")
	require.NoError(t, third.Close())
}
