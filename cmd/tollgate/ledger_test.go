package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/secrets"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// get returns the status and body of an admin endpoint.
func (tr *trial) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + tr.admin + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestReloadRefusesLedgerChange: the ledger is opened once, so a reload that changes it (or
// how it is reached) is refused with a clear reason, and the last good config keeps serving.
// Other budget settings still reload.
func TestReloadRefusesLedgerChange(t *testing.T) {
	tr := newTrial(t)
	tr.writeConfig(t, "budget: {embedded: {path: .dev/ledger.json}}\n")
	tr.start(t)

	tr.writeConfig(t, "budget: {ledger: redis, redis: {addrs: [\"127.0.0.1:1\"], password: \"env:NOT_READ\"}}\n")
	require.Eventually(t, func() bool { return strings.Contains(tr.logs.String(), "config reload refused") },
		5*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)
	require.Contains(t, tr.logs.String(), "budget.ledger changed")
	require.Contains(t, tr.logs.String(), "restart tollgate to apply")
	status, body := tr.get(t, "/readyz")
	require.Equal(t, 200, status)
	require.Contains(t, body, `"config_reloads":0`)
	require.Contains(t, body, `"config_reload_failures":1`)

	tr.writeConfig(t, "budget: {embedded: {path: .dev/other.json}}\n")
	require.Eventually(t, func() bool { return strings.Contains(tr.logs.String(), "budget.embedded.path changed") },
		5*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)

	tr.writeConfig(t, "budget: {embedded: {path: .dev/ledger.json}, reservation_hold: 1h}\n")
	require.Eventually(t, func() bool {
		_, body := tr.get(t, "/readyz")
		return strings.Contains(body, `"config_reloads":1`)
	}, 5*time.Second, 20*time.Millisecond, "a change the running ledger can serve reloads; logs:\n%s", tr.logs)
}

// TestNotReadyWhileRedisDown starts Tollgate while its Redis ledger is down: it starts, warns,
// and reports not ready (every request under a limit would get 503); it becomes ready when
// Redis answers, and not ready again when Redis goes away.
func TestNotReadyWhileRedisDown(t *testing.T) {
	srv := testutil.StartRedis(t)
	srv.Stop()
	tr := newTrial(t)
	tr.writeConfig(t, "budget: {ledger: redis, redis: {addrs: [\""+srv.Addr()+"\"]}}\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	require.Eventually(t, func() bool {
		status, body := tr.get(t, "/readyz")
		return status == 503 && strings.Contains(body, `"ledger":"unavailable"`)
	}, 10*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)
	require.Contains(t, tr.logs.String(), "budget ledger unreachable at startup")
	_, metrics := tr.get(t, "/metrics")
	require.Contains(t, metrics, "tollgate_budget_ledger_ready 0")
	require.Contains(t, metrics, "tollgate_budget_settle_pending 0")
	require.Contains(t, metrics, "tollgate_budget_settle_dropped_total 0")

	srv.Start()
	require.Eventually(t, func() bool { status, _ := tr.get(t, "/readyz"); return status == 200 },
		10*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)
	require.Contains(t, tr.logs.String(), "budget ledger reachable")
	_, metrics = tr.get(t, "/metrics")
	require.Contains(t, metrics, "tollgate_budget_ledger_ready 1")

	srv.Stop()
	require.Eventually(t, func() bool { status, _ := tr.get(t, "/readyz"); return status == 503 },
		10*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)
}

func TestRedisClientConfig(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, devtls.Write(filepath.Join(dir, "tls"), nil, time.Now()))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "user"), []byte("tollgate\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "not-pem"), []byte("hello"), 0o600))
	res := secrets.Resolver{LookupEnv: func(n string) (string, bool) {
		v, ok := map[string]string{"REDIS_PASSWORD": "s3cret-redis-password"}[n]
		return v, ok
	}}

	cc, err := redisClientConfig(policy.RedisConfig{Addrs: []string{"rediss://127.0.0.1:6380"}, Username: "file:user",
		Password: "env:REDIS_PASSWORD", DB: 2, Timeout: time.Second,
		TLS: policy.RedisTLSConfig{CAFile: "tls/ca.crt", ServerName: "localhost"}}, dir, res)
	require.NoError(t, err)
	require.Equal(t, "tollgate", cc.Username)
	require.Equal(t, "s3cret-redis-password", cc.Password)
	require.Equal(t, "localhost", cc.ServerName)
	require.NotNil(t, cc.RootCAs)
	require.Equal(t, 2, cc.DB)

	cc, err = redisClientConfig(policy.RedisConfig{Addrs: []string{"a:1"}, Username: "plain-user",
		TLS: policy.RedisTLSConfig{CAFile: "file:" + filepath.Join(dir, "tls", "ca.crt")}}, dir, res)
	require.NoError(t, err)
	require.Equal(t, "plain-user", cc.Username, "a username that is no reference is taken as is")
	require.NotNil(t, cc.RootCAs, "file:PATH works for the CA too")

	for _, tc := range []struct {
		name  string
		redis policy.RedisConfig
		field string
	}{
		{"unset password", policy.RedisConfig{Password: "env:UNSET"}, "budget.redis.password"},
		{"plaintext password", policy.RedisConfig{Password: "s3cret-redis-password"}, "budget.redis.password"},
		{"missing username file", policy.RedisConfig{Username: "file:nope"}, "budget.redis.username"},
		{"missing CA", policy.RedisConfig{TLS: policy.RedisTLSConfig{CAFile: "nope.pem"}}, "budget.redis.tls.ca_file"},
		{"CA without certificates", policy.RedisConfig{TLS: policy.RedisTLSConfig{CAFile: "not-pem"}}, "budget.redis.tls.ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisClientConfig(tc.redis, dir, res)
			require.ErrorContains(t, err, tc.field)
			require.NotContains(t, err.Error(), "s3cret-redis-password")
		})
	}
}
