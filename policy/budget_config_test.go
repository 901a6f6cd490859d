package policy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

func TestRedisLedgerConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		redis policy.RedisConfig
		errs  []string // field paths named in the error; none: valid
	}{
		{"plain", policy.RedisConfig{Addrs: []string{"127.0.0.1:6379"}}, nil},
		{"tls with acl", policy.RedisConfig{Addrs: []string{"rediss://redis.internal:6380"}, Username: "tollgate",
			Password: "env:REDIS_PASSWORD", TLS: policy.RedisTLSConfig{CAFile: "ca.pem", ServerName: "redis.internal"}}, nil},
		{"username reference", policy.RedisConfig{Addrs: []string{"redis://a:1"}, Username: "file:redis-user"}, nil},
		{"no address", policy.RedisConfig{}, []string{"budget.redis.addrs"}},
		{"mixed tls", policy.RedisConfig{Addrs: []string{"rediss://a:1", "b:2"}}, []string{"budget.redis.addrs"}},
		{"unknown scheme", policy.RedisConfig{Addrs: []string{"http://a:1"}}, []string{"budget.redis.addrs[0]"}},
		{"tls block without rediss", policy.RedisConfig{Addrs: []string{"a:1"}, TLS: policy.RedisTLSConfig{CAFile: "ca.pem"}},
			[]string{"budget.redis.tls"}},
		{"plaintext password", policy.RedisConfig{Addrs: []string{"a:1"}, Password: "hunter2"}, []string{"budget.redis.password"}},
		{"bad username reference", policy.RedisConfig{Addrs: []string{"a:1"}, Username: "env:"}, []string{"budget.redis.username"}},
		{"negative db", policy.RedisConfig{Addrs: []string{"a:1"}, DB: -1}, []string{"budget.redis.db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := policytest.BaseConfig()
			cfg.Budget.Ledger = policy.LedgerRedis
			cfg.Budget.Redis = tc.redis
			cfg.ApplyDefaults()
			err := cfg.Validate()
			if len(tc.errs) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, e := range tc.errs {
				require.ErrorContains(t, err, e)
			}
			require.NotContains(t, err.Error(), "hunter2", "a plaintext secret is never echoed")
		})
	}
}

func TestLedgerChanges(t *testing.T) {
	redis := policy.BudgetConfig{Ledger: policy.LedgerRedis, Redis: policy.RedisConfig{Addrs: []string{"a:1"}, Password: "env:P"}}
	for _, tc := range []struct {
		name     string
		old, new policy.BudgetConfig
		want     []string
	}{
		{"defaults equal explicit defaults", policy.BudgetConfig{},
			policy.BudgetConfig{Ledger: policy.LedgerEmbedded, Embedded: policy.EmbeddedConfig{Path: policy.DefaultLedgerPath, FlushInterval: time.Second}}, nil},
		{"limits and holds may change", policy.BudgetConfig{}, policy.BudgetConfig{Hold: time.Hour, FailOpen: []string{"usd_per_day"}, Timezone: "Europe/Paris"}, nil},
		{"embedded to redis", policy.BudgetConfig{}, redis, []string{"budget.ledger"}},
		{"embedded path", policy.BudgetConfig{}, policy.BudgetConfig{Embedded: policy.EmbeddedConfig{Path: "other.json"}}, []string{"budget.embedded.path"}},
		{"redis unchanged", redis, redis, nil},
		{"redis connection", redis, policy.BudgetConfig{Ledger: policy.LedgerRedis, Redis: policy.RedisConfig{
			Addrs: []string{"rediss://a:1"}, Username: "u", Password: "env:Q", DB: 1, Timeout: time.Second,
			TLS: policy.RedisTLSConfig{CAFile: "ca.pem"}}},
			[]string{"budget.redis.addrs", "budget.redis.username", "budget.redis.password", "budget.redis.db", "budget.redis.timeout", "budget.redis.tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.old.LedgerChanges(tc.new))
		})
	}
}
