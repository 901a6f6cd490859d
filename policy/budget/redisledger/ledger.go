// Package redisledger is the budget.Ledger shared by many Tollgate replicas through one Redis
// (a single node, or Redis Cluster).
//
// Reserve and Settle are each one Lua script, run with EVALSHA: one round trip per call, and
// atomic, because Redis runs a script to completion before any other command. The script's
// source goes on the wire (EVAL) only when a server answers NOSCRIPT: the first call after
// that server started, restarted, failed over or ran SCRIPT FLUSH. Such a call costs two
// round trips (EVALSHA, then EVAL, which also caches the script); every later call is one
// EVALSHA again. LoadScripts warms the cache at startup.
//
// Data layout and the scripts are described in keys.go and scripts.go. Time comes from the
// Redis server (TIME), so replicas with skewed clocks agree on when holds expire.
//
// Any failure to get an answer (network error, timeout, an error reply, a reply of an
// unexpected shape) is returned wrapped in budget.ErrUnavailable, so callers fail closed.
// Bad arguments are rejected before any round trip with budget.ErrInvalidArgument.
//
// Redis must be 7.0 or newer (PEXPIRETIME, EVALSHA_RO, effects replication of scripts), with
// persistence (AOF) if spent budget must survive a restart.
package redisledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

// DefaultTimeout bounds each Reserve, Settle or Balances call (one round trip) unless
// WithTimeout says otherwise.
const DefaultTimeout = 250 * time.Millisecond

// DefaultSettledTTL is how long the marker of a settled reservation is kept, so a repeated
// Settle (or a Reserve of the same id) is recognised.
const DefaultSettledTTL = 24 * time.Hour

// MaxAmount is the largest Amount or actual a call may carry: 2^53-1, the largest integer
// that the scripts' Lua numbers (doubles) hold exactly. In micro-dollars that is about 9
// billion USD. Limits above it are treated as MaxAmount.
const MaxAmount = 1<<53 - 1

// MaxIDLen bounds a reservation id, which becomes part of a key and of hash fields.
const MaxIDLen = 256

// Ledger is a budget.Ledger kept in Redis. It is safe for concurrent use; many Ledgers (in
// many processes) may share one Redis.
type Ledger struct {
	client     redis.UniversalClient
	timeout    time.Duration
	prefix     string
	settledTTL time.Duration
	// sameTag requires every key of a call to carry the same hash tag: set for Redis Cluster,
	// where anything else would be refused with CROSSSLOT, which looks like an outage.
	sameTag bool
	// now replaces the server's clock in the scripts when set (WithClock); nil in production.
	now func() time.Time
}

var (
	_ budget.Ledger   = (*Ledger)(nil)
	_ budget.Extender = (*Ledger)(nil)
)

// Option configures a Ledger.
type Option func(*Ledger)

// WithTimeout bounds every call by d (DefaultTimeout when unset; d <= 0 leaves only the
// caller's context). The client's own timeouts still apply: give it ReadTimeout and
// WriteTimeout no longer than d, or ContextTimeoutEnabled, so a hung server cannot hold a
// call past d.
func WithTimeout(d time.Duration) Option { return func(l *Ledger) { l.timeout = d } }

// WithKeyPrefix prepends p to every key the ledger touches (e.g. to share a database between
// environments or tests). p must not contain "{" or "}", which would change the keys' hash
// tags; New returns ErrInvalidKeyPrefix if it does.
func WithKeyPrefix(p string) Option { return func(l *Ledger) { l.prefix = p } }

// WithSettledTTL sets how long a settled reservation is remembered (DefaultSettledTTL when
// unset, or under a second). It must exceed the longest time a Settle may be repeated after
// the first, and a Reserve after its Settle.
func WithSettledTTL(d time.Duration) Option { return func(l *Ledger) { l.settledTTL = d } }

// WithClock makes the scripts use now instead of the Redis server's clock (TIME) to decide
// hold deadlines and expiry. It is for tests, which then advance a fake clock instead of
// sleeping; production leaves it unset, so that replicas with skewed clocks agree. Redis key
// TTLs still run on the server's clock, so a test clock should start at the real time and
// only move forward.
func WithClock(now func() time.Time) Option { return func(l *Ledger) { l.now = now } }

// New returns a Ledger that uses client, which may be a *redis.Client (single node, or a
// failover client) or a *redis.ClusterClient. It does not contact Redis.
//
// New returns ErrInvalidKeyPrefix if WithKeyPrefix was given a brace: a static configuration
// error that would otherwise spread one reservation's keys over several cluster slots.
func New(client redis.UniversalClient, opts ...Option) (*Ledger, error) {
	l := &Ledger{client: client, timeout: DefaultTimeout, settledTTL: DefaultSettledTTL}
	for _, o := range opts {
		o(l)
	}
	if strings.ContainsAny(l.prefix, "{}") {
		return nil, fmt.Errorf("redisledger: %w (got %q)", ErrInvalidKeyPrefix, l.prefix)
	}
	if l.settledTTL < time.Second {
		l.settledTTL = DefaultSettledTTL
	}
	_, l.sameTag = client.(*redis.ClusterClient)
	return l, nil
}

