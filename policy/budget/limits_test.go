package budget_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestKindNames(t *testing.T) {
	t.Parallel()
	names := map[budget.Kind][2]string{
		budget.KindRequestsPerMinute: {"requests_per_minute", "requests"},
		budget.KindTokensPerMinute:   {"tokens_per_minute", "tokens"},
		budget.KindUSDPerDay:         {"usd_per_day", "usd"},
		budget.KindUSDPerMonth:       {"usd_per_month", "usd"},
		budget.KindUSDLifetime:       {"usd_lifetime", "usd"},
	}
	require.Len(t, names, int(budget.NumKinds))
	for k := range budget.NumKinds {
		require.Equal(t, names[k][0], k.String())
		require.Equal(t, names[k][1], k.Unit())
	}
	require.Equal(t, "unknown", budget.NumKinds.String())
	require.Equal(t, "unknown", budget.Kind(-1).Unit())
}

func TestLimits(t *testing.T) {
	t.Parallel()
	l := budget.Limits{RequestsPerMinute: 1, TokensPerMinute: 2, USDPerDay: 3, USDPerMonth: 4, USDLifetime: 5}
	for k := range budget.NumKinds {
		require.Equal(t, int64(k)+1, l.Get(k))
	}
	require.NoError(t, l.Validate())
	err := budget.Limits{TokensPerMinute: -1, USDLifetime: -1}.Validate()
	require.ErrorContains(t, err, "tokens_per_minute: must not be negative")
	require.ErrorContains(t, err, "usd_lifetime: must not be negative")
}

