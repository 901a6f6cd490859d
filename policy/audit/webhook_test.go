package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// receiver records webhook requests and answers with the statuses in plan,
// then 200.
type receiver struct {
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	plan    []int
	srv     *httptest.Server
}

func newReceiver(t *testing.T, plan ...int) *receiver {
	r := &receiver{plan: plan}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusOK
		if len(r.plan) > 0 {
			status, r.plan = r.plan[0], r.plan[1:]
		}
		r.bodies = append(r.bodies, body)
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() ([][]byte, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]http.Header(nil), r.headers...)
}

// records splits a body into records, for either format.
func records(t *testing.T, format audit.WebhookFormat, body []byte) [][]byte {
	t.Helper()
	var out [][]byte
	if format == audit.WebhookJSONArray {
		var arr []json.RawMessage
		require.NoError(t, json.Unmarshal(body, &arr))
		for _, r := range arr {
			out = append(out, r)
		}
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	return out
}

func TestWebhookBatches(t *testing.T) {
	t.Parallel()
	for _, format := range []audit.WebhookFormat{audit.WebhookNDJSON, audit.WebhookJSONArray} {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t)
			wh, err := audit.NewWebhookSink(audit.WebhookConfig{
				URL: rcv.srv.URL, Format: format, BatchSize: 10, FlushInterval: time.Hour,
				Authorization: secrets.NewValue([]byte("Bearer audit-receiver-token")),
			})
			require.NoError(t, err)
			e := newEmitter(t, audit.EmitterConfig{}, wh)
			for i := range 50 {
				ev := sampleEvent(i)
				e.Emit(&ev)
			}
			closeEmitter(t, e)

			bodies, headers := rcv.requests()
			require.Len(t, bodies, 5, "50 events in batches of 10")
			var seq uint64
			for i, b := range bodies {
				require.Equal(t, "Bearer audit-receiver-token", headers[i].Get("Authorization"))
				want := "application/x-ndjson"
				if format == audit.WebhookJSONArray {
					want = "application/json"
				}
				require.Equal(t, want, headers[i].Get("Content-Type"))
				for _, r := range records(t, format, b) {
					var ev audit.Event
					require.NoError(t, json.Unmarshal(r, &ev))
					seq++
					require.Equal(t, seq, ev.Seq, "records arrive in chain order")
				}
			}
			require.Equal(t, uint64(50), seq)
			require.Equal(t, audit.WebhookStats{Delivered: 50, Requests: 5}, wh.Stats())
		})
	}
}

func TestWebhookFlushInterval(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	wh, err := audit.NewWebhookSink(audit.WebhookConfig{URL: rcv.srv.URL, BatchSize: 100, FlushInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	defer wh.Close()
	require.NoError(t, wh.Write(context.Background(), [][]byte{[]byte("{\"v\":1}\n"), []byte("{\"v\":1}\n")}))
	require.Eventually(t, func() bool { b, _ := rcv.requests(); return len(b) == 1 }, 5*time.Second, time.Millisecond)
}

func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		plan    []int
		want    audit.WebhookStats
		healthy bool
	}{
		{"500 then success", []int{500}, audit.WebhookStats{Delivered: 3, Requests: 2, Retries: 1}, true},
		{"429 and 503 then success", []int{429, 503}, audit.WebhookStats{Delivered: 3, Requests: 3, Retries: 2}, true},
		{"400 is not retried", []int{400}, audit.WebhookStats{Failed: 3, Requests: 1}, false},
		{"gives up after max attempts", []int{500, 500, 500, 500}, audit.WebhookStats{Failed: 3, Requests: 3, Retries: 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, tc.plan...)
			wh, err := audit.NewWebhookSink(audit.WebhookConfig{
				URL: rcv.srv.URL, BatchSize: 3, MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
			})
			require.NoError(t, err)
			recs := [][]byte{[]byte("{\"v\":1,\"n\":1}\n"), []byte("{\"v\":1,\"n\":2}\n"), []byte("{\"v\":1,\"n\":3}\n")}
			require.NoError(t, wh.Write(context.Background(), recs))
			require.Eventually(t, func() bool {
				s := wh.Stats()
				return s.Delivered+s.Failed == 3
			}, 5*time.Second, time.Millisecond)
			require.Equal(t, tc.want, wh.Stats())
			require.Equal(t, tc.healthy, wh.Healthy())
			bodies, _ := rcv.requests()
			for _, b := range bodies {
				require.Equal(t, bytes.Join(recs, nil), b, "a retry resends the same batch")
			}
			require.NoError(t, wh.Close())
		})
	}
}

