package budget

import (
	"context"
	"fmt"
	"time"
)

var (
	_ Extender = (*MemoryLedger)(nil)
	_ Extender = (*EmbeddedLedger)(nil)
)

// Extend implements Extender. items is not needed here (the hold knows its counters) but is
// checked like Reserve's.
func (m *MemoryLedger) Extend(ctx context.Context, id string, items []Item, hold time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := checkReserve(id, items, hold); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, errClosed
	}
	now := m.now().UnixNano()
	m.tidy(now) // drops id's hold if it expired: it is not revived
	h, ok := m.holds[id]
	if !ok || !h.holdsAny() {
		return false, nil
	}
	deadline := satAdd(now, int64(hold))
	if deadline <= h.deadline {
		return true, nil
	}
	h.deadline = deadline
	m.deadlines.down(h.index) // later deadline: only ever sinks
	for _, p := range h.parts {
		c := p.c
		if c.expires != 0 && c.expires < deadline && m.counters[c.key] == c {
			c.expires = deadline
			m.expiring[deadline] = append(m.expiring[deadline], c)
		}
	}
	m.gen++
	return true, nil
}

// holdsAny reports whether h holds a positive amount (the Redis ledger stores no hold for a
// zero amount, so neither counts as held there).
func (h *hold) holdsAny() bool {
	for _, p := range h.parts {
		if p.amount > 0 {
			return true
		}
	}
	return false
}

// Extend implements Extender (see MemoryLedger.Extend).
func (e *EmbeddedLedger) Extend(ctx context.Context, id string, items []Item, hold time.Duration) (bool, error) {
	return e.mem.Extend(ctx, id, items, hold)
}
