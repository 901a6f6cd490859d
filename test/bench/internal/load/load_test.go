package load

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRunCounts: every scheduled request is sent and classified.
func TestRunCounts(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		i := n
		mu.Unlock()
		if i%5 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	r := Run(context.Background(), NewClient(), Request{URL: srv.URL, Body: []byte("{}")},
		Config{Rate: 200, Duration: 250 * time.Millisecond, MaxInFlight: 100, Timeout: 5 * time.Second})
	require.EqualValues(t, 50, r.Scheduled)
	require.EqualValues(t, 40, r.OK)
	require.EqualValues(t, 10, r.Non2xx)
	require.EqualValues(t, 40, r.Latency.TotalCount())
	require.Equal(t, "status 503", r.Samples["non2xx"])
}

// TestRunOpenLoop: a server stall shows in the latency of the requests scheduled during it,
// measured from their scheduled time (no coordinated omission), and sends past MaxInFlight
// are dropped, not delayed.
func TestRunOpenLoop(t *testing.T) {
	const stall = 300 * time.Millisecond
	var once sync.Once
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { time.AfterFunc(stall, func() { close(gate) }) })
		<-gate // everything waits until the stall ends
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	r := Run(context.Background(), NewClient(), Request{URL: srv.URL},
		Config{Rate: 100, Duration: 200 * time.Millisecond, MaxInFlight: 10, Timeout: 5 * time.Second})
	require.EqualValues(t, 20, r.Scheduled)
	require.EqualValues(t, 10, r.OK)
	require.EqualValues(t, 10, r.Dropped, "sends past MaxInFlight are dropped")
	// The first request waited the whole stall; its latency counts from its slot.
	require.GreaterOrEqual(t, r.Latency.Max(), stall.Microseconds())
}

// TestReadingEvents: SSE events are counted across reads, an event end split between two
// reads included; events completed by one read have a gap of zero.
func TestReadingEvents(t *testing.T) {
	body := "data: a\n\ndata: b\n\ndata: c\n\ndata: d\n\n"
	tests := []struct {
		name     string
		r        io.Reader
		wantGaps int
		zeroGaps int
	}{
		{"one read", strings.NewReader(body), 3, 3},
		{"byte by byte", iotest.OneByteReader(strings.NewReader(body)), 3, 0},
		{"split at the blank line", &splitReader{parts: []string{"data: a\n", "\ndata: b\n\n", "data: c\n\ndata: d\n\n"}}, 3, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rd reading
			require.NoError(t, rd.read(tc.r, time.Now()))
			require.EqualValues(t, 4, rd.events)
			require.EqualValues(t, len(body), rd.bytes)
			require.Len(t, rd.gaps, tc.wantGaps)
			zero := 0
			for _, g := range rd.gaps {
				if g == 0 {
					zero++
				}
			}
			require.GreaterOrEqual(t, zero, tc.zeroGaps)
		})
	}
}

type splitReader struct{ parts []string }

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.parts[0])
	s.parts = s.parts[1:]
	return n, nil
}

// TestRunStream: a streamed response records time to first byte, events and gaps.
func TestRunStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for range 3 {
			_, _ = io.WriteString(w, "data: {}\n\n")
			_ = rc.Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}))
	defer srv.Close()
	r := Run(context.Background(), NewClient(), Request{URL: srv.URL, Stream: true},
		Config{Rate: 20, Duration: 100 * time.Millisecond, MaxInFlight: 10, Timeout: 5 * time.Second})
	require.EqualValues(t, 2, r.OK)
	require.EqualValues(t, 6, r.Events)
	require.EqualValues(t, 2, r.TTFB.TotalCount())
	require.EqualValues(t, 4, r.Gap.TotalCount())
}

func TestMerge(t *testing.T) {
	a, b := NewResult(), NewResult()
	_ = a.Latency.RecordValue(100)
	_ = b.Latency.RecordValue(300)
	a.OK, b.OK, b.Errors = 1, 1, 2
	b.Samples["error"] = "boom"
	a.Merge(b)
	require.EqualValues(t, 2, a.Latency.TotalCount())
	require.EqualValues(t, 2, a.OK)
	require.EqualValues(t, 2, a.Failed())
	require.Equal(t, "boom", a.Samples["error"])
}