func TestWebhookBoundedDropWhenDown(t *testing.T) {
	t.Parallel()
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close() // nothing listens there any more
	for _, tc := range []struct{ name, url string }{
		{"503 always", newReceiver(t, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503).srv.URL},
		{"connection refused", refusedURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wh, err := audit.NewWebhookSink(audit.WebhookConfig{
				URL: tc.url, QueueSize: 10, BatchSize: 10, MaxAttempts: 3,
				MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, CloseTimeout: 100 * time.Millisecond,
			})
			require.NoError(t, err)
			var queueFull int
			for range 100 {
				if err := wh.Write(context.Background(), [][]byte{[]byte("{\"v\":1}\n")}); err != nil {
					require.ErrorIs(t, err, audit.ErrQueueFull)
					queueFull++
				}
			}
			s := wh.Stats()
			require.GreaterOrEqual(t, s.Dropped, uint64(80), "queue (10) + one batch in flight (10) at most")
			require.Equal(t, uint64(queueFull), s.Dropped)
			require.False(t, wh.Healthy())

			err = wh.Close()
			require.ErrorIs(t, err, audit.ErrDelivery)
			require.NotContains(t, err.Error(), "127.0.0.1", "errors never echo the URL")
			s = wh.Stats()
			require.Zero(t, s.Delivered)
			require.Equal(t, uint64(100), s.Dropped+s.Failed, "every record is accounted for")
		})
	}
}

// TestEmitNeverBlocksOnHangingReceiver calls Emit 10000 times while the
// receiver hangs: every call returns, and what could not be queued is counted
// as dropped. No timing is asserted.
func TestEmitNeverBlocksOnHangingReceiver(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var hung atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	wh, err := audit.NewWebhookSink(audit.WebhookConfig{URL: srv.URL, QueueSize: 100, BatchSize: 10, CloseTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	e := newEmitter(t, audit.EmitterConfig{QueueSize: 64}, wh)
	ev := sampleEvent(0)
	for range 10000 {
		e.Emit(&ev)
	}
	st, ws := e.Stats(), wh.Stats()
	require.Equal(t, uint64(10000), st.Emitted+st.Dropped)
	require.Positive(t, st.Dropped+ws.Dropped, "the hanging receiver costs drops, never a blocked Emit")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.ErrorIs(t, e.Close(ctx), audit.ErrDelivery, "the queued records were lost")
	require.Positive(t, hung.Load())
}

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  audit.WebhookConfig
	}{
		{"no url", audit.WebhookConfig{}},
		{"not http", audit.WebhookConfig{URL: "ftp://collector.example/?token=s3cr3t-t0ken"}},
		{"no host", audit.WebhookConfig{URL: "https:///path?token=s3cr3t-t0ken"}},
		{"bad format", audit.WebhookConfig{URL: "https://collector.example/", Format: "xml"}},
		{"negative", audit.WebhookConfig{URL: "https://collector.example/", QueueSize: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := audit.NewWebhookSink(tc.cfg)
			require.ErrorIs(t, err, audit.ErrBadConfig)
			require.NotContains(t, err.Error(), "s3cr3t-t0ken")
		})
	}
}
