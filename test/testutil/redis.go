package testutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisMinMajor is the oldest redis-server major version the tests accept (the Redis ledger
// uses PEXPIRETIME and EVALSHA_RO, both new in 7.0).
const RedisMinMajor = 7

// RedisReadyTimeout bounds how long StartRedis and (*Redis).Start wait for PING.
const RedisReadyTimeout = 10 * time.Second

// redisFallbackBin is where the Debian package installs the server.
const redisFallbackBin = "/usr/bin/redis-server"

var redisCache struct {
	sync.Mutex
	path string
}

// RedisServer returns the path of a redis-server binary of at least RedisMinMajor, trying
// env REDIS_SERVER_BIN (which must be executable), then redis-server on PATH, then
// /usr/bin/redis-server. When none is found the test is skipped, or failed when env CI=true.
func RedisServer(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("REDIS_SERVER_BIN"); p != "" {
		if err := checkExecutable(p); err != nil {
			t.Fatalf("testutil: REDIS_SERVER_BIN=%s: %v", p, err)
		}
		if err := checkRedisVersion(p); err != nil {
			t.Fatalf("testutil: REDIS_SERVER_BIN=%s: %v", p, err)
		}
		return p
	}
	redisCache.Lock()
	defer redisCache.Unlock()
	if redisCache.path != "" {
		return redisCache.path
	}
	var candidates, reasons []string
	if p, err := exec.LookPath("redis-server"); err == nil {
		candidates = append(candidates, p)
	}
	if checkExecutable(redisFallbackBin) == nil {
		candidates = append(candidates, redisFallbackBin)
	}
	for _, c := range candidates {
		if err := checkRedisVersion(c); err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		redisCache.path = c
		return c
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no redis-server on PATH or at "+redisFallbackBin)
	}
	skipOrFail(t, "testutil: no redis-server >= %d (set REDIS_SERVER_BIN, or apt-get install redis-server): %v",
		RedisMinMajor, reasons)
	return ""
}

// redisVersionRE matches `redis-server --version` output, e.g. "Redis server v=7.0.15 sha=...".
var redisVersionRE = regexp.MustCompile(`\bv=(\d+)\.\d+`)

func checkRedisVersion(bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %v", bin, err)
	}
	m := redisVersionRE.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("%s --version: no version in %q", bin, out)
	}
	if major, _ := strconv.Atoi(string(m[1])); major < RedisMinMajor {
		return fmt.Errorf("%s is Redis %s, want >= %d", bin, m[1], RedisMinMajor)
	}
	return nil
}

// Redis is a redis-server started by StartRedis: loopback only, no persistence, in a
// temporary directory. Stop and Start let a test take it down and bring it back on the same
// address (empty: nothing is persisted).
type Redis struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	cluster bool

	mu     sync.Mutex
	proc   *Process
	starts int
	paused bool
}

// StartRedis starts redis-server (RedisServer) on a free loopback port and returns once it
// answers PING. It is stopped in t.Cleanup; its log is dumped if the test fails.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: RedisServer(t), dir: t.TempDir(), port: FreePort(t)}
	r.Start()
	return r
}

// StartRedisCluster is StartRedis in cluster mode: a one-node Redis Cluster that owns all
// 16384 slots. It enforces the cluster's key rules (a multi-key command or script whose keys
// span slots fails with CROSSSLOT), so a go-redis ClusterClient pointed at Addr tests them.
func StartRedisCluster(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: RedisServer(t), dir: t.TempDir(), port: FreePort(t), cluster: true}
	r.Start()
	return r
}

// Addr returns the server's host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Start starts the server again after Stop, on the same port, and waits for PING. It does
// nothing if the server is running. Another process may have taken the port meanwhile;
// then the test fails. Call it only while the test that called StartRedis runs.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return
	}
	r.starts++
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", r.dir,
		"--loglevel", "warning",
	)
	if r.cluster {
		cmd.Args = append(cmd.Args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", // in --dir; kept across Stop and Start
			"--cluster-announce-ip", "127.0.0.1",
		)
	}
	cmd.Dir = r.dir
	p := StartProcess(r.t, fmt.Sprintf("redis-server-%d", r.starts), cmd)
	err := waitRedis(p, r.Addr(), RedisReadyTimeout)
	if err == nil && r.cluster {
		err = claimAllSlots(r.Addr(), RedisReadyTimeout)
	}
	if err != nil {
		p.Stop()
		r.t.Fatalf("testutil: redis-server not ready: %v", err)
	}
	r.proc = p
}

// claimAllSlots gives a fresh one-node cluster every slot (a restarted node remembers them
// in nodes.conf) and waits until CLUSTER INFO reports cluster_state:ok.
func claimAllSlots(addr string, timeout time.Duration) error {
	if reply, err := redisDo(addr, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		return err
	} else if reply != "+OK" && !strings.Contains(reply, "already busy") {
		return fmt.Errorf("CLUSTER ADDSLOTSRANGE: %s", reply)
	}
	deadline := time.Now().Add(timeout)
	for {
		info, err := redisDo(addr, "CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ok after %s: %v %q", timeout, err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s) and returns once it has exited.
// Clients then get connection errors at once. It does nothing if the server is stopped.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	if r.paused {
		_ = syscall.Kill(r.proc.Pid(), syscall.SIGCONT)
		r.paused = false
	}
	r.proc.Stop()
	r.proc = nil
}

// Pause freezes the server with SIGSTOP: connections stay open but nothing answers, like a
// hung or partitioned server. Resume (or Stop, or the test's cleanup) thaws it.
func (r *Redis) Pause() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil || r.paused {
		return
	}
	if err := syscall.Kill(r.proc.Pid(), syscall.SIGSTOP); err != nil {
		r.t.Fatalf("testutil: pause redis-server: %v", err)
	}
	r.paused = true
	r.t.Cleanup(r.Resume) // runs before StartProcess's cleanup (LIFO), so SIGTERM is heard
}

// Resume thaws a server frozen by Pause.
func (r *Redis) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil || !r.paused {
		return
	}
	_ = syscall.Kill(r.proc.Pid(), syscall.SIGCONT)
	r.paused = false
}

// waitRedis polls PING every 20 ms until the server answers PONG, it exits, or timeout.
func waitRedis(p *Process, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := errors.New("not probed yet")
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			return fmt.Errorf("redis-server exited during startup: %v", p.Err())
		default:
		}
		if last = pingRedis(addr); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %v", timeout, last)
}

// pingRedis sends PING and expects PONG.
func pingRedis(addr string) error {
	reply, err := redisDo(addr, "PING")
	if err != nil {
		return err
	}
	if reply != "+PONG" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}

// redisDo sends one command on a new connection and returns the reply: a status or error
// line as sent ("+OK", "-ERR ..."), or a bulk string's contents. testutil depends on the
// standard library only, so it speaks just enough RESP2 itself.
func redisDo(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return line, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return "", fmt.Errorf("unexpected reply %q", line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