func TestWindowEnd(t *testing.T) {
	t.Parallel()
	ny := mustLoc(t, "America/New_York")
	tests := []struct {
		name string
		kind budget.Kind
		now  string
		loc  *time.Location
		want string // RFC 3339 in UTC; "" for the zero time
	}{
		{"minute", budget.KindRequestsPerMinute, "2026-11-27T12:05:59.999Z", nil, "2026-11-27T12:06:00Z"},
		{"minute on the boundary starts a new window", budget.KindTokensPerMinute, "2026-11-27T12:06:00Z", ny, "2026-11-27T12:07:00Z"},
		{"minute ignores loc", budget.KindTokensPerMinute, "2026-11-01T05:30:10Z", ny, "2026-11-01T05:31:00Z"},
		{"day utc", budget.KindUSDPerDay, "2026-11-27T23:59:59Z", time.UTC, "2026-11-28T00:00:00Z"},
		{"day nil loc is utc", budget.KindUSDPerDay, "2026-11-27T00:00:00Z", nil, "2026-11-28T00:00:00Z"},
		{"day in new york (EST)", budget.KindUSDPerDay, "2026-11-28T03:00:00Z", ny, "2026-11-28T05:00:00Z"},
		// 2026-03-08 is 23 hours long in New York: the day ends at EDT midnight.
		{"day of spring forward", budget.KindUSDPerDay, "2026-03-08T06:30:00Z", ny, "2026-03-09T04:00:00Z"},
		{"day before spring forward", budget.KindUSDPerDay, "2026-03-08T04:59:59Z", ny, "2026-03-08T05:00:00Z"},
		// 2026-11-01 is 25 hours long: both 01:30 EDT and 01:30 EST are in it.
		{"fall back first 01:30", budget.KindUSDPerDay, "2026-11-01T05:30:00Z", ny, "2026-11-02T05:00:00Z"},
		{"fall back second 01:30", budget.KindUSDPerDay, "2026-11-01T06:30:00Z", ny, "2026-11-02T05:00:00Z"},
		{"leap day", budget.KindUSDPerDay, "2028-02-28T12:00:00Z", nil, "2028-02-29T00:00:00Z"},
		{"month utc", budget.KindUSDPerMonth, "2026-11-27T12:00:00Z", nil, "2026-12-01T00:00:00Z"},
		{"month year end", budget.KindUSDPerMonth, "2026-12-31T23:59:59Z", nil, "2027-01-01T00:00:00Z"},
		{"month february", budget.KindUSDPerMonth, "2027-02-01T00:00:00Z", nil, "2027-03-01T00:00:00Z"},
		// 23:30 EST on Nov 30 is already December in UTC; the window is still November's.
		{"month in new york, december in utc", budget.KindUSDPerMonth, "2026-12-01T04:30:00Z", ny, "2026-12-01T05:00:00Z"},
		{"month across spring forward", budget.KindUSDPerMonth, "2026-03-01T05:00:00Z", ny, "2026-04-01T04:00:00Z"},
		{"month across fall back", budget.KindUSDPerMonth, "2026-10-31T12:00:00Z", ny, "2026-11-01T04:00:00Z"},
		{"month ending in EST", budget.KindUSDPerMonth, "2026-11-01T04:00:00Z", ny, "2026-12-01T05:00:00Z"},
		{"lifetime", budget.KindUSDLifetime, "2026-11-27T12:00:00Z", ny, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := budget.WindowEnd(tc.kind, utc(tc.now), tc.loc)
			if tc.want == "" {
				require.True(t, got.IsZero())
				return
			}
			require.Equal(t, tc.want, got.UTC().Format(time.RFC3339Nano))
			require.True(t, got.After(utc(tc.now)))
		})
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	ny := mustLoc(t, "America/New_York")
	all := budget.Limits{RequestsPerMinute: 60, TokensPerMinute: 100_000, USDPerDay: 5_000_000, USDPerMonth: 100_000_000, USDLifetime: 1_000_000_000}
	est := budget.Estimate{Tokens: 1500, CostMicros: 450}
	// 22:05 EST on Nov 27 in New York; 03:05 on Nov 28 in UTC.
	now := utc("2026-11-28T03:05:30Z")

	got := budget.Plan("platform", "abc123", all, budget.Limits{USDPerMonth: 7, RequestsPerMinute: 9}, est, now, ny)
	type row struct {
		key    string
		scope  string
		kind   budget.Kind
		limit  int64
		amount int64
		end    string
	}
	want := []row{
		{"tg:{t:platform}:k:abc123:req:m202611280305", "key", budget.KindRequestsPerMinute, 60, 1, "2026-11-28T03:06:00Z"},
		{"tg:{t:platform}:k:abc123:tok:m202611280305", "key", budget.KindTokensPerMinute, 100_000, 1500, "2026-11-28T03:06:00Z"},
		{"tg:{t:platform}:k:abc123:usd:d20261127", "key", budget.KindUSDPerDay, 5_000_000, 450, "2026-11-28T05:00:00Z"},
		{"tg:{t:platform}:k:abc123:usd:mo202611", "key", budget.KindUSDPerMonth, 100_000_000, 450, "2026-12-01T05:00:00Z"},
		{"tg:{t:platform}:k:abc123:usd:life", "key", budget.KindUSDLifetime, 1_000_000_000, 450, ""},
		{"tg:{t:platform}:team:req:m202611280305", "team", budget.KindRequestsPerMinute, 9, 1, "2026-11-28T03:06:00Z"},
		{"tg:{t:platform}:team:usd:mo202611", "team", budget.KindUSDPerMonth, 7, 450, "2026-12-01T05:00:00Z"},
	}
	require.Len(t, got, len(want))
	for i, w := range want {
		p := got[i]
		require.Equal(t, w.key, p.Item.Key)
		require.Equal(t, w.scope, p.Scope)
		require.Equal(t, w.kind, p.Kind)
		require.Equal(t, w.limit, p.Item.Limit)
		require.Equal(t, w.amount, p.Item.Amount)
		if w.end == "" {
			require.True(t, p.WindowEnd.IsZero())
			require.True(t, p.Item.Expires.IsZero())
			continue
		}
		require.Equal(t, w.end, p.WindowEnd.UTC().Format(time.RFC3339))
		require.Equal(t, p.WindowEnd.Add(budget.CounterSlack), p.Item.Expires)
	}
	require.Equal(t, []int64{1, 2000, 900, 900, 900, 1, 900}, budget.Actuals(got, 2000, 900))
	items := budget.Items(got)
	for i := range got {
		require.Equal(t, got[i].Item, items[i])
	}

	require.Nil(t, budget.Plan("platform", "abc123", budget.Limits{}, budget.Limits{}, est, now, ny))
	// Usage reports plan with a zero estimate; requests still count one.
	z := budget.Plan("platform", "", budget.Limits{}, budget.Limits{RequestsPerMinute: 1, USDPerDay: 1}, budget.Estimate{}, now, nil)
	require.Equal(t, "tg:{t:platform}:team:usd:d20261128", z[1].Item.Key, "nil loc is UTC")
	require.Equal(t, []int64{1, 0}, []int64{z[0].Item.Amount, z[1].Item.Amount})
	neg := budget.Plan("t", "k", budget.Limits{TokensPerMinute: 1}, budget.Limits{}, budget.Estimate{Tokens: -5}, now, nil)
	require.Equal(t, int64(0), neg[0].Item.Amount)
}

