package budget

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultFlushInterval is how often an EmbeddedLedger writes a snapshot when it has changed.
const DefaultFlushInterval = time.Second

// WithFlushInterval sets how often EmbeddedLedger.Run writes a changed snapshot (default
// DefaultFlushInterval). It bounds what a crash can lose.
func WithFlushInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.flushInterval = d
		}
	}
}

// WithFlushErrors sets a function Run calls with each failed periodic flush (for logs and
// metrics). The ledger keeps serving from memory and retries at the next tick.
func WithFlushErrors(f func(error)) Option {
	return func(o *options) {
		if f != nil {
			o.flushErr = f
		}
	}
}

// EmbeddedLedger is a MemoryLedger persisted to one local file, for a single Tollgate
// replica without Redis. The file is owned by one process: two processes sharing it would
// overwrite each other's snapshots.
//
// What is persisted: each counter's settled usage and every live reservation (its hold
// deadline and amounts), so a snapshot's size depends on the counters and the requests in
// flight, not on how many requests were served. Settled ids are not (see snapshotState).
// Live reservations are kept on
// purpose: after a crash their requests may still have been billed by the provider, so their
// holds keep blocking until their deadlines pass, as they would have without the crash. That
// errs toward refusing, never toward overspending.
//
// What a crash can lose: changes since the last successful snapshot, at most one
// FlushInterval (plus the write itself) of reservations and settlements. Lost settlements
// under-count spend by what those requests cost; lost reservations only matter for requests
// that died with the process. A graceful Close then OpenEmbedded loses nothing.
//
// Snapshots are written whole (JSON, versioned, SHA-256 checksummed) to a temporary file in
// the same directory, fsynced, renamed over the old file, and the directory fsynced, so the
// file on disk is always one complete snapshot. Writing is O(state) and happens only when
// something changed; the state is copied under the ledger's lock and encoded outside it.
type EmbeddedLedger struct {
	mem      *MemoryLedger
	path     string
	interval time.Duration
	flushErr func(error)
	done     chan struct{} // closed by Close; stops Run
	unlock   func()        // releases the exclusive lock on path + ".lock"

	flushMu  sync.Mutex // serializes writers
	savedGen uint64     // generation of the last snapshot written; guarded by flushMu
}

var _ Ledger = (*EmbeddedLedger)(nil)

// OpenEmbedded loads the ledger persisted at path, or starts an empty one and writes its
// first snapshot when the file does not exist (so an unwritable directory fails now, not at
// the first flush). A file that cannot be trusted is an error wrapping ErrCorruptSnapshot or
// ErrSnapshotVersion: starting empty would forget what was spent. Leftover temporary files
// of an interrupted write are removed. All options apply.
//
// Call Run in a goroutine to write snapshots periodically, and Close on shutdown.
func OpenEmbedded(path string, opts ...Option) (*EmbeddedLedger, error) {
	o := buildOptions(opts)
	e := &EmbeddedLedger{
		mem:      newMemory(o),
		path:     path,
		interval: o.flushInterval,
		flushErr: o.flushErr,
		done:     make(chan struct{}),
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("budget: ledger %s: %w", path, err)
	}
	e.unlock = unlock
	opened := false
	defer func() {
		if !opened {
			unlock()
		}
	}()
	removeTemps(path)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		e.mem.gen++ // force the first write
		if err := e.Flush(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("budget: read ledger snapshot %s: %w", path, err)
	default:
		st, err := decodeSnapshot(data)
		if err == nil {
			err = e.mem.restore(st)
		}
		if err != nil {
			return nil, fmt.Errorf("budget: ledger snapshot %s: %w", path, err)
		}
	}
	opened = true
	return e, nil
}

// Reserve implements Ledger (see MemoryLedger.Reserve).
func (e *EmbeddedLedger) Reserve(ctx context.Context, id string, items []Item, hold time.Duration) (int, error) {
	return e.mem.Reserve(ctx, id, items, hold)
}

// Settle implements Ledger (see MemoryLedger.Settle).
func (e *EmbeddedLedger) Settle(ctx context.Context, id string, items []Item, actual []int64) error {
	return e.mem.Settle(ctx, id, items, actual)
}

// Balances implements Ledger (see MemoryLedger.Balances).
func (e *EmbeddedLedger) Balances(ctx context.Context, keys []string) ([]Balance, error) {
	return e.mem.Balances(ctx, keys)
}

// Stats reports the ledger's size.
func (e *EmbeddedLedger) Stats() Stats { return e.mem.Stats() }

// Path is the snapshot file.
func (e *EmbeddedLedger) Path() string { return e.path }

// Run writes a snapshot every FlushInterval if the ledger changed, until ctx is done or the
// ledger is closed; it always returns nil. Failed writes go to the WithFlushErrors function
// and are retried at the next tick; the ledger keeps serving from memory meanwhile.
func (e *EmbeddedLedger) Run(ctx context.Context) error {
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.done:
			return nil
		case <-t.C:
			if err := e.Flush(); err != nil {
				e.flushErr(err)
			}
		}
	}
}

// Flush writes a snapshot now if the ledger changed since the last one.
func (e *EmbeddedLedger) Flush() error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	st, gen, ok := e.mem.export(e.savedGen)
	if !ok {
		return nil
	}
	data, err := encodeSnapshot(st)
	if err != nil {
		return fmt.Errorf("budget: encode ledger snapshot: %w", err)
	}
	if err := writeFileAtomic(e.path, data); err != nil {
		return fmt.Errorf("budget: write ledger snapshot: %w", err)
	}
	e.savedGen = gen
	return nil
}

// Close stops the ledger (later calls fail with ErrClosed wrapped in ErrUnavailable), stops
// Run and writes a final snapshot: every call that completed before Close is in it. If that
// write fails, calling Close again retries it; otherwise a second Close does nothing.
func (e *EmbeddedLedger) Close() error {
	first := e.mem.close()
	if first {
		close(e.done)
	}
	err := e.Flush()
	if first {
		e.unlock() // after the last write: the next owner reads a complete snapshot
	}
	return err
}

// writeFileAtomic replaces path with data so that a crash at any point leaves either the
// old file or the new one, complete: write a temporary file in the same directory, fsync
// it, rename it over path, fsync the directory (which makes the rename durable).
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPrefix(base)+"*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}

// tempPrefix names the temporary files of base's snapshots.
func tempPrefix(base string) string { return "." + base + ".tmp-" }

// removeTemps deletes temporary files left by writes interrupted by a crash. Errors are
// ignored: a leftover temp file wastes space but changes nothing.
func removeTemps(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	matches, _ := filepath.Glob(filepath.Join(dir, escapeGlob(tempPrefix(base))+"*"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

// escapeGlob escapes the pattern characters of filepath.Match in s.
func escapeGlob(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', '\\':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