// LoadScripts loads the scripts into the script cache of every server (every primary of a
// cluster), so the first Reserve and Settle take one round trip too. Optional: without it
// the first call on each server costs an extra round trip. It doubles as a readiness probe.
func (l *Ledger) LoadScripts(ctx context.Context) error {
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	for _, s := range []*redis.Script{reserveScript, settleScript, extendScript, balanceScript} {
		if err := s.Load(ctx, l.client).Err(); err != nil {
			return unavailable("load scripts", err)
		}
	}
	return nil
}

// Reserve implements budget.Ledger in one EVALSHA. A Reserve that fails with ErrUnavailable
// may still have been applied (the reply was lost): its holds then last until hold passes, or
// until Settle releases them.
func (l *Ledger) Reserve(ctx context.Context, id string, items []budget.Item, hold time.Duration) (int, error) {
	if err := l.check(id, items); err != nil {
		return 0, err
	}
	if hold <= 0 {
		return 0, invalid("hold must be positive")
	}
	for i := range items {
		if err := checkAmount(items[i].Amount); err != nil {
			return 0, fmt.Errorf("%w: item %d: %s", budget.ErrInvalidArgument, i, err)
		}
	}
	if len(items) == 0 {
		return -1, nil
	}
	// Sub-millisecond holds round up, so a positive hold never expires on arrival.
	holdMs := int64((hold + time.Millisecond - 1) / time.Millisecond)
	keys := l.keys(id, items)
	args := make([]any, 0, 3+3*len(items))
	args = append(args, id, strconv.FormatInt(holdMs, 10))
	for i := range items {
		args = append(args, strconv.FormatInt(clampLimit(items[i].Limit), 10),
			strconv.FormatInt(items[i].Amount, 10), expiresMs(items[i].Expires))
	}
	args = append(args, l.clock())
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	res, err := reserveScript.Run(ctx, l.client, keys, args...).Int64()
	if err != nil {
		return 0, unavailable("reserve", err)
	}
	switch {
	case res == -2:
		return 0, invalid("reservation was already settled")
	case res < -1 || res >= int64(len(items)):
		return 0, unavailable("reserve", fmt.Errorf("unexpected reply %d", res))
	}
	return int(res), nil
}

// Settle implements budget.Ledger in one EVALSHA. It is idempotent for DefaultSettledTTL
// (WithSettledTTL): a marker written by the first Settle turns later ones into no-ops.
func (l *Ledger) Settle(ctx context.Context, id string, items []budget.Item, actual []int64) error {
	if err := l.check(id, items); err != nil {
		return err
	}
	if len(actual) != len(items) {
		return invalid("actual has %d values for %d items", len(actual), len(items))
	}
	for i, a := range actual {
		if err := checkAmount(a); err != nil {
			return fmt.Errorf("%w: actual %d: %s", budget.ErrInvalidArgument, i, err)
		}
	}
	if len(items) == 0 {
		return nil
	}
	keys := l.keys(id, items)
	args := make([]any, 0, 3+2*len(items))
	args = append(args, id, strconv.FormatInt(l.settledTTL.Milliseconds(), 10))
	for i := range items {
		args = append(args, strconv.FormatInt(actual[i], 10), expiresMs(items[i].Expires))
	}
	args = append(args, l.clock())
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	res, err := settleScript.Run(ctx, l.client, keys, args...).Int64()
	if err != nil {
		return unavailable("settle", err)
	}
	if res != 0 && res != 1 {
		return unavailable("settle", fmt.Errorf("unexpected reply %d", res))
	}
	return nil
}

// Extend implements budget.Extender in one EVALSHA. Deadlines are on the server's clock, like
// Reserve's.
func (l *Ledger) Extend(ctx context.Context, id string, items []budget.Item, hold time.Duration) (bool, error) {
	if err := l.check(id, items); err != nil {
		return false, err
	}
	if hold <= 0 {
		return false, invalid("hold must be positive")
	}
	if len(items) == 0 {
		return false, nil
	}
	holdMs := int64((hold + time.Millisecond - 1) / time.Millisecond)
	keys := l.keys(id, items)
	args := make([]any, 0, 3+len(items))
	args = append(args, id, strconv.FormatInt(holdMs, 10))
	for i := range items {
		args = append(args, expiresMs(items[i].Expires))
	}
	args = append(args, l.clock())
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	res, err := extendScript.Run(ctx, l.client, keys, args...).Int64()
	if err != nil {
		return false, unavailable("extend", err)
	}
	if res != 0 && res != 1 {
		return false, unavailable("extend", fmt.Errorf("unexpected reply %d", res))
	}
	return res == 1, nil
}

