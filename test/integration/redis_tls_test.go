package integration

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/budget/budgettest"
	"github.com/tollgate-ai/tollgate/policy/budget/redisledger"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// ACL user of the TLS server; the default user is disabled.
const (
	aclUser     = "tollgate"
	aclPassword = "acl-password-0123456789"
)

// tlsRedis is a redis-server that accepts only TLS (no plaintext port) and only the ACL user
// aclUser, with a certificate for 127.0.0.1 and localhost from a fresh devtls CA.
type tlsRedis struct {
	addr  string // host:port of the TLS port
	caDir string // devtls material: ca.crt, server.crt, server.key
}

// startTLSRedis starts the server and waits until it answers PING over TLS. Debian's
// redis-server is built with TLS (it links libssl); a build without it exits at once on
// --tls-port, which fails the test with its log.
func startTLSRedis(t *testing.T) *tlsRedis {
	t.Helper()
	bin := testutil.RedisServer(t)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "tls")
	require.NoError(t, devtls.Write(caDir, nil, time.Now()))
	port := testutil.FreePort(t)
	cmd := exec.Command(bin,
		"--port", "0", // no plaintext listener
		"--tls-port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--tls-cert-file", filepath.Join(caDir, devtls.CertFile),
		"--tls-key-file", filepath.Join(caDir, devtls.KeyFile),
		"--tls-ca-cert-file", filepath.Join(caDir, devtls.CAFile),
		"--tls-auth-clients", "no", // clients authenticate with ACL, not certificates
		"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning",
		"--user", "default", "off",
		"--user", aclUser, "on", ">"+aclPassword, "~*", "&*", "+@all",
	)
	cmd.Dir = dir
	p := testutil.StartProcess(t, "redis-server-tls", cmd)
	r := &tlsRedis{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), caDir: caDir}
	deadline := time.Now().Add(testutil.RedisReadyTimeout)
	for {
		select {
		case <-p.Done():
			t.Fatalf("redis-server exited (built without TLS?): %v\n%s", p.Err(), p.Logs())
		default:
		}
		client, err := redisledger.NewClient(r.config(t, aclUser, aclPassword, r.caPool(t)))
		require.NoError(t, err)
		err = client.Ping(context.Background()).Err()
		client.Close()
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS redis-server not ready: %v\n%s", err, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *tlsRedis) caPool(t *testing.T) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(r.caDir, devtls.CAFile))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	return pool
}

func (r *tlsRedis) config(t *testing.T, user, password string, ca *x509.CertPool) redisledger.ClientConfig {
	t.Helper()
	return redisledger.ClientConfig{Addrs: []string{"rediss://" + r.addr}, Username: user, Password: password,
		Timeout: 2 * time.Second, RootCAs: ca}
}