func TestPlanEscapesKeys(t *testing.T) {
	t.Parallel()
	l := budget.Limits{USDLifetime: 1}
	now := utc("2026-11-27T12:00:00Z")
	tests := []struct{ team, keyID, want string }{
		{"a.b_c-D9", "Zz09", "tg:{t:a.b_c-D9}:k:Zz09:usd:life"},
		{"a:b{c}", "x}y", "tg:{t:a%3Ab%7Bc%7D}:k:x%7Dy:usd:life"},
		{"%3A", "", "tg:{t:%253A}:k::usd:life"},
		{"é", "k", "tg:{t:%C3%A9}:k:k:usd:life"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			p := budget.Plan(tc.team, tc.keyID, l, budget.Limits{}, budget.Estimate{}, now, nil)
			require.Equal(t, tc.want, p[0].Item.Key)
		})
	}
}

// FuzzPlanKeys checks that no team or key id can add a delimiter to a key: every key has
// exactly one hash tag, "{t:<team>}", and a fixed number of colons.
func FuzzPlanKeys(f *testing.F) {
	for _, s := range [][2]string{{"platform", "abc123"}, {"a:b", "}{"}, {"", ""}, {"%", "%%"}} {
		f.Add(s[0], s[1])
	}
	all := budget.Limits{RequestsPerMinute: 1, TokensPerMinute: 1, USDPerDay: 1, USDPerMonth: 1, USDLifetime: 1}
	now := utc("2026-11-27T12:00:00Z")
	f.Fuzz(func(t *testing.T, team, keyID string) {
		for _, p := range budget.Plan(team, keyID, all, all, budget.Estimate{}, now, nil) {
			k := p.Item.Key
			if strings.Count(k, "{") != 1 || strings.Count(k, "}") != 1 || !strings.HasPrefix(k, "tg:{t:") {
				t.Fatalf("bad hash tag in %q", k)
			}
			want := 6
			if p.Scope == budget.ScopeTeam {
				want = 5
			}
			if n := strings.Count(k, ":"); n != want {
				t.Fatalf("%d colons in %q", n, k)
			}
		}
	})
}

func TestRetry(t *testing.T) {
	t.Parallel()
	now := utc("2026-11-27T12:05:30Z")
	p := budget.Plan("t", "k", budget.Limits{RequestsPerMinute: 1, USDPerDay: 1, USDLifetime: 1}, budget.Limits{}, budget.Estimate{}, now, nil)
	require.Equal(t, 30*time.Second, budget.Retry(p[0], now))
	require.Equal(t, 11*time.Hour+54*time.Minute+30*time.Second, budget.Retry(p[1], now))
	require.Equal(t, time.Duration(0), budget.Retry(p[2], now), "lifetime: waiting does not help")
	require.Equal(t, time.Second, budget.Retry(p[0], now.Add(29900*time.Millisecond)), "at least one second")
	require.Equal(t, time.Second, budget.Retry(p[0], now.Add(time.Hour)), "window already over")
}
