package budget

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// MemoryLedger is a Ledger held in process memory: exact, and cheap enough for the request
// path (BenchmarkReserveSettle: a Reserve and Settle of five items, about 1.1 µs and one
// allocation). It serves a single Tollgate replica and forgets everything on exit;
// EmbeddedLedger adds persistence to a local file. The zero value is not usable: build one
// with NewMemoryLedger.
//
// One mutex guards everything. Every call first tidies up under it: reservations whose hold
// has passed are released (in deadline order, from a heap, so the cost is per expired
// reservation, not per call), settled-id tombstones past their retention are dropped, and
// about once a minute counters past Item.Expires are forgotten (from per-expiry buckets, so
// the cost is per expired counter). Counters past Item.Expires also read as zero before
// that sweep reaches them.
//
// Settle is idempotent per reservation id for SettledTTL after the first settle (or until
// SettledCap newer ids have been settled, whichever comes first): the id is remembered,
// compactly, and later settles of it are no-ops. See settledSet for why that bound is safe.
type MemoryLedger struct {
	now        func() time.Time
	settledTTL time.Duration

	mu        sync.Mutex
	closed    bool
	gen       uint64              // bumped on every change; EmbeddedLedger flushes when it moves
	counters  map[string]*counter // by key
	holds     map[string]*hold    // live reservations by id
	deadlines holdHeap            // the same holds, earliest deadline first
	settled   settledSet
	expiring  map[int64][]*counter // counters by their expiry (Unix ns); may hold stale entries
	nextSweep int64
	free      []*hold // released holds, reused to keep Reserve allocation-free
}

// counter is one key's state. A hold points at the counter it reserved on, so a counter
// forgotten and recreated under the same key never has an old hold released against it.
type counter struct {
	key      string
	used     int64
	reserved int64
	expires  int64 // Unix ns; 0 = never
}

// hold is a live reservation.
type hold struct {
	id       string
	deadline int64 // Unix ns
	index    int   // position in the deadline heap
	parts    []part
}

type part struct {
	c      *counter
	amount int64
}

// DefaultSettledTTL is how long a ledger remembers a settled reservation id, making repeat
// settles of it no-ops. Duplicate settles come from retries seconds apart.
const DefaultSettledTTL = 10 * time.Minute

// sweepEvery is how often expired counters are swept out of memory.
const sweepEvery = time.Minute

// maxFree bounds the pool of released holds.
const maxFree = 1024

// Option configures a MemoryLedger or an EmbeddedLedger. WithFlushInterval and
// WithFlushErrors only concern EmbeddedLedger; NewMemoryLedger ignores them.
type Option func(*options)

type options struct {
	now           func() time.Time
	settledTTL    time.Duration
	settledCap    int
	flushInterval time.Duration
	flushErr      func(error)
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now, settledTTL: DefaultSettledTTL, settledCap: DefaultSettledCap, flushInterval: DefaultFlushInterval, flushErr: func(error) {}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock sets the clock that decides hold deadlines and expiry (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithSettledTTL sets how long settled ids are remembered (default DefaultSettledTTL).
func WithSettledTTL(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.settledTTL = d
		}
	}
}

// WithSettledCap bounds how many settled ids are remembered (default DefaultSettledCap).
func WithSettledCap(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.settledCap = n
		}
	}
}

// NewMemoryLedger returns an empty in-memory ledger. WithClock, WithSettledTTL and
// WithSettledCap apply; other options are ignored.
func NewMemoryLedger(opts ...Option) *MemoryLedger {
	return newMemory(buildOptions(opts))
}

func newMemory(o options) *MemoryLedger {
	return &MemoryLedger{
		now:        o.now,
		settledTTL: o.settledTTL,
		counters:   make(map[string]*counter),
		holds:      make(map[string]*hold),
		settled:    newSettledSet(o.settledCap),
		expiring:   make(map[int64][]*counter),
	}
}

var _ Ledger = (*MemoryLedger)(nil)

