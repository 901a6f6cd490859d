package budget

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// snapshotVersion is the format version EmbeddedLedger writes and the only one it reads.
const snapshotVersion = 1

// snapshotFile is the file's outer shape:
//
//	{"version":1,"sha256":"<hex>","state":{...}}
//
// sha256 covers the bytes of state exactly as stored, so any change to them (a torn or
// edited file) is caught before the state is trusted.
type snapshotFile struct {
	Version int             `json:"version"`
	SHA256  string          `json:"sha256"`
	State   json.RawMessage `json:"state"`
}

// snapshotState is everything a MemoryLedger needs to resume: settled usage per counter and
// live holds (a counter's Reserved is rebuilt from them). Its size depends on the counters
// and the requests in flight, never on how many requests were served.
//
// Settled ids are not kept: only a caller in the same process could repeat a settle (ids
// are random per process, and retry queues live in memory), so none is needed after a
// restart. Files written before this change list them under "settled"; they are read and
// ignored.
type snapshotState struct {
	SavedAt  time.Time     `json:"saved_at"`
	Counters []snapCounter `json:"counters"`
	Holds    []snapHold    `json:"holds"`
	Settled  []snapSettled `json:"settled,omitempty"` // read, never written
}

type snapCounter struct {
	Key     string    `json:"key"`
	Used    int64     `json:"used"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
}

type snapHold struct {
	ID       string     `json:"id"`
	Deadline time.Time  `json:"deadline"`
	Parts    []snapPart `json:"parts"`
}

type snapPart struct {
	Key    string `json:"key"`
	Amount int64  `json:"amount"`
}

// snapSettled is a settled id in a file written by an older build.
type snapSettled struct {
	ID       string    `json:"id"`
	ForgetAt time.Time `json:"forget_at"`
}

// encodeSnapshot renders st as a versioned, checksummed file.
func encodeSnapshot(st *snapshotState) ([]byte, error) {
	state, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(state)
	return json.Marshal(snapshotFile{Version: snapshotVersion, SHA256: hex.EncodeToString(sum[:]), State: state})
}

// decodeSnapshot parses and verifies a file written by encodeSnapshot. Errors wrap
// ErrCorruptSnapshot or ErrSnapshotVersion.
func decodeSnapshot(data []byte) (*snapshotState, error) {
	var f snapshotFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
	}
	if f.Version != snapshotVersion {
		return nil, fmt.Errorf("%w: %d (this build reads %d)", ErrSnapshotVersion, f.Version, snapshotVersion)
	}
	sum := sha256.Sum256(f.State)
	if want, err := hex.DecodeString(f.SHA256); err != nil || !bytes.Equal(want, sum[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptSnapshot)
	}
	var st snapshotState
	dec := json.NewDecoder(bytes.NewReader(f.State))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
	}
	return &st, nil
}

// export copies the ledger's state if it changed since generation since; ok is false when
// it did not. Expired holds and counters are left out. The copy is sorted, so
// equal states give equal files.
func (m *MemoryLedger) export(since uint64) (st *snapshotState, gen uint64, ok bool) {
	m.mu.Lock()
	if m.gen == since {
		m.mu.Unlock()
		return nil, since, false
	}
	nowT := m.now()
	now := nowT.UnixNano()
	m.tidy(now)
	st = &snapshotState{
		SavedAt:  nowT.UTC(),
		Counters: make([]snapCounter, 0, len(m.counters)),
		Holds:    make([]snapHold, 0, len(m.holds)),
	}
	expired := func(c *counter) bool { return c.expires != 0 && c.expires <= now }
	for _, c := range m.counters {
		if expired(c) {
			continue
		}
		st.Counters = append(st.Counters, snapCounter{Key: c.key, Used: c.used, Expires: unixTime(c.expires)})
	}
	for _, h := range m.holds {
		sh := snapHold{ID: h.id, Deadline: unixTime(h.deadline), Parts: make([]snapPart, 0, len(h.parts))}
		for _, p := range h.parts {
			if m.counters[p.c.key] == p.c && !expired(p.c) { // a forgotten counter's hold no longer counts
				sh.Parts = append(sh.Parts, snapPart{Key: p.c.key, Amount: p.amount})
			}
		}
		st.Holds = append(st.Holds, sh)
	}
	gen = m.gen
	m.mu.Unlock()

	slices.SortFunc(st.Counters, func(a, b snapCounter) int { return cmp.Compare(a.Key, b.Key) })
	slices.SortFunc(st.Holds, func(a, b snapHold) int { return cmp.Compare(a.ID, b.ID) })
	return st, gen, true
}

// restore loads st into an empty ledger, rebuilding each counter's Reserved from the holds.
// Expired entries are kept and tidied away by the first call, as if the process had never
// stopped. Settled ids (older files) are ignored. Inconsistent contents wrap
// ErrCorruptSnapshot.
func (m *MemoryLedger) restore(st *snapshotState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, sc := range st.Counters {
		if sc.Key == "" || sc.Used < 0 {
			return fmt.Errorf("%w: counters[%d] is invalid", ErrCorruptSnapshot, i)
		}
		if _, dup := m.counters[sc.Key]; dup {
			return fmt.Errorf("%w: counter %q appears twice", ErrCorruptSnapshot, sc.Key)
		}
		c := &counter{key: sc.Key, used: sc.Used, expires: expiresNs(sc.Expires)}
		m.counters[c.key] = c
		if c.expires != 0 {
			m.expiring[c.expires] = append(m.expiring[c.expires], c)
		}
	}
	for i, sh := range st.Holds {
		if sh.ID == "" || sh.Deadline.IsZero() {
			return fmt.Errorf("%w: holds[%d] is invalid", ErrCorruptSnapshot, i)
		}
		if _, dup := m.holds[sh.ID]; dup {
			return fmt.Errorf("%w: hold %q appears twice", ErrCorruptSnapshot, sh.ID)
		}
		h := &hold{id: sh.ID, deadline: sh.Deadline.UnixNano(), parts: make([]part, 0, len(sh.Parts))}
		for j, sp := range sh.Parts {
			c := m.counters[sp.Key]
			if c == nil || sp.Amount < 0 {
				return fmt.Errorf("%w: holds[%d].parts[%d] is invalid", ErrCorruptSnapshot, i, j)
			}
			c.reserved = satAdd(c.reserved, sp.Amount)
			h.parts = append(h.parts, part{c: c, amount: sp.Amount})
		}
		m.holds[h.id] = h
		m.deadlines.push(h)
	}
	return nil
}

// unixTime converts Unix ns back to a UTC time, with the zero time for 0.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