// TestRedisLedgerTLSAndACL connects the ledger to a TLS-only redis-server as an ACL user:
// with the right CA and credentials it works; with a wrong CA, server name, password or
// user, or without TLS, every call fails closed (ErrUnavailable), and no error carries the
// password.
func TestRedisLedgerTLSAndACL(t *testing.T) {
	srv := startTLSRedis(t)
	otherCA := t.TempDir()
	require.NoError(t, devtls.Write(otherCA, nil, time.Now()))
	pem, err := os.ReadFile(filepath.Join(otherCA, devtls.CAFile))
	require.NoError(t, err)
	wrongCA := x509.NewCertPool()
	require.True(t, wrongCA.AppendCertsFromPEM(pem))

	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		cfg    func() redisledger.ClientConfig
		ok     bool
		reason string // in the error when !ok
	}{
		{"right CA and credentials", func() redisledger.ClientConfig { return srv.config(t, aclUser, aclPassword, srv.caPool(t)) }, true, ""},
		{"server name from config", func() redisledger.ClientConfig {
			c := srv.config(t, aclUser, aclPassword, srv.caPool(t))
			c.ServerName = "localhost"
			return c
		}, true, ""},
		{"wrong CA", func() redisledger.ClientConfig { return srv.config(t, aclUser, aclPassword, wrongCA) }, false, "certificate"},
		{"system roots", func() redisledger.ClientConfig { return srv.config(t, aclUser, aclPassword, nil) }, false, "certificate"},
		{"wrong server name", func() redisledger.ClientConfig {
			c := srv.config(t, aclUser, aclPassword, srv.caPool(t))
			c.ServerName = "redis.example.com"
			return c
		}, false, "certificate"},
		{"wrong password", func() redisledger.ClientConfig { return srv.config(t, aclUser, "not-the-password", srv.caPool(t)) }, false, "WRONGPASS"},
		{"default user is off", func() redisledger.ClientConfig { return srv.config(t, "", aclPassword, srv.caPool(t)) }, false, "WRONGPASS"},
		{"no TLS", func() redisledger.ClientConfig {
			return redisledger.ClientConfig{Addrs: []string{"redis://" + srv.addr}, Username: aclUser, Password: aclPassword, Timeout: 2 * time.Second}
		}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, err := redisledger.NewClient(tc.cfg())
			require.NoError(t, err)
			t.Cleanup(func() { client.Close() })
			l := newLedger(t, client, redisledger.WithTimeout(2*time.Second))
			items := budgettest.Items(budgettest.Keys(budgettest.Prefix(), 2), 100, 10)
			id := budgettest.ID()
			denied, err := l.Reserve(ctx, id, items, time.Minute)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, -1, denied)
				require.NoError(t, l.Settle(ctx, id, items, []int64{3, 4}))
				b, err := l.Balances(ctx, []string{items[0].Key, items[1].Key})
				require.NoError(t, err)
				require.Equal(t, []budget.Balance{{Used: 3}, {Used: 4}}, b)
				require.Equal(t, aclUser, client.Do(ctx, "ACL", "WHOAMI").Val())
				return
			}
			require.ErrorIs(t, err, budget.ErrUnavailable)
			require.ErrorContains(t, err, tc.reason)
			require.NotContains(t, err.Error(), aclPassword)
			require.ErrorIs(t, l.LoadScripts(ctx), budget.ErrUnavailable, "the readiness probe fails too")
		})
	}
}

func TestParseAddrs(t *testing.T) {
	for _, tc := range []struct {
		in    []string
		addrs []string
		tls   bool
		err   string
	}{
		{in: []string{"127.0.0.1:6379"}, addrs: []string{"127.0.0.1:6379"}},
		{in: []string{"redis://a:1", "b:2"}, addrs: []string{"a:1", "b:2"}},
		{in: []string{"rediss://a:1", "REDISS://b:2/"}, addrs: []string{"a:1", "b:2"}, tls: true},
		{in: []string{"rediss://[::1]:6380"}, addrs: []string{"[::1]:6380"}, tls: true},
		{in: nil, err: "none given"},
		{in: []string{"rediss://a:1", "b:2"}, err: "every address"},
		{in: []string{"a"}, err: "host:port"},
		{in: []string{"rediss://a"}, err: "host:port"},
		{in: []string{"http://a:1"}, err: "scheme"},
		{in: []string{"rediss://user:s3cr3t@a:1"}, err: "credentials"},
		{in: []string{"redis://a:1/2"}, err: "only scheme"},
		{in: []string{"redis://a:1?db=2"}, err: "only scheme"},
	} {
		t.Run(strconv.Quote(func() string {
			if len(tc.in) == 0 {
				return ""
			}
			return tc.in[0]
		}()), func(t *testing.T) {
			addrs, useTLS, err := redisledger.ParseAddrs(tc.in)
			if tc.err != "" {
				require.ErrorIs(t, err, redisledger.ErrBadAddress)
				require.ErrorContains(t, err, tc.err)
				require.NotContains(t, err.Error(), "s3cr3t")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.addrs, addrs)
			require.Equal(t, tc.tls, useTLS)
		})
	}
}
