package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FsyncMode says when a FileSink forces its writes to stable storage.
type FsyncMode string

// Fsync modes. Whatever the mode, a file is fsynced before it is rotated and
// at Close.
const (
	// FsyncAlways fsyncs after every batch. The emitter batches greedily, so
	// under load this is group commit, not one fsync per event.
	FsyncAlways FsyncMode = "always"
	// FsyncInterval fsyncs at most every FsyncInterval, when something was
	// written since the last fsync (the default).
	FsyncInterval FsyncMode = "interval"
	// FsyncNever leaves flushing to the operating system.
	FsyncNever FsyncMode = "never"
)

// FileSink defaults.
const (
	DefaultMaxBytes      = 100 << 20
	DefaultFsyncInterval = time.Second
)

// FileSinkConfig configures a FileSink.
type FileSinkConfig struct {
	// Path is the active file. Its directory is created (0700) when missing.
	Path string
	// MaxBytes rotates the file before a record would take it past this size
	// (a record larger than MaxBytes still goes into a file of its own). 0
	// means DefaultMaxBytes.
	MaxBytes int64
	// Fsync is the fsync mode; "" means FsyncInterval.
	Fsync FsyncMode
	// FsyncInterval is the period for FsyncInterval; 0 means DefaultFsyncInterval.
	FsyncInterval time.Duration
	// CheckpointKey signs the checkpoint written at the end of each file on
	// rotation and at Close. Required: a file without checkpoints cannot be
	// verified. Verify with the matching public key.
	CheckpointKey ed25519.PrivateKey
	// Now is the clock for checkpoint times; nil means time.Now.
	Now func() time.Time
}

