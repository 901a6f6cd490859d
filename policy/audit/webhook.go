package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// WebhookFormat is the body format of a webhook POST.
type WebhookFormat string

// Webhook body formats.
const (
	// WebhookNDJSON posts the records as JSON lines, byte for byte as chained
	// (Content-Type application/x-ndjson). The default.
	WebhookNDJSON WebhookFormat = "ndjson"
	// WebhookJSONArray posts a JSON array of the records (Content-Type
	// application/json). The array elements are the chained bytes without
	// their newline, so each still verifies.
	WebhookJSONArray WebhookFormat = "json_array"
)

// WebhookSink defaults.
const (
	DefaultWebhookBatchSize    = 100
	DefaultWebhookFlush        = time.Second
	DefaultWebhookQueueSize    = 10000
	DefaultWebhookMaxAttempts  = 5
	DefaultWebhookMinBackoff   = 100 * time.Millisecond
	DefaultWebhookMaxBackoff   = 10 * time.Second
	DefaultWebhookTimeout      = 10 * time.Second
	DefaultWebhookCloseTimeout = 5 * time.Second
)

// WebhookConfig configures a WebhookSink. Zero fields take the defaults above.
type WebhookConfig struct {
	// URL is the http or https endpoint to POST to.
	URL string
	// Authorization is sent as the Authorization header value when set. It is
	// a secrets.Value, so printing the config never shows it.
	Authorization secrets.Value
	// Format is the body format; "" means WebhookNDJSON.
	Format WebhookFormat
	// BatchSize is the most records per POST.
	BatchSize int
	// FlushInterval is the longest a record waits for its batch to fill.
	FlushInterval time.Duration
	// QueueSize bounds the records waiting to be sent; when full, Write drops
	// and counts them.
	QueueSize int
	// QueueMaxBytes bounds the bytes of the records held, from Write until
	// their batch is delivered or given up on; records that do not fit are
	// dropped and counted. 0 means DefaultQueueMaxBytes.
	QueueMaxBytes int64
	// MaxAttempts is the number of tries per batch (1 means no retry). Network
	// errors, 5xx and 429 are retried with exponential backoff and jitter,
	// from MinBackoff doubling up to MaxBackoff; any other status fails the
	// batch at once.
	MaxAttempts int
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	// Timeout bounds one POST when Client is nil.
	Timeout time.Duration
	// CloseTimeout bounds the final flush in Close.
	CloseTimeout time.Duration
	// Client sends the requests; nil means a client with Timeout.
	Client *http.Client
	// OnError, when set, is called from the sender goroutine when a batch is
	// given up on, with an error wrapping ErrDelivery that says how many
	// records were lost and why. It never names the URL.
	OnError func(err error)
}

// WebhookStats are the webhook sink's counters. They only grow.
type WebhookStats struct {
	// Delivered counts records the receiver accepted (2xx).
	Delivered uint64
	// Dropped counts records refused because the queue was full or the sink closed.
	Dropped uint64
	// Failed counts records given up on: retries exhausted, a non-retryable
	// status, or Close's deadline.
	Failed uint64
	// Requests counts POSTs sent, retries included.
	Requests uint64
	// Retries counts POSTs that were retries.
	Retries uint64
}

// WebhookSink POSTs batches of records to an HTTP endpoint. Write only queues
// (it never waits on the network); a background goroutine batches, sends and
// retries.
type WebhookSink struct {
	cfg    WebhookConfig
	url    string
	queue  chan []byte
	budget byteBudget
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.RWMutex // Write holds it shared while queueing; Close exclusively
	closed bool
	stop   chan struct{}
	done   chan struct{}

	delivered, dropped, failed, requests, retries atomic.Uint64
	failing                                       atomic.Bool // the last batch was given up on
}

// NewWebhookSink validates cfg and starts the sender goroutine.
func NewWebhookSink(cfg WebhookConfig) (*WebhookSink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Never echo the URL: it may carry a token.
		return nil, fmt.Errorf("%w: webhook url: must be an http or https URL", ErrBadConfig)
	}
	switch cfg.Format {
	case "":
		cfg.Format = WebhookNDJSON
	case WebhookNDJSON, WebhookJSONArray:
	default:
		return nil, fmt.Errorf("%w: webhook format: must be ndjson or json_array", ErrBadConfig)
	}
	if cfg.BatchSize < 0 || cfg.QueueSize < 0 || cfg.QueueMaxBytes < 0 || cfg.MaxAttempts < 0 || cfg.FlushInterval < 0 ||
		cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 || cfg.Timeout < 0 || cfg.CloseTimeout < 0 {
		return nil, fmt.Errorf("%w: webhook: sizes and durations must not be negative", ErrBadConfig)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.BatchSize, DefaultWebhookBatchSize)
	def(&cfg.QueueSize, DefaultWebhookQueueSize)
	def(&cfg.MaxAttempts, DefaultWebhookMaxAttempts)
	if cfg.QueueMaxBytes == 0 {
		cfg.QueueMaxBytes = DefaultQueueMaxBytes
	}
	defD(&cfg.FlushInterval, DefaultWebhookFlush)
	defD(&cfg.MinBackoff, DefaultWebhookMinBackoff)
	defD(&cfg.MaxBackoff, DefaultWebhookMaxBackoff)
	defD(&cfg.Timeout, DefaultWebhookTimeout)
	defD(&cfg.CloseTimeout, DefaultWebhookCloseTimeout)
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &WebhookSink{
		cfg: cfg, url: u.String(), queue: make(chan []byte, cfg.QueueSize),
		ctx: ctx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.budget.max = cfg.QueueMaxBytes
	go s.run()
	return s, nil
}

