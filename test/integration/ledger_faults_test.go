package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/policytest"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// faultBackoff keeps retries quick in these tests: the first after 20 ms, none more than
// 200 ms after Redis answers again.
var faultBackoff = budget.WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond)

// faultFixture is the policy fixture (team platform: $0.001 a day) on a Retrying Redis
// ledger with the production timeout (250 ms), warmed up so every call is one EVALSHA.
func faultFixture(t *testing.T, srv *testutil.Redis) (*policytest.Fixture, *budget.Retrying) {
	t.Helper()
	inner := newLedger(t, newClient(t, srv.Addr()))
	require.NoError(t, inner.LoadScripts(context.Background()))
	r := budget.NewRetrying(inner, faultBackoff)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return policytest.NewWithBudget(t, r, nil), r
}

// chat admits and routes one chat request with the fixture's valid key.
func chat(t *testing.T, fx *policytest.Fixture) (*policy.Admission, *policy.Forward) {
	t.Helper()
	m := map[string]string{":method": "POST", ":path": "/v1/chat/completions",
		"authorization": "Bearer " + fx.Keys["valid"], "content-type": "application/json"}
	h := policy.RequestHeaders{Method: "POST", Path: "/v1/chat/completions",
		Names: []string{":method", ":path", "authorization", "content-type"}, Get: func(n string) string { return m[n] }}
	a, rep := fx.Snapshot.Admit(fx.Now, h)
	require.Nil(t, rep)
	f, rep := fx.Snapshot.Route(a, []byte(`{"model":"gpt-4o-mini","max_tokens":100,"messages":[]}`))
	require.Nil(t, rep)
	return a, f
}

// TestStalledReserveLeavesNoPhantom freezes Redis (SIGSTOP) while a request reserves: the
// reserve times out, the client gets 503 and nothing is forwarded. The EVALSHA is still in
// the socket, and Redis runs it when it thaws (SIGCONT). Without a compensating release that
// reservation would block the budget for the whole hold (15 minutes) with nobody to settle
// it; with it, nothing is held once Redis has caught up.
func TestStalledReserveLeavesNoPhantom(t *testing.T) {
	srv := testutil.StartRedis(t)
	r := raw(t, srv)
	ctx := context.Background()
	fx, ledger := faultFixture(t, srv)

	a, f := chat(t, fx) // reservation res-1
	h, rep := fx.Snapshot.Reserve(ctx, a, f, fx.Now)
	require.Nil(t, rep)
	_, err := f.Settle(ctx, h, policy.Outcome{Usage: llm.Usage{InputTokens: 10, OutputTokens: 5}, UsageSeen: true, Ended: true, Status: 200})
	require.NoError(t, err)
	used := policytest.TeamUSDPerDay(t, fx.Snapshot, fx.Now).Used

	srv.Pause()
	a, f = chat(t, fx) // reservation res-2
	h, rep = fx.Snapshot.Reserve(ctx, a, f, fx.Now)
	require.Nil(t, h, "nothing is forwarded")
	require.NotNil(t, rep)
	require.Equal(t, 503, rep.Status)
	require.Equal(t, policy.ReasonLedgerUnavailable, rep.Reason)
	require.Equal(t, int64(1), ledger.Stats().Releases)
	srv.Resume()

	// The release lands (its marker makes a reserve of res-2 arriving after it a no-op), and
	// whichever of the two Redis ran first, res-2 holds nothing.
	marker := "tg:{t:platform}:settled:res-2"
	require.Eventually(t, func() bool {
		return ledger.Stats().Pending == 0 && r.Exists(ctx, marker).Val() == 1
	}, 10*time.Second, 10*time.Millisecond, "stats %+v", ledger.Stats())
	for _, k := range r.Keys(ctx, "tg:{t:platform}:*").Val() {
		if r.Type(ctx, k).Val() == "hash" {
			require.False(t, r.HExists(ctx, k, "h:res-2").Val(), k)
		} else if r.Type(ctx, k).Val() == "zset" {
			require.Empty(t, r.ZRange(ctx, k, 0, -1).Val(), k)
		}
	}
	e := policytest.TeamUSDPerDay(t, fx.Snapshot, fx.Now)
	require.Zero(t, e.Reserved, "no phantom reservation")
	require.Equal(t, used, e.Used, "and nothing charged for the refused request")
	require.Equal(t, budget.RetryStats{Releases: 1, Retries: ledger.Stats().Retries, Recovered: 1}, ledger.Stats())
}

// TestSettleDuringOutageArrives takes Redis away while a stream settles: frozen (SIGSTOP),
// then killed and restarted. The settle is queued and retried, and the spend arrives once,
// exactly, when Redis is back.
func TestSettleDuringOutageArrives(t *testing.T) {
	for _, tc := range []struct {
		name     string
		down, up func(*testutil.Redis)
	}{
		{"Frozen", (*testutil.Redis).Pause, (*testutil.Redis).Resume},
		{"Restarted", (*testutil.Redis).Stop, (*testutil.Redis).Start},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testutil.StartRedis(t)
			ctx := context.Background()
			fx, ledger := faultFixture(t, srv)
			a, f := chat(t, fx)
			h, rep := fx.Snapshot.Reserve(ctx, a, f, fx.Now)
			require.Nil(t, rep)
			require.Equal(t, h.Estimate.CostMicros, policytest.TeamUSDPerDay(t, fx.Snapshot, fx.Now).Reserved)

			tc.down(srv)
			st, err := f.Settle(ctx, h, policy.Outcome{Usage: llm.Usage{InputTokens: 10, OutputTokens: 5}, UsageSeen: true, Ended: true, Status: 200})
			require.NoError(t, err, "queued for retry")
			require.Equal(t, int64(1), ledger.Stats().Deferred)
			tc.up(srv)

			require.Eventually(t, func() bool { return ledger.Stats().Pending == 0 }, 10*time.Second, 10*time.Millisecond)
			stats := ledger.Stats()
			require.Equal(t, int64(1), stats.Recovered)
			require.Zero(t, stats.Dropped)
			e := policytest.TeamUSDPerDay(t, fx.Snapshot, fx.Now)
			require.Equal(t, st.CostMicros, e.Used, "the spend arrived, once")
			require.Zero(t, e.Reserved, "and the reservation is released")
		})
	}
}