// FileSink appends records to a file, rotating by size. Files are created
// 0600 and only ever appended to.
//
// Rotation: the active file Path is closed with a signed checkpoint, fsynced,
// and renamed to Path.N, where N is one more than the highest N already
// present (so Path.1 is the oldest and a rotated file is never renamed again);
// a new Path is then started. The sink never deletes or rewrites a rotated
// file: retention is the operator's call. Verify orders a set by the chain, so
// the names need not sort.
//
// On open, an existing Path is appended to. If it does not end in a newline
// (a crash mid-write) a newline is written first, so the damage stays on one
// line that Verify reports. Run one FileSink per path.
//
// Writes are atomic per record: when a write comes up short (a full disk),
// the file is cut back to the end of the last whole record, so no partial
// line survives. The records that could not be written are remembered; when
// writing resumes (or at Close), a signed gap record naming their sequence
// numbers is written before anything else, so the file says where it is
// incomplete and the chain still verifies across the hole.
//
// At start the sink reads where the trail in its files ends (ChainAnchor), so
// the Emitter can link its new chain to it.
type FileSink struct {
	cfg FileSinkConfig

	mu      sync.Mutex // guards everything below; the syncer takes it too
	f       *os.File
	size    int64
	next    int // next rotation index
	tail    tail
	gap     pendingGap // records lost since the last gap record
	dirty   bool       // written since the last fsync
	partial bool       // the file ends mid-line (a crash before this process, or a failed cut-back)
	lastErr error      // last write, rotation or fsync error; nil when healthy
	closed  bool
	buf     []byte
	// writeFile writes to the active file; tests replace it to fill the disk.
	writeFile func(f *os.File, b []byte) (int, error)

	anchor   Anchor
	anchored bool

	delivered, failed atomic.Uint64
	// unhealthy mirrors lastErr != nil || closed, so Healthy (asked on every
	// request in fail-closed mode) never waits for a slow write or fsync.
	unhealthy atomic.Bool

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewFileSink validates cfg and opens (or creates) the active file.
func NewFileSink(cfg FileSinkConfig) (*FileSink, error) {
	var errs []error
	if cfg.Path == "" {
		errs = append(errs, errors.New("path: required"))
	}
	if len(cfg.CheckpointKey) != ed25519.PrivateKeySize {
		errs = append(errs, fmt.Errorf("checkpoint_key: %w", ErrBadCheckpointKey))
	}
	if cfg.MaxBytes < 0 || cfg.FsyncInterval < 0 {
		errs = append(errs, errors.New("max_bytes, fsync_interval: must not be negative"))
	}
	switch cfg.Fsync {
	case "":
		cfg.Fsync = FsyncInterval
	case FsyncAlways, FsyncInterval, FsyncNever:
	default:
		errs = append(errs, errors.New("fsync: must be always, interval or never"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: file sink: %w", ErrBadConfig, errors.Join(errs...))
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.FsyncInterval == 0 {
		cfg.FsyncInterval = DefaultFsyncInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("audit file sink: %w", err)
	}
	s := &FileSink{cfg: cfg, writeFile: (*os.File).Write}
	next, err := nextRotation(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("audit file sink: %w", err)
	}
	s.next = next
	if s.anchor, s.anchored, err = fileSetAnchor(cfg.Path, next); err != nil {
		return nil, fmt.Errorf("audit file sink: reading the end of the trail: %w", err)
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	if cfg.Fsync == FsyncInterval {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.syncLoop()
	}
	return s, nil
}

// Write appends the batch, rotating first whenever the next record would pass
// MaxBytes. A batch holding a record the Emitter did not chain is refused
// whole with ErrNotChained. Records that could not be written are counted as
// failed and marked by a gap record once writing resumes.
func (s *FileSink) Write(_ context.Context, batch [][]byte) error {
	for _, r := range batch {
		if _, ok := parseChained(trimNewline(r)); !ok || r[len(r)-1] != '\n' {
			return ErrNotChained
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.failed.Add(uint64(len(batch)))
		return ErrClosed
	}
	n, err := s.write(batch)
	s.delivered.Add(uint64(n))
	if err != nil {
		for _, r := range batch[n:] {
			s.gap.add(r)
		}
		s.failed.Add(uint64(len(batch) - n))
	} else if s.cfg.Fsync == FsyncAlways {
		err = s.sync()
	}
	s.lastErr = err
	s.unhealthy.Store(err != nil)
	return err
}

// write writes the batch and returns how many of its records, from the first,
// are in the file.
func (s *FileSink) write(batch [][]byte) (int, error) {
	if s.f == nil {
		if err := s.open(); err != nil {
			return 0, err
		}
	}
	if s.gap.active {
		if err := s.writeGap(); err != nil {
			return 0, err
		}
	}
	written := 0
	buf := s.buf[:0]
	recs := batch[:0:0]
	for _, r := range batch {
		if s.size+int64(len(buf)) > 0 && s.size+int64(len(buf)+len(r)) > s.cfg.MaxBytes {
			n, err := s.append(buf, recs)
			written += n
			if err != nil {
				return written, err
			}
			if err := s.rotate(); err != nil {
				return written, err
			}
			buf, recs = buf[:0], recs[:0]
		}
		buf = append(buf, r...)
		recs = append(recs, r)
	}
	n, err := s.append(buf, recs)
	if cap(buf) <= 1<<20 {
		s.buf = buf[:0]
	}
	return written + n, err
}

// append writes buf, the concatenation of recs, and returns how many records
// were written whole.
func (s *FileSink) append(buf []byte, recs [][]byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	n, err := s.writeAtomic(buf, recs)
	for _, r := range recs[:n] {
		s.tail.add(r)
	}
	if err != nil {
		return n, fmt.Errorf("audit file sink: %w", err)
	}
	return n, nil
}

// writeGap writes the gap record for the records lost since the last one.
func (s *FileSink) writeGap() error {
	line := s.gap.line(s.cfg.CheckpointKey, s.cfg.Now())
	if _, err := s.writeAtomic(line, [][]byte{line}); err != nil {
		return fmt.Errorf("audit file sink: gap record: %w", err)
	}
	s.tail.skip(s.gap.fromSeq, s.gap.toSeq, s.gap.toMAC)
	s.gap = pendingGap{}
	return nil
}

// writeAtomic appends b, the concatenation of units (records, or one signed
// line), on a fresh line, and returns how many units were written whole. On a
// short write it cuts the file back to the end of the last whole unit, so no
// partial line survives; if even that fails, the next write starts a new line.
func (s *FileSink) writeAtomic(b []byte, units [][]byte) (int, error) {
	if s.partial {
		n, err := s.writeFile(s.f, []byte{'\n'})
		s.size += int64(n)
		if err != nil {
			return 0, err
		}
		s.partial = false
	}
	start := s.size
	n, err := s.writeFile(s.f, b)
	s.dirty = s.dirty || n > 0
	if err == nil && n == len(b) {
		s.size += int64(n)
		return len(units), nil
	}
	if err == nil {
		err = io.ErrShortWrite
	}
	whole, kept := 0, 0
	for _, u := range units {
		if kept+len(u) > n {
			break
		}
		kept += len(u)
		whole++
	}
	s.size = start + int64(n)
	if kept < n {
		if terr := s.f.Truncate(start + int64(kept)); terr == nil {
			s.size = start + int64(kept)
		} else {
			s.partial = true
		}
	}
	return whole, err
}

// rotate closes the active file with a checkpoint and starts a new one.
func (s *FileSink) rotate() error {
	if err := s.finish(reasonRotate); err != nil {
		return err
	}
	dst := s.cfg.Path + "." + strconv.Itoa(s.next)
	for {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		s.next++
		dst = s.cfg.Path + "." + strconv.Itoa(s.next)
	}
	if err := os.Rename(s.cfg.Path, dst); err != nil {
		return fmt.Errorf("audit file sink: rotate: %w", err)
	}
	s.next++
	syncDir(filepath.Dir(s.cfg.Path))
	return s.open()
}

// finish writes the pending gap record and the checkpoint (written for
// reason: a rotation, or Close), fsyncs and closes the active file. On an
// error the file stays open.
func (s *FileSink) finish(reason string) error {
	if s.f == nil {
		return nil
	}
	if s.gap.active {
		if err := s.writeGap(); err != nil {
			return err
		}
	}
	if cp := s.tail.checkpoint(s.cfg.CheckpointKey, s.cfg.Now(), reason); cp != nil {
		if _, err := s.writeAtomic(cp, [][]byte{cp}); err != nil {
			return fmt.Errorf("audit file sink: checkpoint: %w", err)
		}
		s.tail.reset(reason)
	}
	if err := s.sync(); err != nil {
		return err
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("audit file sink: %w", err)
	}
	return nil
}

func (s *FileSink) open() error {
	f, err := os.OpenFile(s.cfg.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit file sink: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit file sink: %w", err)
	}
	// A new file starts a new count; the chain's file position carries over.
	s.f, s.size, s.partial, s.tail = f, st.Size(), false, tail{rotations: s.tail.rotations}
	if s.size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], s.size-1); err != nil && !errors.Is(err, io.EOF) {
			f.Close()
			s.f = nil
			return fmt.Errorf("audit file sink: %w", err)
		}
		s.partial = last[0] != '\n'
	}
	return nil
}

func (s *FileSink) sync() error {
	if s.f == nil || !s.dirty {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("audit file sink: fsync: %w", err)
	}
	s.dirty = false
	return nil
}

func (s *FileSink) syncLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if err := s.sync(); err != nil {
				s.lastErr = err
				s.unhealthy.Store(true)
			}
			s.mu.Unlock()
		}
	}
}

