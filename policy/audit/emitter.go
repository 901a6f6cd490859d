package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Emitter defaults.
const (
	DefaultQueueSize = 8192
	DefaultBatchSize = 256
)

// EmitterConfig configures an Emitter.
type EmitterConfig struct {
	// ChainKey is the HMAC-SHA256 key of the record chain, at least MinKeyLen
	// bytes. Verify needs the same key. It is copied.
	ChainKey []byte
	// QueueSize bounds the events waiting to be written; when full, Emit drops
	// the event and counts it. 0 means DefaultQueueSize.
	QueueSize int
	// QueueMaxBytes bounds the approximate serialized size of the events held
	// for the sinks, from Emit until every sink's Write of them returned
	// (content included). An event that does not fit is dropped and counted;
	// one event larger than the bound is still accepted when nothing else is
	// held. 0 means DefaultQueueMaxBytes.
	QueueMaxBytes int64
	// BatchSize caps the records handed to the sinks in one Write. The writer
	// batches greedily: it writes whatever is queued (up to BatchSize) as soon as
	// it is free, so batching adds no delay. 0 means DefaultBatchSize.
	BatchSize int
	// Now is the clock for events without a time and for drop markers. Nil
	// means time.Now.
	Now func() time.Time
	// Rand is the source of the 32-byte chain id that starts the chain. Nil
	// means crypto/rand. Tests set it for reproducible records.
	Rand io.Reader
	// OnSinkError, when set, is called from the writer goroutine with the index
	// of the sink (in NewEmitter's order) and the error of a failed Write or
	// Close. Errors from this package carry no content or secrets.
	OnSinkError func(sink int, err error)
	// OnDrop, when set, is called from the writer goroutine with the number of
	// events dropped since the last call, when the chain records them in a
	// "dropped" marker. It lets the wiring log drops, not only count them.
	OnDrop func(n uint64)
}

// Stats are the emitter's counters, for metrics. They only grow, except
// QueuedBytes, a gauge.
type Stats struct {
	// Emitted counts events accepted onto the queue.
	Emitted uint64
	// Dropped counts events that will never be recorded: the queue was full,
	// the emitter was closed, Close's deadline passed, or the event could not be
	// serialized. The chain records drops as "dropped" marker records.
	Dropped uint64
	// Written counts records (events and drop markers) handed to the sinks.
	Written uint64
	// SinkErrors counts failed sink Writes and Closes (one per sink per batch).
	SinkErrors uint64
	// QueuedBytes is the approximate size of the events held now (a gauge, not
	// a counter): at most QueueMaxBytes, or one event larger than it.
	QueuedBytes int64
}

// Emitter chains audit events and writes them to its sinks in the background.
// Emit never blocks on I/O. The chain fields (seq, prev, mac) are stamped by
// the single writer goroutine in queue order, which is emission order, so
// records are chained exactly in the order Emit accepted them and a dropped
// event never consumes a sequence number.
type Emitter struct {
	sinks     []Sink
	queue     chan queued
	budget    byteBudget
	now       func() time.Time
	batchSize int
	onErr     func(int, error)
	onDrop    func(uint64)
	chain     *chain
	// anchor links the chain to the end of the trail a sink found at start;
	// nil when there is none (a fresh file, stdout, a webhook).
	anchor *Anchor

	// mu orders Emit against Close: Emit holds it shared while it enqueues, so
	// once Close holds it exclusively no event can enter the queue unseen by the
	// final drain.
	mu     sync.RWMutex
	closed bool

	stop     chan struct{}
	done     chan struct{}
	ctx      context.Context // canceled when Close's deadline passes
	cancel   context.CancelFunc
	closeErr error // set by the writer before done is closed

	emitted, dropped, written, sinkErrors atomic.Uint64
	failing                               []atomic.Bool   // per sink: the last Write failed
	delivered, failed                     []atomic.Uint64 // per sink: records in Writes that succeeded, failed
	reported                              uint64          // drops already marked in the chain (writer only)
}

// queued is an event on the queue with the bytes it holds in the budget.
type queued struct {
	ev   Event
	size int64
}

