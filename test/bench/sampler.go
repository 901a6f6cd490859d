package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-ai/tollgate/test/bench/internal/procstat"
	"github.com/tollgate-ai/tollgate/test/bench/internal/results"
)

// sampler reads every second the resident memory of the stack's processes, Tollgate's
// goroutines (its admin /metrics) and the load average. It keeps the whole timeline and
// the maxima of the current segment.
type sampler struct {
	start      time.Time
	pids       map[string]int
	metricsURL string
	client     *http.Client

	mu       sync.Mutex
	label    string
	timeline []results.Tick
	rssMax   map[string]int64
	gorMax   int64
	loadMax  float64
}

func newSampler(pids map[string]int, metricsURL string) *sampler {
	return &sampler{start: time.Now(), pids: pids, metricsURL: metricsURL,
		client: &http.Client{Timeout: 2 * time.Second}, rssMax: map[string]int64{}}
}

// setPid replaces a process's pid (Tollgate restarted with a profile).
func (s *sampler) setPid(name string, pid int) {
	s.mu.Lock()
	s.pids[name] = pid
	s.mu.Unlock()
}

// run samples until ctx ends.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *sampler) sample() {
	s.mu.Lock()
	pids := make(map[string]int, len(s.pids))
	for k, v := range s.pids {
		pids[k] = v
	}
	s.mu.Unlock()
	tick := results.Tick{T: time.Since(s.start).Seconds(), RSS: map[string]int64{}}
	for name, pid := range pids {
		if sm, err := procstat.Read(pid); err == nil {
			tick.RSS[name] = sm.RSS
		}
	}
	tick.Goroutines = s.goroutines()
	if la, err := procstat.LoadAvg(); err == nil {
		tick.Load1 = la[0]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tick.Label = s.label
	s.timeline = append(s.timeline, tick)
	for k, v := range tick.RSS {
		s.rssMax[k] = max(s.rssMax[k], v)
	}
	s.gorMax = max(s.gorMax, tick.Goroutines)
	s.loadMax = max(s.loadMax, tick.Load1)
}

// goroutines reads go_goroutines from Tollgate's /metrics (0 when unavailable).
func (s *sampler) goroutines() int64 {
	if s.metricsURL == "" {
		return 0
	}
	resp, err := s.client.Get(s.metricsURL)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	return parseGoroutines(bufio.NewScanner(resp.Body))
}

// parseGoroutines finds the go_goroutines sample in a Prometheus text exposition.
func parseGoroutines(sc *bufio.Scanner) int64 {
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int64(f)
			}
		}
	}
	return 0
}

// begin starts a segment: its label goes on the ticks and its maxima start afresh.
func (s *sampler) begin(label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.label = label
	s.rssMax = map[string]int64{}
	s.gorMax, s.loadMax = 0, 0
}

// end returns the segment's maxima. A segment shorter than a second may have no tick: it
// then takes one sample itself.
func (s *sampler) end() (map[string]int64, int64, float64) {
	s.mu.Lock()
	empty := len(s.rssMax) == 0
	s.mu.Unlock()
	if empty {
		s.sample()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.label = ""
	return s.rssMax, s.gorMax, s.loadMax
}

// ticks returns the timeline so far.
func (s *sampler) ticks() []results.Tick {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]results.Tick(nil), s.timeline...)
}
