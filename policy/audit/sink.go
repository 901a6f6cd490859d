package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Sink receives batches of serialized audit records. Each element of batch is
// one complete record, a JSON line ending in "\n", as the Emitter chained it.
// Records are immutable and a sink may keep them after Write returns; the
// batch slice itself is reused by the caller and must not be kept.
//
// The Emitter calls Write and Close from its single writer goroutine, never
// concurrently. Write should return quickly: a sink that talks to something
// slow queues internally (as WebhookSink does), because while Write runs the
// emitter's queue fills and further events are dropped.
//
// The sinks of this package also report Healthy and SinkStats, and all of
// them pass the conformance suite in package audittest.
type Sink interface {
	Write(ctx context.Context, batch [][]byte) error
	Close() error
}

// Compile-time guards.
var (
	_ Sink = (*WriterSink)(nil)
	_ Sink = (*FileSink)(nil)
	_ Sink = (*WebhookSink)(nil)
)

// WriterSink writes records as JSON lines to an io.Writer (standard output, a
// pipe). With a checkpoint key it writes a signed checkpoint at Close, so a
// captured stream can be verified like a file.
type WriterSink struct {
	mu     sync.Mutex
	w      io.Writer
	key    ed25519.PrivateKey
	now    func() time.Time
	tail   tail
	closed bool

	delivered, failed atomic.Uint64
	unhealthy         atomic.Bool // the last write failed, or closed; read without the lock
}

// NewWriterSink returns a sink writing to w. checkpointKey may be nil (no
// checkpoint at Close; Verify then reports the stream as truncated). Close
// does not close w.
func NewWriterSink(w io.Writer, checkpointKey ed25519.PrivateKey) *WriterSink {
	return &WriterSink{w: w, key: checkpointKey, now: time.Now}
}

// Write writes the batch with one Write call on the underlying writer. A batch
// holding a record the Emitter did not chain is refused whole with
// ErrNotChained.
func (s *WriterSink) Write(_ context.Context, batch [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.failed.Add(uint64(len(batch)))
		return ErrClosed
	}
	var n int
	for _, r := range batch {
		if _, ok := parseChained(trimNewline(r)); !ok || r[len(r)-1] != '\n' {
			return ErrNotChained
		}
		n += len(r)
	}
	buf := make([]byte, 0, n)
	for _, r := range batch {
		buf = append(buf, r...)
	}
	if _, err := s.w.Write(buf); err != nil {
		s.failed.Add(uint64(len(batch)))
		s.unhealthy.Store(true)
		return fmt.Errorf("audit writer sink: %w", err)
	}
	s.unhealthy.Store(false)
	for _, r := range batch {
		s.tail.add(r)
	}
	s.delivered.Add(uint64(len(batch)))
	return nil
}

// Healthy reports whether the last write succeeded and the sink is open. It
// never waits for a write in progress.
func (s *WriterSink) Healthy() bool { return !s.unhealthy.Load() }

// SinkStats returns the sink's counters: records written (delivered) and
// records in failed writes (failed). It never waits for a write in progress.
func (s *WriterSink) SinkStats() SinkStats {
	return SinkStats{Type: "writer", Healthy: s.Healthy(), Delivered: s.delivered.Load(), Failed: s.failed.Load()}
}

// Close writes the checkpoint (when a key was given and records were written)
// and marks the sink closed.
func (s *WriterSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.unhealthy.Store(true)
	if cp := s.tail.checkpoint(s.key, s.now(), reasonClose); cp != nil {
		if _, err := s.w.Write(cp); err != nil {
			return fmt.Errorf("audit writer sink: checkpoint: %w", err)
		}
		s.tail.reset(reasonClose)
	}
	return nil
}

// tail tracks the chain position of the records written to one file or
// stream since its last checkpoint, and the file of the chain it is in.
type tail struct {
	seq    uint64
	mac    [macHexLen]byte
	count  uint64
	gapped bool   // a gap record was written since the last checkpoint
	first  uint64 // seq of the first record (or gap) since the last checkpoint; 0 when none
	// rotations counts the rotation checkpoints written since the chain's
	// first record: the current file is file rotations+1 of the chain.
	rotations uint64
}

// add records rec as written. It reports false for a record without chain
// members, which is not counted.
func (t *tail) add(rec []byte) bool {
	c, ok := parseChained(trimNewline(rec))
	if !ok {
		return false
	}
	t.begin(c.seq)
	t.seq = c.seq
	copy(t.mac[:], c.mac)
	t.count++
	return true
}

// skip moves the position past a gap record for seq from to to, ending with
// mac.
func (t *tail) skip(from, to uint64, mac string) {
	t.begin(from)
	t.seq = to
	copy(t.mac[:], mac)
	t.gapped = true
}

// begin notes seq as written: the first since the last checkpoint, and the
// start of a chain (its first file) when it is 1.
func (t *tail) begin(seq uint64) {
	if seq == 1 {
		t.rotations = 0
	}
	if t.first == 0 {
		t.first = seq
	}
}

// reset starts counting again after a checkpoint was written for reason.
func (t *tail) reset(reason string) {
	t.count, t.gapped, t.first = 0, false, 0
	if reason == reasonRotate {
		t.rotations++
	}
}

// checkpoint returns the signed checkpoint, written for reason, for the
// records (and gap) since the last one, or nil when there is no key or
// nothing to cover. The caller calls reset once the checkpoint is written.
func (t *tail) checkpoint(key ed25519.PrivateKey, now time.Time, reason string) []byte {
	if len(key) != ed25519.PrivateKeySize || (t.count == 0 && !t.gapped) {
		return nil
	}
	return signCheckpoint(key, checkpointRecord{Seq: t.seq, LastMAC: string(t.mac[:]), Count: t.count,
		FirstSeq: t.first, ChainFile: t.rotations + 1, Reason: reason, Time: now})
}
