package budget

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Timer is a scheduled call that can be cancelled; *time.Timer is one.
type Timer interface {
	Stop() bool
}

// AfterFunc schedules f to run in its own goroutine after d, like time.AfterFunc.
type AfterFunc func(d time.Duration, f func()) Timer

func timeAfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Retrying defaults.
const (
	// DefaultRetryQueue bounds the settlements waiting for a retry.
	DefaultRetryQueue = 10000
	// DefaultRetryMinWait and DefaultRetryMaxWait bound the backoff between retries.
	DefaultRetryMinWait = 200 * time.Millisecond
	DefaultRetryMaxWait = 15 * time.Second
	// DefaultRetryTimeout bounds one retry (the ledger's own timeout still applies).
	DefaultRetryTimeout = 5 * time.Second
)

// Retrying is a Ledger that does not lose bookkeeping to a short outage of the ledger it
// wraps (a Redis stall, restart or failover):
//
//   - A Settle that fails with ErrUnavailable is queued and retried in the background with
//     exponential backoff, so spend recorded at the end of a stream arrives once the store
//     is back. Settle is idempotent per id, so a retry of a settle that did reach the store
//     (only its reply was lost) changes nothing.
//   - A Reserve that fails with ErrUnavailable may still reach the store later (it timed out
//     in the client while the store was stalled), where nothing would ever settle it: a
//     phantom reservation blocking budget for a whole hold. So the failed Reserve is
//     compensated by a queued release, a Settle of zero actuals, which frees the hold if it
//     was made and marks the id settled, so that a Reserve of it arriving even later is a
//     no-op.
//
// The queue is bounded (WithRetryQueue); an entry that does not fit is dropped and its
// error returned. It lives in memory: Close makes one last attempt for every entry and
// reports what is lost. An EmbeddedLedger needs none of this (its calls cannot fail
// short of Close), but wrapping it is harmless.
//
// Errors other than ErrUnavailable (ErrInvalidArgument, and ErrClosed) are returned as is and
// never retried.
type Retrying struct {
	inner    Ledger
	after    AfterFunc
	capacity int
	minWait  time.Duration
	maxWait  time.Duration
	timeout  time.Duration

	mu      sync.Mutex
	queue   []settleJob
	busy    bool          // a drain is scheduled or running
	wait    time.Duration // the current backoff
	timer   Timer
	closed  bool
	pending atomic.Int64 // len(queue), readable without mu

	deferred, releases, retries, recovered, dropped atomic.Int64
}

// settleJob is one queued Settle.
type settleJob struct {
	id     string
	items  []Item
	actual []int64
}

// RetryStats counts what Retrying did, for metrics (counters, except Pending).
type RetryStats struct {
	Deferred  int64 // settles that failed and were queued for retry
	Releases  int64 // releases queued for reserves that failed
	Retries   int64 // attempts made from the queue (failed or not)
	Recovered int64 // queued entries that reached the ledger
	Dropped   int64 // entries lost: the queue was full, the ledger refused them, or Close gave up
	Pending   int64 // entries waiting now
}

// RetryOption configures a Retrying.
type RetryOption func(*Retrying)

// WithRetryQueue bounds the queue to n entries (default DefaultRetryQueue).
func WithRetryQueue(n int) RetryOption {
	return func(r *Retrying) {
		if n > 0 {
			r.capacity = n
		}
	}
}

// WithRetryBackoff sets the first and the longest wait between retries (defaults
// DefaultRetryMinWait and DefaultRetryMaxWait).
func WithRetryBackoff(minWait, maxWait time.Duration) RetryOption {
	return func(r *Retrying) {
		if minWait > 0 && maxWait >= minWait {
			r.minWait, r.maxWait = minWait, maxWait
		}
	}
}

// WithRetryTimers injects the scheduler of retries (tests); default time.AfterFunc.
func WithRetryTimers(f AfterFunc) RetryOption {
	return func(r *Retrying) {
		if f != nil {
			r.after = f
		}
	}
}

// NewRetrying wraps inner. Call Close on shutdown, before closing inner.
func NewRetrying(inner Ledger, opts ...RetryOption) *Retrying {
	r := &Retrying{inner: inner, after: timeAfterFunc, capacity: DefaultRetryQueue,
		minWait: DefaultRetryMinWait, maxWait: DefaultRetryMaxWait, timeout: DefaultRetryTimeout}
	for _, o := range opts {
		o(r)
	}
	return r
}

var (
	_ Ledger   = (*Retrying)(nil)
	_ Extender = (*Retrying)(nil)
)