// Reserve implements Ledger. Reserving an id that is already held returns -1 and holds
// nothing more (a retried Reserve is harmless); reserving an id settled within SettledTTL
// is an ErrInvalidArgument. Items naming the same key twice are checked against their sum.
func (m *MemoryLedger) Reserve(ctx context.Context, id string, items []Item, hold time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := checkReserve(id, items, hold); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, errClosed
	}
	now := m.now().UnixNano()
	m.tidy(now)
	if _, ok := m.holds[id]; ok {
		return -1, nil
	}
	if m.settled.has(id) {
		return 0, fmt.Errorf("%w: reservation %q was already settled", ErrInvalidArgument, id)
	}
	if len(items) == 0 {
		return -1, nil
	}
	for i, it := range items {
		pending := it.Amount
		for _, prev := range items[:i] {
			if prev.Key == it.Key {
				pending = satAdd(pending, prev.Amount)
			}
		}
		var used, reserved int64
		if c := m.lookup(it.Key, now); c != nil {
			used, reserved = c.used, c.reserved
		}
		if satAdd(satAdd(used, reserved), pending) > it.Limit {
			return i, nil
		}
	}
	deadline := satAdd(now, int64(hold))
	h := m.newHold(id, deadline)
	for _, it := range items {
		// A counter outlives the holds on it, even if the caller's Expires is earlier.
		exp := expiresNs(it.Expires)
		if exp != 0 {
			exp = max(exp, deadline)
		}
		c := m.counter(it.Key, exp, now)
		c.reserved = satAdd(c.reserved, it.Amount)
		h.parts = append(h.parts, part{c: c, amount: it.Amount})
	}
	m.holds[id] = h
	m.deadlines.push(h)
	m.gen++
	return -1, nil
}

// Settle implements Ledger. A settle of an id that is not held (never reserved, or its hold
// expired) still adds the actuals; only a settle of an id settled within SettledTTL is a
// no-op.
func (m *MemoryLedger) Settle(ctx context.Context, id string, items []Item, actual []int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := checkSettle(id, items, actual); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	now := m.now().UnixNano()
	m.tidy(now)
	if m.settled.has(id) {
		return nil
	}
	if h, ok := m.holds[id]; ok {
		m.release(h)
	}
	for i, it := range items {
		c := m.counter(it.Key, expiresNs(it.Expires), now)
		c.used = satAdd(c.used, actual[i])
	}
	m.remember(id, now)
	m.gen++
	return nil
}

// Balances implements Ledger. Expired counters and released holds read as zero.
func (m *MemoryLedger) Balances(ctx context.Context, keys []string) ([]Balance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	out := make([]Balance, len(keys))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	now := m.now().UnixNano()
	m.tidy(now)
	for i, k := range keys {
		if c := m.lookup(k, now); c != nil {
			out[i] = Balance{Used: c.used, Reserved: c.reserved}
		}
	}
	return out, nil
}

// Stats counts what a ledger holds in memory.
type Stats struct {
	Counters int // counters not yet forgotten (some may have expired since the last sweep)
	Holds    int // live reservations
	Settled  int // remembered settled ids
}

// Stats reports the ledger's size, for metrics and tests.
func (m *MemoryLedger) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{Counters: len(m.counters), Holds: len(m.holds), Settled: m.settled.len()}
}

// errClosed is what every call returns after close.
var errClosed = fmt.Errorf("%w: %w", ErrUnavailable, ErrClosed)

// close makes every later call fail with errClosed; it reports whether it was open.
func (m *MemoryLedger) close() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	was := !m.closed
	m.closed = true
	return was
}

func checkReserve(id string, items []Item, hold time.Duration) error {
	if id == "" {
		return fmt.Errorf("%w: empty reservation id", ErrInvalidArgument)
	}
	if hold <= 0 {
		return fmt.Errorf("%w: hold must be positive", ErrInvalidArgument)
	}
	for i, it := range items {
		if it.Key == "" {
			return fmt.Errorf("%w: items[%d] has an empty key", ErrInvalidArgument, i)
		}
		if it.Amount < 0 {
			return fmt.Errorf("%w: items[%d] has a negative amount", ErrInvalidArgument, i)
		}
	}
	return nil
}

