package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/policy/budget/redisledger"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// replicasDir is the multi-replica example: the Redis config, its ACL file and the budget
// block every replica's config carries.
const replicasDir = "examples/replicas"

// exampleRedisUser is the ACL user of examples/replicas/users.acl.
const exampleRedisUser = "tollgate"

// exampleRedis is a redis-server running examples/replicas/redis.conf and users.acl as
// shipped, with only ports, addresses and paths rewritten: TLS only, one ACL user, AOF with
// the shipped appendfsync. Its data directory outlives Kill and Stop, so a restart shows
// what the shipped persistence settings keep.
type exampleRedis struct {
	t        *testing.T
	bin      string
	conf     string // rendered redis.conf
	dir      string
	port     int
	password string
	caFile   string

	mu     sync.Mutex
	proc   *testutil.Process
	starts int
}

// startExampleRedis renders the example's redis.conf and users.acl (a fresh password, whose
// SHA-256 replaces the placeholder hash) and starts the server.
func startExampleRedis(t *testing.T) *exampleRedis {
	t.Helper()
	root := testutil.RepoRoot(t)
	r := &exampleRedis{t: t, bin: testutil.RedisServer(t), dir: t.TempDir(), port: testutil.FreePort(t)}
	tlsDir := filepath.Join(r.dir, "tls")
	require.NoError(t, devtls.Write(tlsDir, nil, time.Now()))
	r.caFile = filepath.Join(tlsDir, devtls.CAFile)
	data := filepath.Join(r.dir, "data")
	require.NoError(t, os.Mkdir(data, 0o700))

	secret := make([]byte, 24)
	_, err := rand.Read(secret)
	require.NoError(t, err)
	r.password = hex.EncodeToString(secret)
	sum := sha256.Sum256([]byte(r.password))
	acl := testutil.RenderBootstrap(t, filepath.Join(root, replicasDir, "users.acl"),
		testutil.Rewrite{Old: "#" + strings.Repeat("0", 64), New: "#" + hex.EncodeToString(sum[:])})

	r.conf = testutil.RenderBootstrap(t, filepath.Join(root, replicasDir, "redis.conf"),
		testutil.Rewrite{Old: "\ntls-port 6379\n", New: "\ntls-port " + strconv.Itoa(r.port) + "\n"},
		testutil.Rewrite{Old: "\nbind 0.0.0.0\n", New: "\nbind 127.0.0.1\n"},
		testutil.Rewrite{Old: " /etc/redis/tls/tls.crt\n", New: " " + filepath.Join(tlsDir, devtls.CertFile) + "\n"},
		testutil.Rewrite{Old: " /etc/redis/tls/tls.key\n", New: " " + filepath.Join(tlsDir, devtls.KeyFile) + "\n"},
		testutil.Rewrite{Old: " /etc/redis/tls/ca.crt\n", New: " " + r.caFile + "\n"},
		testutil.Rewrite{Old: "\naclfile /etc/redis/acl/users.acl\n", New: "\naclfile " + acl + "\n"},
		testutil.Rewrite{Old: "\ndir /data\n", New: "\ndir " + data + "\n"},
	)
	r.Start()
	return r
}