// Write queues the records without waiting. Records that do not fit (by
// count or by bytes) are dropped and counted, and Write returns an error
// wrapping ErrQueueFull.
func (s *WebhookSink) Write(_ context.Context, batch [][]byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.Add(uint64(len(batch)))
		return ErrClosed
	}
	var dropped int
	for _, r := range batch {
		if !s.budget.reserve(int64(len(r))) {
			dropped++
			continue
		}
		select {
		case s.queue <- r:
		default:
			s.budget.release(int64(len(r)))
			s.budget.refuse()
			dropped++
		}
	}
	if dropped > 0 {
		s.dropped.Add(uint64(dropped))
		return fmt.Errorf("audit webhook: %w: %d records dropped", ErrQueueFull, dropped)
	}
	return nil
}

// Stats returns the counters.
func (s *WebhookSink) Stats() WebhookStats {
	return WebhookStats{
		Delivered: s.delivered.Load(), Dropped: s.dropped.Load(), Failed: s.failed.Load(),
		Requests: s.requests.Load(), Retries: s.retries.Load(),
	}
}

// SinkStats returns the counters as the Emitter reports them per sink.
func (s *WebhookSink) SinkStats() SinkStats {
	st := s.Stats()
	return SinkStats{Type: "webhook", Healthy: s.Healthy(), Delivered: st.Delivered, Failed: st.Failed,
		Dropped: st.Dropped, Retries: st.Retries}
}

// QueuedBytes returns the bytes of the records held now (queued or in the
// batch being sent).
func (s *WebhookSink) QueuedBytes() int64 { return s.budget.held() }

// Healthy reports false when the sink is closed, its queue is full (by count,
// or it refused a record for lack of bytes and has not yet drained to half of
// QueueMaxBytes), or the last batch could not be delivered.
func (s *WebhookSink) Healthy() bool {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	return !closed && !s.failing.Load() && len(s.queue) < cap(s.queue) && !s.budget.full()
}

// Close stops accepting records and sends what is queued, giving up after
// CloseTimeout. It returns an error wrapping ErrDelivery when records were
// lost during the final flush.
func (s *WebhookSink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	failedBefore := s.failed.Load()
	close(s.stop)
	t := time.AfterFunc(s.cfg.CloseTimeout, s.cancel)
	<-s.done
	t.Stop()
	s.cancel()
	if n := s.failed.Load() - failedBefore; n > 0 {
		return fmt.Errorf("audit webhook: close: %w: %d records", ErrDelivery, n)
	}
	return nil
}

// run is the sender goroutine.
func (s *WebhookSink) run() {
	defer close(s.done)
	var batch [][]byte
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case r := <-s.queue:
			if len(batch) == 0 {
				timer.Reset(s.cfg.FlushInterval)
			}
			if batch = append(batch, r); len(batch) >= s.cfg.BatchSize {
				timer.Stop()
				s.send(batch)
				batch = nil
			}
		case <-timer.C:
			s.send(batch)
			batch = nil
		case <-s.stop:
			timer.Stop()
			for {
				select {
				case r := <-s.queue:
					if batch = append(batch, r); len(batch) >= s.cfg.BatchSize {
						s.send(batch)
						batch = nil
					}
				default:
					s.send(batch)
					return
				}
			}
		}
	}
}

// send delivers one batch, retrying with backoff, then releases its bytes.
func (s *WebhookSink) send(batch [][]byte) {
	if len(batch) == 0 {
		return
	}
	var held int64
	for _, r := range batch {
		held += int64(len(r))
	}
	defer s.budget.release(held)
	body := s.encode(batch)
	backoff := s.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			s.retries.Add(1)
		}
		retry, err := s.post(body)
		if err == nil {
			s.delivered.Add(uint64(len(batch)))
			s.failing.Store(false)
			return
		}
		if !retry || attempt >= s.cfg.MaxAttempts || !s.sleep(backoff) {
			s.failed.Add(uint64(len(batch)))
			s.failing.Store(true)
			if s.cfg.OnError != nil {
				s.cfg.OnError(fmt.Errorf("audit webhook: %d records lost after %d attempt(s): %w", len(batch), attempt, err))
			}
			return
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// sleep waits about d (with jitter: between d/2 and d) and reports false if
// the sink is shutting down past its deadline.
func (s *WebhookSink) sleep(d time.Duration) bool {
	if d > 1 {
		d = d/2 + rand.N(d/2)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// post sends body once. It reports whether a failure is worth retrying.
func (s *WebhookSink) post(body []byte) (retry bool, err error) {
	s.requests.Add(1)
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%w: build request", ErrDelivery)
	}
	if s.cfg.Format == WebhookJSONArray {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	if s.cfg.Authorization.Len() > 0 {
		req.Header.Set("Authorization", s.cfg.Authorization.Reveal())
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		// *url.Error names the URL, which may carry a token: keep the cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return s.ctx.Err() == nil, fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
	return retry, fmt.Errorf("%w: status %d", ErrDelivery, resp.StatusCode)
}

func (s *WebhookSink) encode(batch [][]byte) []byte {
	n := 2
	for _, r := range batch {
		n += len(r) + 1
	}
	body := make([]byte, 0, n)
	if s.cfg.Format != WebhookJSONArray {
		for _, r := range batch {
			body = append(body, r...)
		}
		return body
	}
	body = append(body, '[')
	for i, r := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, trimNewline(r)...)
	}
	return append(body, ']')
}
