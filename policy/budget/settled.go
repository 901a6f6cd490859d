package budget

import "hash/maphash"

// DefaultSettledCap bounds how many settled ids a MemoryLedger remembers (about 1 MiB).
const DefaultSettledCap = 1 << 14

// settledSet remembers recently settled reservation ids, so that a repeated Settle of one is
// a no-op and a Reserve of one is refused. It is bounded twice: an id is forgotten after
// the ledger's SettledTTL, and the oldest id is forgotten early when the set holds cap ids,
// so memory is bounded whatever the traffic.
//
// When can a settle be repeated? Only by a caller of the same process retrying one (a
// Retrying wrapper, whose queue lives in memory; ids are random per process), seconds apart.
// Forgetting an id early errs toward refusing: a repeated settle then counts the spend twice,
// and a late Reserve of it holds budget until its hold passes. Neither can overspend.
//
// Ids are kept as a 128-bit keyed hash (two maphash seeds chosen per ledger), not as
// strings: 16 bytes each, whatever the id's length. Two ids colliding, which would turn the
// second one's settle into a no-op, needs about 2^64 ids in the set at once.
type settledSet struct {
	seeds [2]maphash.Seed
	cap   int
	at    map[idKey]int64 // id -> when to forget it (Unix ns)
	ring  []tomb          // ids in the order they were added (= forget order); grows up to cap
	head  int             // oldest entry of ring
	n     int             // entries in ring
}

type idKey struct{ a, b uint64 }

type tomb struct {
	k  idKey
	at int64
}

func newSettledSet(cap int) settledSet {
	return settledSet{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, cap: cap, at: make(map[idKey]int64)}
}

func (s *settledSet) key(id string) idKey {
	return idKey{maphash.String(s.seeds[0], id), maphash.String(s.seeds[1], id)}
}

func (s *settledSet) has(id string) bool {
	_, ok := s.at[s.key(id)]
	return ok
}

func (s *settledSet) len() int { return len(s.at) }

// add remembers id until forgetAt, forgetting the oldest id first if the set is full.
func (s *settledSet) add(id string, forgetAt int64) {
	if s.n == s.cap {
		s.pop()
	}
	if s.n == len(s.ring) { // grow, oldest first, up to cap
		ring := make([]tomb, min(max(2*len(s.ring), 64), s.cap))
		for i := range s.n {
			ring[i] = s.ring[(s.head+i)%len(s.ring)]
		}
		s.ring, s.head = ring, 0
	}
	k := s.key(id)
	s.at[k] = forgetAt
	s.ring[(s.head+s.n)%len(s.ring)] = tomb{k: k, at: forgetAt}
	s.n++
}

// expire forgets the ids whose time has come.
func (s *settledSet) expire(now int64) {
	for s.n > 0 && s.ring[s.head].at <= now {
		s.pop()
	}
}

// pop forgets the oldest entry (if the map still has it from that entry).
func (s *settledSet) pop() {
	t := s.ring[s.head]
	if at, ok := s.at[t.k]; ok && at == t.at {
		delete(s.at, t.k)
	}
	s.ring[s.head] = tomb{}
	s.head = (s.head + 1) % len(s.ring)
	s.n--
}
