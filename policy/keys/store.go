package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"time"
)

// Record is a stored virtual key: its public id, its digest and what it may do.
type Record struct {
	// ID is the public key id (IDLen base62 characters).
	ID string
	// Name is a human label for the key.
	Name string
	// Team owns the key, for budgets and reporting.
	Team string
	// Models lists the models the key may use.
	Models []string
	// Digest is Hash(pepper, secret).
	Digest Digest
	// Disabled keys are refused with ErrDisabled.
	Disabled bool
	// Expires is when the key stops working; the zero time means never.
	Expires time.Time
}

// Store verifies tokens against a fixed set of records. It is immutable after
// NewStore returns and safe for concurrent use; to change keys, build a new
// Store and swap it in (for example through an atomic.Pointer). The zero Store
// is not usable: build one with NewStore.
type Store struct {
	byID map[string]*Record
	// macs pools keyed HMAC states (*macState), so Verify does not rebuild
	// the keyed hash and allocate on every call. Only pool access is shared;
	// each state is used by one goroutine at a time.
	macs sync.Pool
	// onHMAC and onCompare, when set (tests only), observe Verify's work: every HMAC it
	// computes, and the lengths of every pair of digests it compares in constant time.
	onHMAC    func()
	onCompare func(gotLen, wantLen int)
}

// macState is a reusable HMAC-SHA256 keyed with the store's pepper, with
// buffers that keep Verify's input and output off the heap.
type macState struct {
	mac hash.Hash
	in  [64]byte
	out [sha256.Size]byte
}

// sum returns HMAC(pepper, secret); it equals Hash(pepper, secret).
func (m *macState) sum(secret string) Digest {
	m.mac.Reset() // back to the keyed initial state
	for len(secret) > 0 {
		n := copy(m.in[:], secret)
		_, _ = m.mac.Write(m.in[:n])
		secret = secret[n:]
	}
	clear(m.in[:])
	return Digest(m.mac.Sum(m.out[:0]))
}

// unknownDigest is what Verify compares against when the id is unknown, so that
// unknown ids cost the same HMAC and comparison as known ones. NewStore refuses
// records with this (all-zero) digest, and Verify reports ErrUnknownKey for an
// unknown id whatever the comparison says.
var unknownDigest Digest

// NewStore checks pepper (see CheckPepper) and builds a Store from recs. Every
// record needs a well-formed, unique id and a non-zero digest; all problems are
// reported together (errors.Join), each wrapping ErrInvalidRecord and naming
// the record by index (and by id once the id is known to be well formed, so a
// token pasted into the id field is never echoed).
//
// The pepper and records are copied, so the caller may reuse or wipe them.
func NewStore(pepper []byte, recs []Record) (*Store, error) {
	if err := CheckPepper(pepper); err != nil {
		return nil, err
	}
	key := slices.Clone(pepper)
	s := &Store{byID: make(map[string]*Record, len(recs))}
	s.macs.New = func() any { return &macState{mac: hmac.New(sha256.New, key)} }
	var errs []error
	for i := range recs {
		r := recs[i]
		if !validID(r.ID) {
			errs = append(errs, fmt.Errorf("%w: record %d: key id must be %d base62 characters", ErrInvalidRecord, i, IDLen))
			continue
		}
		if _, dup := s.byID[r.ID]; dup {
			errs = append(errs, fmt.Errorf("%w: record %d: duplicate key id %s", ErrInvalidRecord, i, r.ID))
			continue
		}
		if r.Digest == unknownDigest {
			errs = append(errs, fmt.Errorf("%w: record %d (id %s): missing digest", ErrInvalidRecord, i, r.ID))
			continue
		}
		r.Models = slices.Clone(r.Models)
		s.byID[r.ID] = &r
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Verify checks tok against the store at time now.
//
// It computes the HMAC of tok.Secret and compares it in constant time with the
// record's digest, or with a dummy digest when tok.ID is unknown, so response
// time does not reveal which ids exist. An unknown id and a wrong secret both
// give ErrUnknownKey. Only after the secret matches are ErrDisabled and then
// ErrExpired (now >= Expires, for a non-zero Expires) checked, so a key's
// state is only disclosed to its holder.
//
// The returned Record is shared by all callers and must not be modified.
func (s *Store) Verify(now time.Time, tok Token) (*Record, error) {
	rec, found := s.byID[tok.ID]
	want := unknownDigest
	if found {
		want = rec.Digest
	}
	m := s.macs.Get().(*macState)
	got := m.sum(tok.Secret)
	s.macs.Put(m)
	if s.onHMAC != nil {
		s.onHMAC()
	}
	match := s.equal(&got, &want)
	if !found || !match {
		return nil, ErrUnknownKey
	}
	if rec.Disabled {
		return nil, fmt.Errorf("key %s: %w", rec.ID, ErrDisabled)
	}
	if !rec.Expires.IsZero() && !now.Before(rec.Expires) {
		return nil, fmt.Errorf("key %s: %w", rec.ID, ErrExpired)
	}
	return rec, nil
}

// equal compares two digests in constant time. Verify makes exactly one call, known id or
// not, so an unknown id costs what a wrong secret costs.
func (s *Store) equal(got, want *Digest) bool {
	if s.onCompare != nil {
		s.onCompare(len(got), len(want))
	}
	return hmac.Equal(got[:], want[:])
}

// Len returns the number of records in the store.
func (s *Store) Len() int { return len(s.byID) }

// Records returns the records sorted by id. They are shared: callers must not modify them.
func (s *Store) Records() []*Record {
	out := make([]*Record, 0, len(s.byID))
	for _, r := range s.byID {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Record) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Lookup returns the record with id, or nil. It is for reports, never for authentication.
func (s *Store) Lookup(id string) *Record { return s.byID[id] }
