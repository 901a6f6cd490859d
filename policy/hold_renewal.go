package policy

import (
	"context"
	"sync"
	"time"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

// Timer is a scheduled call that can be cancelled; *time.Timer is one.
type Timer = budget.Timer

// AfterFunc schedules f to run in its own goroutine after d, like time.AfterFunc.
type AfterFunc = budget.AfterFunc

// WithAfterFunc injects the scheduler that renews reservations (tests drive it by hand);
// the default is time.AfterFunc.
func WithAfterFunc(f AfterFunc) CompileOption { return func(o *compileOptions) { o.after = f } }

func timeAfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// renewTimeout bounds one renewal call. It runs off the request path, so it may wait longer
// than a reserve does.
const renewTimeout = 5 * time.Second

// renewal keeps one reservation alive while its request runs: every third of the hold it
// extends the deadline to a full hold from then, so a stream longer than
// budget.reservation_hold keeps its budget, while a reservation whose process died still
// expires one hold after the last renewal. A failed renewal is retried after a tenth of the
// hold (two more tries before the deadline). It stops when the hold is settled, or when the
// ledger no longer holds the reservation (it expired after renewals failed for a whole hold):
// reserving again without a limit check is not an option, so the request then runs
// unreserved and is still charged in full when it settles.
type renewal struct {
	ext   budget.Extender
	after AfterFunc
	id    string
	items []budget.Item
	hold  time.Duration

	mu      sync.Mutex
	timer   Timer // the next renewal
	stopped bool
}

// startRenewal schedules the first renewal of reservation id, or returns nil when the
// ledger cannot extend holds.
func (bp *budgetPolicy) startRenewal(id string, items []budget.Item) *renewal {
	ext, ok := bp.ledger.(budget.Extender)
	if !ok || len(items) == 0 {
		return nil
	}
	r := &renewal{ext: ext, after: bp.after, id: id, items: items, hold: bp.hold}
	r.schedule(r.hold / 3)
	return r
}

func (r *renewal) schedule(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.timer = r.after(d, r.run)
	}
}

// run is one renewal, on a context of its own: the request's may already be cancelled.
func (r *renewal) run() {
	ctx, cancel := context.WithTimeout(context.Background(), renewTimeout)
	held, err := r.ext.Extend(ctx, r.id, r.items, r.hold)
	cancel()
	switch {
	case err != nil:
		r.schedule(r.hold / 10)
	case held:
		r.schedule(r.hold / 3)
	}
}

// stop cancels the next renewal; one already running finishes, and its Extend of a settled
// reservation changes nothing. Safe on a nil renewal.
func (r *renewal) stop() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
	}
}
