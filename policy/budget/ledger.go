// Package budget enforces spend, token and request limits per key and per team: it prices
// usage in integer micro-dollars, plans which counters a request draws on, and reserves
// before the request is forwarded, then settles to the actual usage when the stream ends.
package budget

import (
	"context"
	"errors"
	"time"
)

// Item is one counter a reservation draws on. Every item of one reservation belongs to one
// team, and its Key carries that team's hash tag ("{t:<team>}"), so all keys of a reservation
// live in one Redis Cluster slot.
type Item struct {
	// Key names the counter, including its window (e.g. "tg:{t:platform}:k:abc123:usd:d:20261127").
	Key string
	// Limit is the counter's ceiling in its unit (micro-dollars, tokens or requests).
	Limit int64
	// Amount is what this request reserves against the counter.
	Amount int64
	// Expires is when the counter itself may be forgotten (its window's end plus slack); zero
	// for lifetime counters.
	Expires time.Time
}

// Balance is a counter's state: settled usage and the sum of live reservations.
type Balance struct {
	Used     int64
	Reserved int64
}

// Ledger holds counters and reservations. Implementations: the in-process embedded ledger
// (persisted to a local file) and the Redis ledger (many replicas). Each passes the shared
// conformance suite in budgettest.
type Ledger interface {
	// Reserve atomically checks every item (Used + Reserved + Amount <= Limit, after dropping
	// expired reservations) and, only if all fit, holds each Amount under id until Settle or
	// until hold passes. It returns the index of the first item that does not fit, or -1 when
	// the reservation was made. A Ledger that cannot answer returns an error wrapping
	// ErrUnavailable, and the caller fails closed.
	Reserve(ctx context.Context, id string, items []Item, hold time.Duration) (denied int, err error)
	// Settle releases reservation id (if it is still held) and adds actual[i] to the Used of
	// items[i] (the same items passed to Reserve). Settling twice is a no-op the second time.
	Settle(ctx context.Context, id string, items []Item, actual []int64) error
	// Balances reports the state of counters by key (zero for unknown keys).
	Balances(ctx context.Context, keys []string) ([]Balance, error)
}

// Extender is a Ledger whose reservations can outlive their first hold: the owner of a
// request that is still running (a long stream) pushes the deadline back before it passes,
// while a reservation whose owner died still expires one hold after its last extension.
// Every Ledger in this module implements it.
type Extender interface {
	// Extend moves reservation id's deadline to now + hold unless it is already later, and
	// keeps the counters of items (the items passed to Reserve) alive at least that long.
	// held reports whether id still holds anything; when it does not (never reserved,
	// settled, expired, or only zero amounts) nothing changes. An expired reservation is
	// never revived: that would hold budget without checking the limits again.
	Extend(ctx context.Context, id string, items []Item, hold time.Duration) (held bool, err error)
}

// ErrUnavailable means the ledger could not decide (store down, timeout).
var ErrUnavailable = errors.New("budget ledger unavailable")