// NewEmitter validates cfg, starts the writer goroutine and returns the
// emitter. The emitter owns the sinks: Close closes them.
func NewEmitter(cfg EmitterConfig, sinks ...Sink) (*Emitter, error) {
	if len(cfg.ChainKey) < MinKeyLen {
		return nil, fmt.Errorf("audit chain key: %w (%d bytes, need %d)", ErrWeakKey, len(cfg.ChainKey), MinKeyLen)
	}
	if cfg.QueueSize < 0 || cfg.BatchSize < 0 || cfg.QueueMaxBytes < 0 {
		return nil, fmt.Errorf("%w: queue and batch sizes must not be negative", ErrBadConfig)
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueMaxBytes == 0 {
		cfg.QueueMaxBytes = DefaultQueueMaxBytes
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	var id [32]byte
	if _, err := io.ReadFull(cfg.Rand, id[:]); err != nil {
		return nil, fmt.Errorf("audit chain id: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Emitter{
		sinks:     append([]Sink(nil), sinks...),
		queue:     make(chan queued, cfg.QueueSize),
		now:       cfg.Now,
		batchSize: cfg.BatchSize,
		onErr:     cfg.OnSinkError,
		onDrop:    cfg.OnDrop,
		chain:     newChain(cfg.ChainKey, id),
		anchor:    findAnchor(sinks),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		failing:   make([]atomic.Bool, len(sinks)),
		delivered: make([]atomic.Uint64, len(sinks)),
		failed:    make([]atomic.Uint64, len(sinks)),
	}
	e.budget.max = cfg.QueueMaxBytes
	go e.run()
	return e, nil
}

// Emit queues a copy of ev and returns at once. It never blocks on a sink:
// when the queue is full (by count or by bytes), or after Close, the event is
// dropped and counted.
// Emit sets V, stamps Time from the clock when it is zero and converts it to
// UTC; the chain fields are set later by the writer. The caller must not
// modify ev's slices (Guardrails, Limits) or Content after the call.
func (e *Emitter) Emit(ev *Event) {
	if ev == nil {
		return
	}
	c := *ev
	c.V = SchemaVersion
	if c.Time.IsZero() {
		c.Time = e.now()
	}
	c.Time = c.Time.UTC()
	size := c.approxSize()
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed || !e.budget.reserve(size) {
		e.dropped.Add(1)
		return
	}
	select {
	case e.queue <- queued{ev: c, size: size}:
		e.emitted.Add(1)
	default:
		e.budget.release(size)
		e.budget.refuse()
		e.dropped.Add(1)
	}
}

// Stats returns the counters.
func (e *Emitter) Stats() Stats {
	return Stats{
		Emitted:     e.emitted.Load(),
		Dropped:     e.dropped.Load(),
		Written:     e.written.Load(),
		SinkErrors:  e.sinkErrors.Load(),
		QueuedBytes: e.budget.held(),
	}
}

// Healthy reports whether the audit trail is being written: false when the
// emitter is closed, its queue is full by count, it refused an event for lack
// of bytes and has not yet drained to half of QueueMaxBytes, the last Write to
// any sink failed, or a sink with a Healthy method (every sink of this
// package) reports false. The wiring uses it for the fail-closed mode that
// refuses new requests while the trail is unwritable.
func (e *Emitter) Healthy() bool {
	e.mu.RLock()
	closed := e.closed
	e.mu.RUnlock()
	if closed || len(e.queue) >= cap(e.queue) || e.budget.full() {
		return false
	}
	for i := range e.failing {
		if e.failing[i].Load() {
			return false
		}
	}
	for _, s := range e.sinks {
		if h, ok := s.(interface{ Healthy() bool }); ok && !h.Healthy() {
			return false
		}
	}
	return true
}

// Close stops accepting events, writes everything queued, then closes the
// sinks (which write their checkpoints). If ctx ends first, the writes in
// progress are canceled, what is still queued is counted as dropped, and Close
// returns ctx's error without waiting further; the writer still closes the
// sinks. Otherwise it returns the errors of closing the sinks, joined. Calling
// Close again waits for the first Close to finish.
func (e *Emitter) Close(ctx context.Context) error {
	e.mu.Lock()
	first := !e.closed
	e.closed = true
	e.mu.Unlock()
	if first {
		close(e.stop)
	}
	select {
	case <-e.done:
		return e.closeErr
	case <-ctx.Done():
		e.cancel()
		return fmt.Errorf("audit: close: %w", ctx.Err())
	}
}

// run is the writer goroutine: it owns the chain.
func (e *Emitter) run() {
	defer close(e.done)
	defer e.cancel()
	recs := make([][]byte, 0, e.batchSize+2)
	for {
		select {
		case q := <-e.queue:
			e.write(recs, q)
		case <-e.stop:
			e.drain(recs)
			e.closeErr = e.closeSinks()
			return
		}
	}
}

// drain writes what is left in the queue after Close, until it is empty or
// Close's deadline passes; then it marks the drops in the chain.
func (e *Emitter) drain(recs [][]byte) {
	for {
		select {
		case q := <-e.queue:
			e.write(recs, q)
		default:
			if e.ctx.Err() == nil && e.dropped.Load() > e.reported {
				e.flush(recs[:0])
			}
			return
		}
	}
}

// write chains first and whatever else is queued, up to the batch size,
// without waiting, writes the batch, then releases the events' bytes: they
// count against QueueMaxBytes until every sink is done with them.
func (e *Emitter) write(recs [][]byte, first queued) {
	recs, held := e.appendEvent(recs[:0], first.ev), first.size
collect:
	for n := 1; n < e.batchSize; n++ {
		select {
		case q := <-e.queue:
			recs, held = e.appendEvent(recs, q.ev), held+q.size
		default:
			break collect
		}
	}
	e.flush(recs)
	e.budget.release(held)
}

// appendEvent chains ev onto recs. Past Close's deadline it counts ev as
// dropped instead, before it takes a sequence number, so the chain has no gap.
func (e *Emitter) appendEvent(recs [][]byte, ev Event) [][]byte {
	if e.ctx.Err() != nil {
		e.dropped.Add(1)
		return recs
	}
	recs = e.markDrops(e.begin(recs))
	line, err := e.chain.nextEvent(ev)
	if err != nil {
		// Only an unencodable time (year outside 0-9999) gets here.
		e.dropped.Add(1)
		return recs
	}
	return append(recs, line)
}

// flush writes recs to every sink, after appending a marker for any drops
// not yet marked.
func (e *Emitter) flush(recs [][]byte) {
	if e.dropped.Load() > e.reported && e.ctx.Err() == nil {
		recs = e.markDrops(e.begin(recs))
	}
	if len(recs) == 0 {
		return
	}
	for i, s := range e.sinks {
		err := s.Write(e.ctx, recs)
		e.failing[i].Store(err != nil)
		if err != nil {
			e.failed[i].Add(uint64(len(recs)))
			e.sinkErrors.Add(1)
			if e.onErr != nil {
				e.onErr(i, err)
			}
		} else {
			e.delivered[i].Add(uint64(len(recs)))
		}
	}
	e.written.Add(uint64(len(recs)))
}

// begin starts the chain with a start record linking it to the anchor, before
// the chain's first record.
func (e *Emitter) begin(recs [][]byte) [][]byte {
	if e.anchor != nil && e.chain.seq == 0 {
		recs = append(recs, e.chain.nextStart(e.now(), *e.anchor))
	}
	return recs
}

// markDrops appends a "dropped" marker for the drops not yet marked, and
// reports them to OnDrop.
func (e *Emitter) markDrops(recs [][]byte) [][]byte {
	d := e.dropped.Load()
	if d <= e.reported {
		return recs
	}
	recs = append(recs, e.chain.nextDrop(e.now(), d-e.reported))
	if e.onDrop != nil {
		e.onDrop(d - e.reported)
	}
	e.reported = d
	return recs
}

func (e *Emitter) closeSinks() error {
	var errs []error
	for i, s := range e.sinks {
		if err := s.Close(); err != nil {
			e.sinkErrors.Add(1)
			if e.onErr != nil {
				e.onErr(i, err)
			}
			errs = append(errs, fmt.Errorf("audit sink %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
