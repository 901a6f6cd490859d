package integration

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget/redisledger"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// clientOptions are the options cmd/tollgate uses (no retries, socket timeouts bounded), with
// ContextTimeoutEnabled so the ledger's per-call deadline reaches the socket. The timeouts
// are generous here: -race and a loaded CI machine must not turn into flaky failures.
func clientOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		MaxRetries:            -1,
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		ContextTimeoutEnabled: true,
	}
}

func newClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(clientOptions(addr))
	t.Cleanup(func() { c.Close() })
	return c
}

// newLedger returns redisledger.New(client, opts...), failing the test on an error.
func newLedger(t testing.TB, client redis.UniversalClient, opts ...redisledger.Option) *redisledger.Ledger {
	t.Helper()
	l, err := redisledger.New(client, opts...)
	require.NoError(t, err)
	return l
}

func newClusterClient(t testing.TB, addr string) *redis.ClusterClient {
	o := clientOptions(addr)
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{addr}, MaxRetries: o.MaxRetries, DialTimeout: o.DialTimeout,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// cmdLog is a go-redis hook that records every command a client sends, by name; a pipeline
// is recorded as "pipeline[name name ...]", since it is one round trip.
type cmdLog struct {
	mu   sync.Mutex
	cmds []string
}

func (h *cmdLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd.Name())
		return next(ctx, cmd)
	}
}

func (h *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		for i, c := range cmds {
			names[i] = c.Name()
		}
		h.add("pipeline[" + strings.Join(names, " ") + "]")
		return next(ctx, cmds)
	}
}

func (h *cmdLog) add(s string) {
	h.mu.Lock()
	h.cmds = append(h.cmds, s)
	h.mu.Unlock()
}

// take returns the commands recorded since the last take.
func (h *cmdLog) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.cmds
	h.cmds = nil
	return out
}

// monitor watches a server with MONITOR, which lists every command it runs: the ones clients
// send, as "[db host:port]", and the ones scripts call, as "[db lua]". Counting the former
// is the server's own count of round trips, which client-side hooks or retries cannot hide.
type monitor struct {
	addr  string
	lines chan string
	n     int
}

func startMonitor(t testing.TB, addr string) *monitor {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = c.Write([]byte("*1\r\n$7\r\nMONITOR\r\n"))
	require.NoError(t, err)
	r := bufio.NewReader(c)
	ok, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "+OK\r\n", ok)
	m := &monitor{addr: addr, lines: make(chan string, 1024)}
	go func() {
		defer close(m.lines)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			m.lines <- strings.TrimSuffix(line, "\r\n")
		}
	}()
	m.sync(t)
	return m
}

// sync sends a unique ECHO and returns the client commands (names) the monitor saw before it.
func (m *monitor) sync(t testing.TB) []string {
	t.Helper()
	m.n++
	token := "monitor-sync-" + strconv.Itoa(m.n)
	c, err := net.DialTimeout("tcp", m.addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("*2\r\n$4\r\nECHO\r\n$" + strconv.Itoa(len(token)) + "\r\n" + token + "\r\n"))
	require.NoError(t, err)
	var cmds []string
	timeout := time.After(5 * time.Second)
	for {
		select {
		case line, ok := <-m.lines:
			require.True(t, ok, "monitor connection closed")
			if strings.Contains(line, `"ECHO" "`+token+`"`) || strings.Contains(line, `"echo" "`+token+`"`) {
				return cmds
			}
			_, rest, ok := strings.Cut(line, "] ")
			if !ok || strings.Contains(line, " lua] ") {
				continue
			}
			name, _, _ := strings.Cut(rest, " ")
			cmds = append(cmds, strings.ToLower(strings.Trim(name, `"`)))
		case <-timeout:
			t.Fatalf("monitor did not see %s", token)
		}
	}
}

// raw is a plain client for inspecting what the ledger wrote.
func raw(t testing.TB, srv *testutil.Redis) *redis.Client {
	return newClient(t, srv.Addr())
}