// addr is the server's host:port.
func (r *exampleRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Start starts the server (again) and waits until the ACL user gets PONG over TLS.
func (r *exampleRedis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return
	}
	r.starts++
	cmd := exec.Command(r.bin, r.conf)
	cmd.Dir = r.dir
	p := testutil.StartProcess(r.t, "redis-example-"+strconv.Itoa(r.starts), cmd)
	pem, err := os.ReadFile(r.caFile)
	require.NoError(r.t, err)
	pool := x509.NewCertPool()
	require.True(r.t, pool.AppendCertsFromPEM(pem))
	client, err := redisledger.NewClient(redisledger.ClientConfig{Addrs: []string{"rediss://" + r.addr()},
		Username: exampleRedisUser, Password: r.password, Timeout: time.Second, RootCAs: pool})
	require.NoError(r.t, err)
	defer client.Close()
	deadline := time.Now().Add(testutil.RedisReadyTimeout)
	for {
		select {
		case <-p.Done():
			r.t.Fatalf("redis-server exited at start (config refused?): %v\n%s", p.Err(), p.Logs())
		default:
		}
		if err = client.Ping(context.Background()).Err(); err == nil {
			r.proc = p
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server not ready: %v\n%s", err, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down with SIGTERM (Redis writes its files on the way out).
func (r *exampleRedis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		r.proc.Stop()
		r.proc = nil
	}
}

// Kill ends the server with SIGKILL, as a crash would: only what was already on disk
// survives.
func (r *exampleRedis) Kill() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	require.NoError(r.t, syscall.Kill(r.proc.Pid(), syscall.SIGKILL))
	<-r.proc.Done()
	r.proc = nil
}

// budgetSectionRE is the budget section of a config: from "budget:" up to the next
// top-level key.
var budgetSectionRE = regexp.MustCompile(`(?m)^budget:\n(?:[ #].*\n|\n)*`)

// withExampleBudget replaces cfg's budget section with examples/replicas/budget.yaml,
// pointed at r (address, password file, CA), so every replica uses the example's block.
func withExampleBudget(t *testing.T, cfg string, r *exampleRedis) string {
	t.Helper()
	root := testutil.RepoRoot(t)
	pw := filepath.Join(t.TempDir(), "redis-password")
	require.NoError(t, os.WriteFile(pw, []byte(r.password+"\n"), 0o600))
	block := readFile(t, testutil.RenderBootstrap(t, filepath.Join(root, replicasDir, "budget.yaml"),
		testutil.Rewrite{Old: `"rediss://redis.llm-gateway.svc.cluster.local:6379"`, New: `"rediss://` + r.addr() + `"`},
		testutil.Rewrite{Old: "file:/etc/tollgate/redis/password\n", New: "file:" + pw + "\n"},
		testutil.Rewrite{Old: "ca_file: /etc/tollgate/redis/ca.crt\n", New: "ca_file: " + r.caFile + "\n"},
		// Each new pooled connection does a TLS handshake within this bound. Under the race
		// detector on a busy shared machine that can take longer than the shipped 250 ms, and
		// the request would then fail closed (503) for a reason this test is not about.
		testutil.Rewrite{Old: "timeout: 250ms\n", New: "timeout: 2s\n"},
	))
	_, block, ok := strings.Cut(block, "\nbudget:\n")
	require.True(t, ok, "budget.yaml has a budget section")
	require.Len(t, budgetSectionRE.FindAllStringIndex(cfg, -1), 1, "one budget section in the config")
	return budgetSectionRE.ReplaceAllLiteralString(cfg, "budget:\n"+block+"\n")
}

// redisCallRE finds the commands the ledger's Lua scripts run.
var redisCallRE = regexp.MustCompile(`redis\.call\('([A-Za-z]+)'`)

// TestReplicasACLCoversTheLedger: the example's ACL user may run every command the budget
// ledger needs (each command its Lua scripts call, the script commands that run them, and
// what the client sends on connect) and nothing it does not, on keys under tg: only. An ACL
// missing one would fail requests closed (503) in production on the code path that needs it.
func TestReplicasACLCoversTheLedger(t *testing.T) {
	root := testutil.RepoRoot(t)
	acl := readFile(t, filepath.Join(root, replicasDir, "users.acl"))
	var rules []string
	for _, line := range strings.Split(strings.TrimSpace(acl), "\n") {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 2, "line %q", line)
		require.Equal(t, "user", f[0], "an ACL file has only user lines (no comments): %q", line)
		if f[1] == "default" {
			// Off: no client can use it. Yet it keeps every permission, because Redis replays
			// the AOF as the default user: without them, loading refuses the MULTI/EXEC that
			// records each ledger script's writes, and a restart silently loses the spend
			// (seen with Redis 7.0; TestBudgetsRedisTwoReplicas restarts Redis to prove it).
			require.Equal(t, []string{"user", "default", "off", "resetkeys", "~*", "resetchannels", "&*", "+@all"}, f,
				"the default user is off and keeps every permission")
			continue
		}
		require.Equal(t, exampleRedisUser, f[1])
		rules = f[2:]
	}
	require.NotEmpty(t, rules, "users.acl defines the %s user", exampleRedisUser)
	require.Subset(t, rules, []string{"on", "resetkeys", "~tg:*", "resetchannels", "-@all"})
	require.Less(t, indexOf(rules, "-@all"), indexOf(rules, "+auth"), "-@all comes before the grants")

	want := map[string]bool{
		// go-redis on connect, and the ledger's readiness probe.
		"+auth": true, "+hello": true, "+ping": true, "+select": true,
		// How the ledger runs its scripts (Run: EVALSHA, then EVAL on NOSCRIPT; EvalRO /
		// EvalShaRO for balances; LoadScripts).
		"+evalsha": true, "+eval": true, "+evalsha_ro": true, "+eval_ro": true, "+script|load": true, "+script|exists": true,
		// Redis Cluster topology (several addresses).
		"+cluster|slots": true, "+cluster|shards": true,
	}
	scripts := readFile(t, filepath.Join(root, "policy", "budget", "redisledger", "scripts.go"))
	calls := redisCallRE.FindAllStringSubmatch(scripts, -1)
	require.NotEmpty(t, calls, "the ledger's scripts call Redis")
	for _, m := range calls {
		want["+"+strings.ToLower(m[1])] = true
	}
	var got, missing []string
	for _, r := range rules {
		if strings.HasPrefix(r, "+") {
			got = append(got, r)
		}
	}
	for w := range want {
		if indexOf(got, w) < 0 {
			missing = append(missing, w)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "users.acl lacks commands the ledger runs")
	for _, g := range got {
		require.True(t, want[g], "users.acl grants %s, which the ledger does not use", g)
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
