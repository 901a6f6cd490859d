// Package load is the bench's open-loop HTTP load generator. Requests are sent on a fixed
// schedule whatever the server does, and each one's latency is measured from the time it
// was scheduled to be sent, not from when it actually went out: a stall in the server (or
// in the driver) shows up in the latency of every request it delayed instead of being
// hidden by fewer requests being sent (no coordinated omission). Latencies go into HDR
// histograms. Streamed (SSE) responses are read as they arrive: time to the first body byte
// and the gaps between events are recorded too.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds, in microseconds: 1 µs to 2 minutes, 3 significant digits.
const (
	histMin    = 1
	histMax    = 120_000_000
	histDigits = 3
)

// NewHistogram returns an empty latency histogram in microseconds.
func NewHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// Request is what every scheduled send posts.
type Request struct {
	URL    string
	Header http.Header
	Body   []byte
	Stream bool // the response is SSE: record time to first byte and event gaps
}

// Config is one open-loop run.
type Config struct {
	Rate        float64       // requests per second
	Duration    time.Duration // how long requests are scheduled
	MaxInFlight int           // a send due while this many are open is dropped (counted as an error)
	Timeout     time.Duration // per request
	// Progress, if set, is called about once a second with the run so far.
	Progress func(Snapshot)
}

// Snapshot is a run's progress.
type Snapshot struct {
	Elapsed                time.Duration
	Sent, Done, Failed     int64
	InFlight               int64
	Scheduled, Late        int64 // Late: sends that left more than 1 ms after their slot
	LatencyP50, LatencyP99 time.Duration
}

// Result is what one run measured.
type Result struct {
	Latency *hdrhistogram.Histogram // scheduled send → last body byte, µs
	TTFB    *hdrhistogram.Histogram // scheduled send → first body byte, µs (streams)
	Gap     *hdrhistogram.Histogram // between consecutive SSE events of a stream, µs

	Scheduled int64 // sends the schedule asked for
	OK        int64 // 2xx responses read to the end
	Non2xx    int64
	Errors    int64 // transport errors, timeouts, broken bodies
	Dropped   int64 // sends skipped because MaxInFlight requests were open
	Events    int64 // SSE events received
	Bytes     int64 // response body bytes
	Wall      time.Duration
	Samples   map[string]string // one example per kind of failure (never a body)
}

// Failed is every request that did not end in a complete 2xx.
func (r *Result) Failed() int64 { return r.Non2xx + r.Errors + r.Dropped }

// Merge adds o into r.
func (r *Result) Merge(o *Result) {
	r.Latency.Merge(o.Latency)
	r.TTFB.Merge(o.TTFB)
	r.Gap.Merge(o.Gap)
	r.Scheduled += o.Scheduled
	r.OK += o.OK
	r.Non2xx += o.Non2xx
	r.Errors += o.Errors
	r.Dropped += o.Dropped
	r.Events += o.Events
	r.Bytes += o.Bytes
	r.Wall += o.Wall
	for k, v := range o.Samples {
		if _, ok := r.Samples[k]; !ok {
			r.Samples[k] = v
		}
	}
}

// NewResult returns an empty Result.
func NewResult() *Result {
	return &Result{Latency: NewHistogram(), TTFB: NewHistogram(), Gap: NewHistogram(), Samples: map[string]string{}}
}

// NewClient returns an HTTP/1.1 client for loopback load: many idle connections kept, no
// compression, no proxy.
func NewClient() *http.Client {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 8192,
		IdleConnTimeout:     60 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     16 << 10,
		ReadBufferSize:      32 << 10,
	}
	return &http.Client{Transport: t}
}

// recorder collects results from concurrent requests.
type recorder struct {
	mu  sync.Mutex
	res *Result
}

func (rc *recorder) fail(kind, sample string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	switch kind {
	case "non2xx":
		rc.res.Non2xx++
	case "dropped":
		rc.res.Dropped++
	default:
		rc.res.Errors++
	}
	if _, ok := rc.res.Samples[kind]; !ok {
		rc.res.Samples[kind] = sample
	}
}