// Balances implements budget.Ledger with one pipeline of read-only scripts (EVALSHA_RO),
// one per key, so keys may span cluster slots. Reserved leaves out holds whose deadline has
// passed even if no write has dropped them yet. If a server does not have the script
// cached, the keys it refused are read again with EVAL_RO (a second round trip).
func (l *Ledger) Balances(ctx context.Context, keys []string) ([]budget.Balance, error) {
	for i, k := range keys {
		if k == "" {
			return nil, invalid("key %d is empty", i)
		}
	}
	out := make([]budget.Balance, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	cmds := make([]*redis.Cmd, len(keys))
	clock := l.clock()
	run := func(idx []int, eval bool) error {
		_, err := l.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range idx {
				ks := []string{l.prefix + keys[i], l.prefix + keys[i] + holdSetSuffix}
				if eval {
					cmds[i] = balanceScript.EvalRO(ctx, p, ks, clock)
				} else {
					cmds[i] = balanceScript.EvalShaRO(ctx, p, ks, clock)
				}
			}
			return nil
		})
		return err
	}
	all := make([]int, len(keys))
	for i := range all {
		all[i] = i
	}
	if err := run(all, false); err != nil {
		var missing []int
		for i, c := range cmds {
			if isNoScript(c.Err()) {
				missing = append(missing, i)
			}
		}
		if len(missing) == 0 {
			return nil, unavailable("balances", err)
		}
		if err := run(missing, true); err != nil {
			return nil, unavailable("balances", err)
		}
	}
	for i, c := range cmds {
		b, err := parseBalance(c)
		if err != nil {
			return nil, unavailable("balances", err)
		}
		out[i] = b
	}
	return out, nil
}

// check validates what Reserve and Settle share: the id and the items' keys.
func (l *Ledger) check(id string, items []budget.Item) error {
	if id == "" {
		return invalid("empty reservation id")
	}
	if len(id) > MaxIDLen {
		return invalid("reservation id longer than %d bytes", MaxIDLen)
	}
	for i := range items {
		if items[i].Key == "" {
			return invalid("item %d: empty key", i)
		}
	}
	if l.sameTag && len(items) > 0 {
		tag := tagOf(items[0].Key)
		for i := range items {
			if t := tagOf(items[i].Key); t == "" || t != tag {
				return invalid("item %d: keys of one call must share one {hash tag} on Redis Cluster", i)
			}
		}
	}
	return nil
}

// keys lists the KEYS of a Reserve or Settle: counter and hold set per item, then the
// settled marker.
func (l *Ledger) keys(id string, items []budget.Item) []string {
	keys := make([]string, 0, 2*len(items)+1)
	for i := range items {
		k := l.prefix + items[i].Key
		keys = append(keys, k, k+holdSetSuffix)
	}
	return append(keys, settledKey(keys[0], id))
}

// clock is the scripts' clock argument: "0" for the server's clock, else WithClock's time in
// unix ms.
func (l *Ledger) clock() string {
	if l.now == nil {
		return "0"
	}
	return strconv.FormatInt(max(l.now().UnixMilli(), 1), 10)
}

func (l *Ledger) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.timeout)
}

func checkAmount(a int64) error {
	switch {
	case a < 0:
		return errors.New("negative amount")
	case a > MaxAmount:
		return errors.New("amount above MaxAmount")
	}
	return nil
}

// clampLimit maps a limit into the range the scripts compare exactly, without changing any
// decision below MaxAmount: a negative limit admits nothing, like -1.
func clampLimit(v int64) int64 {
	return min(max(v, -1), MaxAmount)
}

// expiresMs renders an Item.Expires for the scripts: unix ms, "0" for never.
func expiresMs(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(max(t.UnixMilli(), 1), 10)
}

// parseBalance reads a balanceLua reply: two decimal strings.
func parseBalance(c *redis.Cmd) (budget.Balance, error) {
	vals, err := c.Slice()
	if err != nil {
		return budget.Balance{}, err
	}
	if len(vals) != 2 {
		return budget.Balance{}, fmt.Errorf("unexpected reply of %d values", len(vals))
	}
	var n [2]int64
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			return budget.Balance{}, fmt.Errorf("unexpected reply type %T", v)
		}
		if n[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return budget.Balance{}, errors.New("unexpected reply: not an integer")
		}
	}
	return budget.Balance{Used: n[0], Reserved: n[1]}, nil
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// unavailable wraps err for a caller that must fail closed. Redis and network errors name
// neither keys nor ids, so err is kept for errors.Is (context.DeadlineExceeded and the like).
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: redis %s: %w", budget.ErrUnavailable, op, err)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{budget.ErrInvalidArgument}, args...)...)
}