func checkSettle(id string, items []Item, actual []int64) error {
	if id == "" {
		return fmt.Errorf("%w: empty reservation id", ErrInvalidArgument)
	}
	if len(actual) != len(items) {
		return fmt.Errorf("%w: %d actuals for %d items", ErrInvalidArgument, len(actual), len(items))
	}
	for i, it := range items {
		if it.Key == "" {
			return fmt.Errorf("%w: items[%d] has an empty key", ErrInvalidArgument, i)
		}
		if actual[i] < 0 {
			return fmt.Errorf("%w: actual[%d] is negative", ErrInvalidArgument, i)
		}
	}
	return nil
}

// tidy releases expired holds, forgets old tombstones and, when due, sweeps expired
// counters. m.mu is held.
func (m *MemoryLedger) tidy(now int64) {
	for len(m.deadlines) > 0 && m.deadlines[0].deadline <= now {
		m.release(m.deadlines[0])
		m.gen++
	}
	m.settled.expire(now)
	if now >= m.nextSweep {
		m.sweep(now)
		m.nextSweep = now + int64(sweepEvery)
	}
}

// sweep forgets counters whose expiry has passed. m.mu is held.
func (m *MemoryLedger) sweep(now int64) {
	for at, cs := range m.expiring {
		if at > now {
			continue
		}
		for _, c := range cs {
			if c.expires != 0 && c.expires <= now && m.counters[c.key] == c {
				delete(m.counters, c.key)
				m.gen++
			}
		}
		delete(m.expiring, at)
	}
}

// lookup returns key's counter, or nil if it is unknown or expired. m.mu is held.
func (m *MemoryLedger) lookup(key string, now int64) *counter {
	c := m.counters[key]
	if c != nil && c.expires != 0 && c.expires <= now {
		delete(m.counters, key)
		return nil
	}
	return c
}

// counter returns key's live counter, creating it with expiry exp (Unix ns, 0 = never) if
// needed, and extends its expiry to exp. m.mu is held.
func (m *MemoryLedger) counter(key string, exp, now int64) *counter {
	c := m.lookup(key, now)
	if c == nil {
		c = &counter{key: key, expires: exp}
		m.counters[key] = c
		if exp != 0 {
			m.expiring[exp] = append(m.expiring[exp], c)
		}
		return c
	}
	if c.expires != 0 && (exp == 0 || exp > c.expires) {
		c.expires = exp
		if exp != 0 {
			m.expiring[exp] = append(m.expiring[exp], c)
		}
	}
	return c
}

// newHold returns an empty hold, reusing a released one when possible. m.mu is held.
func (m *MemoryLedger) newHold(id string, deadline int64) *hold {
	var h *hold
	if n := len(m.free); n > 0 {
		h, m.free = m.free[n-1], m.free[:n-1]
	} else {
		h = &hold{}
	}
	h.id, h.deadline = id, deadline
	return h
}

// release gives back what h reserved and forgets it. m.mu is held.
func (m *MemoryLedger) release(h *hold) {
	for _, p := range h.parts {
		p.c.reserved -= p.amount
	}
	m.deadlines.remove(h.index)
	delete(m.holds, h.id)
	clear(h.parts)
	h.parts, h.id = h.parts[:0], ""
	if len(m.free) < maxFree {
		m.free = append(m.free, h)
	}
}

// remember records id as settled at now. m.mu is held.
func (m *MemoryLedger) remember(id string, now int64) {
	m.settled.add(id, satAdd(now, int64(m.settledTTL)))
}

// expiresNs converts an Item's Expires to Unix ns, with 0 for the zero time (never).
func expiresNs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixNano(), 1)
}

// satAdd adds non-negative b to a, saturating at math.MaxInt64 instead of wrapping.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