// Run sends req at cfg.Rate for cfg.Duration and waits for the last response.
func Run(ctx context.Context, c *http.Client, req Request, cfg Config) *Result {
	rec := &recorder{res: NewResult()}
	n := int64(cfg.Rate * cfg.Duration.Seconds())
	rec.res.Scheduled = n
	if n <= 0 {
		return rec.res
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	var inFlight, sent, done, late atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stopProgress := progress(cfg, start, rec, &sent, &done, &inFlight, &late)
	defer stopProgress()

	timer := time.NewTimer(0)
	<-timer.C
	for i := range n {
		slot := start.Add(time.Duration(i) * interval)
		if d := time.Until(slot); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				rec.res.Scheduled = i
				wg.Wait()
				rec.res.Wall = time.Since(start)
				return rec.res
			case <-timer.C:
			}
		} else if d < -time.Millisecond {
			late.Add(1)
		}
		if inFlight.Load() >= int64(cfg.MaxInFlight) {
			rec.fail("dropped", fmt.Sprintf("%d requests already open", cfg.MaxInFlight))
			continue
		}
		inFlight.Add(1)
		sent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			one(ctx, c, req, slot, cfg.Timeout, rec)
			inFlight.Add(-1)
			done.Add(1)
		}()
	}
	wg.Wait()
	rec.res.Wall = time.Since(start)
	return rec.res
}

// progress calls cfg.Progress every second until the returned function is called.
func progress(cfg Config, start time.Time, rec *recorder, sent, done, inFlight, late *atomic.Int64) func() {
	if cfg.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				rec.mu.Lock()
				s := Snapshot{Elapsed: time.Since(start), Sent: sent.Load(), Done: done.Load(), InFlight: inFlight.Load(),
					Failed: rec.res.Failed(), Late: late.Load(), Scheduled: rec.res.Scheduled,
					LatencyP50: time.Duration(rec.res.Latency.ValueAtQuantile(50)) * time.Microsecond,
					LatencyP99: time.Duration(rec.res.Latency.ValueAtQuantile(99)) * time.Microsecond}
				rec.mu.Unlock()
				cfg.Progress(s)
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

// one sends one request scheduled at slot and records it.
func one(ctx context.Context, c *http.Client, req Request, slot time.Time, timeout time.Duration, rec *recorder) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		rec.fail("error", err.Error())
		return
	}
	for k, v := range req.Header {
		hr.Header[k] = v
	}
	hr.ContentLength = int64(len(req.Body))
	resp, err := c.Do(hr)
	if err != nil {
		rec.fail(errKind(err), err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		rec.fail("non2xx", fmt.Sprintf("status %d", resp.StatusCode))
		return
	}
	var rd reading
	if err := rd.read(resp.Body, slot); err != nil {
		rec.fail(errKind(err), err.Error())
		return
	}
	end := time.Since(slot)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.res
	r.OK++
	r.Bytes += rd.bytes
	_ = r.Latency.RecordValue(micros(end))
	if req.Stream {
		r.Events += rd.events
		if rd.bytes > 0 {
			_ = r.TTFB.RecordValue(micros(rd.ttfb))
		}
		for _, g := range rd.gaps {
			_ = r.Gap.RecordValue(micros(g))
		}
	}
}

// reading is one response body read as it arrives.
type reading struct {
	bytes, events int64
	ttfb          time.Duration
	gaps          []time.Duration
	last          time.Time // arrival of the previous event
	prevNL        bool      // the previous read ended in '\n' (an event end may straddle reads)
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// read consumes body. An SSE event ends with a blank line ("\n\n"); every event completed by
// one read arrived at that read's time, so the first has a gap from the previous event and
// the others a gap of zero.
func (rd *reading) read(body io.Reader, slot time.Time) error {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	for {
		n, err := body.Read(buf)
		if n > 0 {
			now := time.Now()
			if rd.bytes == 0 {
				rd.ttfb = now.Sub(slot)
			}
			rd.bytes += int64(n)
			ev := int64(bytes.Count(buf[:n], []byte("\n\n")))
			if rd.prevNL && buf[0] == '\n' {
				ev++
			}
			rd.prevNL = buf[n-1] == '\n'
			for i := range ev {
				if !rd.last.IsZero() {
					g := now.Sub(rd.last)
					if i > 0 {
						g = 0
					}
					rd.gaps = append(rd.gaps, g)
				}
				rd.last = now
			}
			rd.events += ev
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func errKind(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "error"
}

func micros(d time.Duration) int64 {
	us := d.Microseconds()
	if us < histMin {
		return histMin
	}
	if us > histMax {
		return histMax
	}
	return us
}
