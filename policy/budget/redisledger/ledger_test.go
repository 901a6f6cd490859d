package redisledger_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/budget/redisledger"
)

// noIOHook fails the test if the client sends anything: validation must happen before I/O.
type noIOHook struct{ n atomic.Int64 }

func (h *noIOHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.n.Add(1)
		return next(ctx, network, addr)
	}
}

func (h *noIOHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *noIOHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func newClient(t *testing.T, addr string) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{
		Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: time.Second, ContextTimeoutEnabled: true,
	})
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

func TestInvalidArgumentsNeverReachRedis(t *testing.T) {
	client := newClient(t, closedAddr(t))
	hook := &noIOHook{}
	client.AddHook(hook)
	l := newLedger(t, client)
	ctx := context.Background()
	item := func(amount int64) []budget.Item {
		return []budget.Item{{Key: "tg:{t:a}:c0", Limit: 100, Amount: amount}}
	}
	long := strings.Repeat("x", redisledger.MaxIDLen+1)

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"reserve negative amount", func() error { _, err := l.Reserve(ctx, "id", item(-1), time.Minute); return err }},
		{"reserve amount above MaxAmount", func() error {
			_, err := l.Reserve(ctx, "id", item(redisledger.MaxAmount+1), time.Minute)
			return err
		}},
		{"reserve zero hold", func() error { _, err := l.Reserve(ctx, "id", item(1), 0); return err }},
		{"reserve negative hold", func() error { _, err := l.Reserve(ctx, "id", item(1), -time.Second); return err }},
		{"reserve empty id", func() error { _, err := l.Reserve(ctx, "", item(1), time.Minute); return err }},
		{"reserve long id", func() error { _, err := l.Reserve(ctx, long, item(1), time.Minute); return err }},
		{"reserve empty key", func() error {
			_, err := l.Reserve(ctx, "id", []budget.Item{{Limit: 1, Amount: 1}}, time.Minute)
			return err
		}},
		{"extend empty id", func() error { _, err := l.Extend(ctx, "", item(1), time.Minute); return err }},
		{"extend long id", func() error { _, err := l.Extend(ctx, long, item(1), time.Minute); return err }},
		{"extend zero hold", func() error { _, err := l.Extend(ctx, "id", item(1), 0); return err }},
		{"extend empty key", func() error {
			_, err := l.Extend(ctx, "id", []budget.Item{{Limit: 1, Amount: 1}}, time.Minute)
			return err
		}},
		{"settle empty id", func() error { return l.Settle(ctx, "", item(1), []int64{1}) }},
		{"settle short actuals", func() error { return l.Settle(ctx, "id", item(1), nil) }},
		{"settle long actuals", func() error { return l.Settle(ctx, "id", item(1), []int64{1, 2}) }},
		{"settle negative actual", func() error { return l.Settle(ctx, "id", item(1), []int64{-1}) }},
		{"settle actual above MaxAmount", func() error {
			return l.Settle(ctx, "id", item(1), []int64{redisledger.MaxAmount + 1})
		}},
		{"balances empty key", func() error { _, err := l.Balances(ctx, []string{"a", ""}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.ErrorIs(t, err, budget.ErrInvalidArgument)
			require.NotErrorIs(t, err, budget.ErrUnavailable)
			require.NotContains(t, err.Error(), long, "ids are not echoed")
		})
	}
	require.Zero(t, hook.n.Load(), "no command or dial for a refused call")
}

func TestEmptyCallsNeedNoRoundTrip(t *testing.T) {
	client := newClient(t, closedAddr(t))
	hook := &noIOHook{}
	client.AddHook(hook)
	l := newLedger(t, client)
	ctx := context.Background()

	denied, err := l.Reserve(ctx, "id", nil, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)
	require.NoError(t, l.Settle(ctx, "id", nil, nil))
	b, err := l.Balances(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, b)
	require.Zero(t, hook.n.Load())
}

func TestUnreachableIsUnavailable(t *testing.T) {
	l := newLedger(t, newClient(t, closedAddr(t)))
	ctx := context.Background()
	items := []budget.Item{{Key: "tg:{t:a}:k:secretish:c0", Limit: 100, Amount: 1}}

	_, err := l.Reserve(ctx, "req-1", items, time.Minute)
	require.ErrorIs(t, err, budget.ErrUnavailable)
	require.NotContains(t, err.Error(), "req-1")
	require.NotContains(t, err.Error(), "secretish")

	err = l.Settle(ctx, "req-1", items, []int64{1})
	require.ErrorIs(t, err, budget.ErrUnavailable)

	_, err = l.Balances(ctx, []string{items[0].Key})
	require.ErrorIs(t, err, budget.ErrUnavailable)

	require.ErrorIs(t, l.LoadScripts(ctx), budget.ErrUnavailable)
}

func TestCanceledContextIsUnavailable(t *testing.T) {
	srv := startFake(t, func(string) string { return ":-1\r\n" })
	l := newLedger(t, newClient(t, srv))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Reserve(ctx, "id", []budget.Item{{Key: "k", Limit: 1, Amount: 1}}, time.Minute)
	require.ErrorIs(t, err, budget.ErrUnavailable)
	require.ErrorIs(t, err, context.Canceled)
}

