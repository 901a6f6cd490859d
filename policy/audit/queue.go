package audit

import "sync/atomic"

// DefaultQueueMaxBytes bounds the bytes an Emitter (and a WebhookSink) holds
// for records not yet written. Sealed content makes one event up to tens of
// MiB, so a count bound alone does not bound memory.
const DefaultQueueMaxBytes = 64 << 20

// byteBudget accounts the bytes held by a bounded queue, from the moment an
// item is accepted until its writer is done with it. It is safe for
// concurrent use.
//
// Overflow has hysteresis: once an item was refused for lack of room, full
// reports true until the held bytes drain to half the bound, so a queue at its
// limit does not flap between healthy and unhealthy on every item.
type byteBudget struct {
	max      int64
	used     atomic.Int64
	overflow atomic.Bool
}

// reserve accounts n bytes and reports true, or reports false (and marks the
// overflow) when they do not fit. An item larger than the whole bound is
// accepted when nothing else is held, so a small bound cannot refuse every
// large item; the budget then holds at most that one item.
func (b *byteBudget) reserve(n int64) bool {
	for {
		cur := b.used.Load()
		if cur > 0 && cur+n > b.max {
			b.overflow.Store(true)
			return false
		}
		if b.used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// refuse marks the overflow for an item refused for another reason (a count
// bound).
func (b *byteBudget) refuse() { b.overflow.Store(true) }

// release gives n bytes back.
func (b *byteBudget) release(n int64) {
	if n == 0 {
		return
	}
	if b.used.Add(-n) <= b.max/2 {
		b.overflow.Store(false)
	}
}

// full reports whether an item was refused and the queue has not yet drained
// to half its bound.
func (b *byteBudget) full() bool { return b.overflow.Load() }

// held returns the bytes accounted now.
func (b *byteBudget) held() int64 { return b.used.Load() }

// eventOverhead approximates the serialized size of an event's fixed members,
// numbers and chain fields (about 550 bytes), rounded up.
const eventOverhead = 640

// approxSize estimates the bytes e takes once serialized (and, roughly, in
// memory before): the fixed members plus every string, content included.
// Strings are counted at their length; ids and codes rarely need escaping, and
// sealed content is ASCII armor.
func (e *Event) approxSize() int64 {
	n := eventOverhead + len(e.RequestID) + len(e.KeyID) + len(e.Team) + len(e.Endpoint) + len(e.UpstreamEndpoint) + len(e.Provider) +
		len(e.ModelRequested) + len(e.ModelServed) + len(e.Decision) + len(e.Reason) + len(e.SettleRule) + len(e.ClientAddr)
	for _, g := range e.Guardrails {
		n += 48 + len(g.Rule) + len(g.Action)
	}
	for _, l := range e.Limits {
		n += 3 + len(l)
	}
	for _, a := range e.Attempts {
		n += 64 + len(a.Provider) + len(a.Model) + len(a.Outcome)
	}
	if c := e.Content; c != nil {
		// Armor lines end in "\n", written as `\n` in JSON.
		n += 64 + len(c.PromptHMAC) + len(c.CompletionHMAC) + len(c.Sealed) + len(c.Sealed)/64
	}
	return int64(n)
}