// Reserve implements Ledger. When the wrapped Reserve fails with ErrUnavailable, a release
// of id is queued (see Retrying) and the error is returned unchanged: the caller refuses
// the request (or lets it through unreserved under fail-open) and must not settle id.
func (r *Retrying) Reserve(ctx context.Context, id string, items []Item, hold time.Duration) (int, error) {
	denied, err := r.inner.Reserve(ctx, id, items, hold)
	if err != nil && retryable(err) && len(items) > 0 {
		if r.enqueue(settleJob{id: id, items: slices.Clone(items), actual: make([]int64, len(items))}) {
			r.releases.Add(1)
		}
	}
	return denied, err
}

// Settle implements Ledger. A settle that fails with ErrUnavailable is queued for retry and
// reported as done (nil): the spend will be recorded when the ledger answers again. Only a
// settle that cannot be queued (the queue is full, or Close was called) returns the error.
func (r *Retrying) Settle(ctx context.Context, id string, items []Item, actual []int64) error {
	err := r.inner.Settle(ctx, id, items, actual)
	if err == nil || !retryable(err) {
		return err
	}
	if !r.enqueue(settleJob{id: id, items: slices.Clone(items), actual: slices.Clone(actual)}) {
		return err
	}
	r.deferred.Add(1)
	return nil
}

// Balances implements Ledger. Queued settlements are not in it until they are recorded.
func (r *Retrying) Balances(ctx context.Context, keys []string) ([]Balance, error) {
	return r.inner.Balances(ctx, keys)
}

// Extend implements Extender. A wrapped ledger that cannot extend holds nothing to extend.
func (r *Retrying) Extend(ctx context.Context, id string, items []Item, hold time.Duration) (bool, error) {
	ext, ok := r.inner.(Extender)
	if !ok {
		return false, nil
	}
	return ext.Extend(ctx, id, items, hold)
}

// Stats reports the counters.
func (r *Retrying) Stats() RetryStats {
	return RetryStats{
		Deferred: r.deferred.Load(), Releases: r.releases.Load(), Retries: r.retries.Load(),
		Recovered: r.recovered.Load(), Dropped: r.dropped.Load(), Pending: r.pending.Load(),
	}
}

// Close stops retrying in the background and makes one last attempt for every queued entry
// within ctx. Entries that still fail are dropped: the error says how many settlements were
// not recorded. Later settles that fail are not queued. A second Close does nothing.
func (r *Retrying) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	jobs := r.queue
	r.queue = nil
	r.pending.Store(0)
	r.mu.Unlock()

	var lost int
	var last error
	for _, j := range jobs {
		err := ctx.Err()
		if err == nil {
			err = r.attempt(ctx, j)
		}
		if err != nil {
			lost++
			last = err
			r.dropped.Add(1)
		}
	}
	if lost > 0 {
		return fmt.Errorf("budget: %d settlement(s) not recorded at shutdown: %w", lost, last)
	}
	return nil
}

// retryable reports whether err may go away by itself: the ledger could not answer, and was
// not closed.
func retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrClosed)
}

// enqueue adds j to the queue and makes sure a drain is scheduled; false when j does not fit
// (counted as dropped).
func (r *Retrying) enqueue(j settleJob) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.queue) >= r.capacity {
		r.dropped.Add(1)
		return false
	}
	r.queue = append(r.queue, j)
	r.pending.Store(int64(len(r.queue)))
	if !r.busy {
		r.busy = true
		r.wait = r.minWait
		r.timer = r.after(r.wait, r.drain)
	}
	return true
}

// attempt is one retry of j, counted.
func (r *Retrying) attempt(ctx context.Context, j settleJob) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	r.retries.Add(1)
	err := r.inner.Settle(ctx, j.id, j.items, j.actual)
	if err == nil {
		r.recovered.Add(1)
	}
	return err
}

// drain works through the queue in order until it is empty or the ledger fails again, then
// schedules itself after the next backoff. Only one drain runs at a time (busy).
func (r *Retrying) drain() {
	for {
		r.mu.Lock()
		if r.closed || len(r.queue) == 0 {
			r.busy, r.timer = false, nil
			r.mu.Unlock()
			return
		}
		j := r.queue[0]
		r.mu.Unlock()

		err := r.attempt(context.Background(), j)

		r.mu.Lock()
		if r.closed { // Close owns what is left; a repeat of j there is a no-op
			r.busy, r.timer = false, nil
			r.mu.Unlock()
			return
		}
		if err != nil && retryable(err) {
			r.wait = min(2*r.wait, r.maxWait)
			r.timer = r.after(r.wait, r.drain)
			r.mu.Unlock()
			return
		}
		r.queue[0] = settleJob{}
		r.queue = r.queue[1:]
		if len(r.queue) == 0 {
			r.queue = nil
		}
		r.pending.Store(int64(len(r.queue)))
		r.wait = r.minWait
		r.mu.Unlock()
		if err != nil {
			r.dropped.Add(1) // refused for good (ErrInvalidArgument, ErrClosed)
		}
	}
}