// TestUnexpectedRepliesAreUnavailable drives the ledger against a fake server that answers
// every script call with a fixed reply.
func TestUnexpectedRepliesAreUnavailable(t *testing.T) {
	items := []budget.Item{{Key: "tg:{t:a}:c0", Limit: 100, Amount: 1}, {Key: "tg:{t:a}:c1", Limit: 100, Amount: 1}}
	for _, tc := range []struct {
		name, reply string
		ok          bool
		denied      int
	}{
		{"reserved", ":-1\r\n", true, -1},
		{"denied second", ":1\r\n", true, 1},
		{"index out of range", ":2\r\n", false, 0},
		{"negative", ":-3\r\n", false, 0},
		{"string", "$2\r\n-1\r\n", true, -1}, // go-redis parses a numeric bulk string as Int64
		{"not a number", "$3\r\nabc\r\n", false, 0},
		{"nil", "$-1\r\n", false, 0},
		{"array", "*1\r\n:1\r\n", false, 0},
		{"error", "-ERR boom\r\n", false, 0},
		{"noscript twice", "-NOSCRIPT No matching script\r\n", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, func(string) string { return tc.reply })
			l := newLedger(t, newClient(t, srv))
			denied, err := l.Reserve(context.Background(), "id", items, time.Minute)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, tc.denied, denied)
				return
			}
			require.ErrorIs(t, err, budget.ErrUnavailable)
		})
	}

	t.Run("settle", func(t *testing.T) {
		for reply, ok := range map[string]bool{":1\r\n": true, ":0\r\n": true, ":2\r\n": false, "$-1\r\n": false} {
			srv := startFake(t, func(string) string { return reply })
			err := newLedger(t, newClient(t, srv)).Settle(context.Background(), "id", items, []int64{1, 1})
			if ok {
				require.NoError(t, err, reply)
			} else {
				require.ErrorIs(t, err, budget.ErrUnavailable, reply)
			}
		}
	})

	t.Run("balances", func(t *testing.T) {
		for reply, ok := range map[string]bool{
			"*2\r\n$1\r\n5\r\n$1\r\n7\r\n": true,
			"*1\r\n$1\r\n5\r\n":            false,
			"*2\r\n$1\r\n5\r\n$1\r\nx\r\n": false,
			"*2\r\n:5\r\n:7\r\n":           false, // the script returns strings, never integers
			":1\r\n":                       false,
		} {
			srv := startFake(t, func(string) string { return reply })
			b, err := newLedger(t, newClient(t, srv)).Balances(context.Background(), []string{"k"})
			if ok {
				require.NoError(t, err, reply)
				require.Equal(t, []budget.Balance{{Used: 5, Reserved: 7}}, b)
			} else {
				require.ErrorIs(t, err, budget.ErrUnavailable, reply)
			}
		}
	})
}

// TestNoScriptFallsBackToEval checks the fallback against a fake that lacks the script
// cache: it answers EVALSHA with NOSCRIPT and EVAL with a result.
func TestNoScriptFallsBackToEval(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := startFake(t, func(name string) string {
		mu.Lock()
		seen = append(seen, name)
		mu.Unlock()
		if name == "evalsha" {
			return "-NOSCRIPT No matching script. Please use EVAL.\r\n"
		}
		return ":-1\r\n"
	})
	l := newLedger(t, newClient(t, srv))
	denied, err := l.Reserve(context.Background(), "id", []budget.Item{{Key: "k", Limit: 1, Amount: 1}}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, -1, denied)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"evalsha", "eval"}, seen)
}

func TestNewRejectsBracesInPrefix(t *testing.T) {
	client := newClient(t, closedAddr(t))
	hook := &noIOHook{}
	client.AddHook(hook)
	for _, tc := range []struct {
		name    string
		prefix  string
		wantErr error
	}{
		{name: "plain prefix", prefix: "test:1:"},
		{name: "empty prefix", prefix: ""},
		{name: "whole hash tag", prefix: "a{b}", wantErr: redisledger.ErrInvalidKeyPrefix},
		{name: "opening brace", prefix: "tg{", wantErr: redisledger.ErrInvalidKeyPrefix},
		{name: "closing brace", prefix: "}tg:", wantErr: redisledger.ErrInvalidKeyPrefix},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := redisledger.New(client, redisledger.WithKeyPrefix(tc.prefix))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Nil(t, l)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, l)
		})
	}
	require.Zero(t, hook.n.Load(), "New must not contact redis")
}

func TestClusterRequiresOneHashTag(t *testing.T) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{closedAddr(t)}, MaxRedirects: -1})
	t.Cleanup(func() { cc.Close() })
	hook := &noIOHook{}
	cc.AddHook(hook)
	l := newLedger(t, cc)
	ctx := context.Background()
	for _, items := range [][]budget.Item{
		{{Key: "tg:{t:a}:c0", Limit: 1}, {Key: "tg:{t:b}:c1", Limit: 1}},
		{{Key: "untagged", Limit: 1}},
		{{Key: "tg:{t:a}:c0", Limit: 1}, {Key: "untagged", Limit: 1}},
	} {
		_, err := l.Reserve(ctx, "id", items, time.Minute)
		require.ErrorIs(t, err, budget.ErrInvalidArgument)
		require.ErrorIs(t, l.Settle(ctx, "id", items, make([]int64, len(items))), budget.ErrInvalidArgument)
	}
	require.Zero(t, hook.n.Load())
}

// startFake serves RESP on a loopback port: HELLO is refused (so the client speaks RESP2),
// CLIENT and PING are acknowledged, and every other command gets reply(name).
func startFake(t *testing.T, reply func(name string) string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					var out string
					switch name := strings.ToLower(args[0]); name {
					case "hello":
						out = "-ERR unknown command 'HELLO'\r\n"
					case "client":
						out = "+OK\r\n"
					case "ping":
						out = "+PONG\r\n"
					default:
						out = reply(name)
					}
					if _, err := io.WriteString(c, out); err != nil {
						return
					}
				}
			})
		}
	})
	return l.Addr().String()
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, errors.New("bad array length")
	}
	args := make([]string, n)
	for i := range args {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil || size < 0 {
			return nil, errors.New("bad bulk length")
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}
