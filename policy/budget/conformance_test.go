package budget_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/budget/budgettest"
)

func TestMemoryLedgerConformance(t *testing.T) {
	t.Parallel()
	budgettest.Run(t, func(t *testing.T, now func() time.Time) budget.Ledger {
		return budget.NewMemoryLedger(budget.WithClock(now))
	})
}

func TestEmbeddedLedgerConformance(t *testing.T) {
	t.Parallel()
	budgettest.Run(t, func(t *testing.T, now func() time.Time) budget.Ledger {
		l, err := budget.OpenEmbedded(filepath.Join(t.TempDir(), "ledger.json"), budget.WithClock(now))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, l.Close()) })
		return l
	})
}

// TestEmbeddedLedgerConformanceReopened runs the subtests on one file, closed and reopened
// between subtests, so each subtest starts from a snapshot holding the earlier ones' state.
func TestEmbeddedLedgerConformanceReopened(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.json")
	budgettest.Run(t, func(t *testing.T, now func() time.Time) budget.Ledger {
		l, err := budget.OpenEmbedded(path, budget.WithClock(now))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, l.Close()) })
		return l
	})
}

// TestRetryingConformance runs the suite through Retrying: wrapping a ledger changes none of
// its answers.
func TestRetryingConformance(t *testing.T) {
	t.Parallel()
	budgettest.Run(t, func(t *testing.T, now func() time.Time) budget.Ledger {
		r := budget.NewRetrying(budget.NewMemoryLedger(budget.WithClock(now)))
		t.Cleanup(func() { require.NoError(t, r.Close(context.Background())) })
		return r
	})
}