// Healthy reports whether the last write, rotation and fsync succeeded.
func (s *FileSink) Healthy() bool {
	return !s.unhealthy.Load()
}

// SinkStats returns the sink's counters: records written whole (delivered)
// and records that could not be written (failed).
func (s *FileSink) SinkStats() SinkStats {
	return SinkStats{Type: "file", Healthy: s.Healthy(), Delivered: s.delivered.Load(), Failed: s.failed.Load()}
}

// ChainAnchor reports where the trail in the sink's files ended when it
// started: the last record of the active file, or of the newest rotated file
// when the active one holds none. It reports false for a new trail.
func (s *FileSink) ChainAnchor() (Anchor, bool) { return s.anchor, s.anchored }

// Close writes the pending gap record and the checkpoint for the records
// since the last one, fsyncs and closes the file. It is safe to call more than
// once.
func (s *FileSink) Close() error {
	if s.stop != nil {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.unhealthy.Store(true)
	err := s.finish(reasonClose)
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
	return err
}

// nextRotation returns one more than the highest N of the existing path.N files.
func nextRotation(path string) (int, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return 0, err
	}
	prefix, max := filepath.Base(path)+".", 0
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), prefix))
		if strings.HasPrefix(e.Name(), prefix) && err == nil && n > max {
			max = n
		}
	}
	return max + 1, nil
}

// syncDir fsyncs a directory so a rename survives a crash. Best effort: not
// every platform or file system supports it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
