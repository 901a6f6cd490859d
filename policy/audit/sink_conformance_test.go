package audit_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/audit/audittest"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// Every sink the package ships passes the shared suite.
var (
	_ audittest.Sink = (*audit.WriterSink)(nil)
	_ audittest.Sink = (*audit.FileSink)(nil)
	_ audittest.Sink = (*audit.WebhookSink)(nil)
)

func TestWriterSinkConformance(t *testing.T) {
	t.Parallel()
	audittest.RunSinks(t, func(t *testing.T, _ audittest.Options) audittest.Target {
		w := &breakableWriter{}
		s := audit.NewWriterSink(w, ckPriv)
		t.Cleanup(func() { _ = s.Close() })
		return audittest.Target{
			Sink:   s,
			Output: func(*testing.T) [][]byte { return audittest.Lines(w.bytes()) },
			Break:  func() { w.broken.Store(true) },
			Repair: func() { w.broken.Store(false) },
		}
	})
}

func TestFileSinkConformance(t *testing.T) {
	t.Parallel()
	audittest.RunSinks(t, func(t *testing.T, _ audittest.Options) audittest.Target {
		path := filepath.Join(t.TempDir(), "audit.log")
		s, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, CheckpointKey: ckPriv})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return audittest.Target{
			Sink: s,
			Output: func(t *testing.T) [][]byte {
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				return audittest.Lines(b)
			},
			Break: func() {
				audit.SetFileSinkWrite(s, func(*os.File, []byte) (int, error) { return 0, errNoSpace })
			},
			Repair: func() { audit.SetFileSinkWrite(s, (*os.File).Write) },
		}
	})
}

func TestWebhookSinkConformance(t *testing.T) {
	t.Parallel()
	const (
		urlToken   = "conformance-url-token-0123456789"
		authValue  = "Bearer conformance-webhook-token-0123456789"
		refusalMsg = "receiver-refusal-text-with-echoed-content"
	)
	audittest.RunSinks(t, func(t *testing.T, o audittest.Options) audittest.Target {
		rcv := &conformanceReceiver{refusal: refusalMsg}
		srv := httptest.NewServer(rcv)
		t.Cleanup(srv.Close)
		var hookErrs errRecorder
		cfg := audit.WebhookConfig{
			URL: srv.URL + "/ingest?token=" + urlToken, Authorization: secrets.NewValue([]byte(authValue)),
			FlushInterval: time.Millisecond, BatchSize: 2, MaxAttempts: 1, OnError: hookErrs.add,
		}
		if o.HoldUntilClose {
			cfg.FlushInterval, cfg.BatchSize = time.Hour, 1000
		}
		s, err := audit.NewWebhookSink(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return audittest.Target{
			Sink:    s,
			Output:  func(*testing.T) [][]byte { return audittest.Lines(rcv.accepted()) },
			Break:   func() { rcv.refuse.Store(true) },
			Repair:  func() { rcv.refuse.Store(false) },
			Errors:  hookErrs.all,
			Secrets: []string{urlToken, authValue, "/ingest", refusalMsg},
		}
	})
}

// errNoSpace is the failure of a full disk.
var errNoSpace = errors.New("no space left on device")

// breakableWriter is a buffer that fails every Write while broken is set, like standard
// output whose reader went away.
type breakableWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	broken atomic.Bool
}

func (w *breakableWriter) Write(p []byte) (int, error) {
	if w.broken.Load() {
		return 0, io.ErrClosedPipe
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *breakableWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.b.Bytes())
}

// conformanceReceiver accepts NDJSON batches and keeps them. While refuse is set it fails
// every request, alternately by dropping the connection (a network error, which names the
// URL unless the sink strips it) and by answering 400 with refusal as the body (text the
// sink must not echo). A batch of more than two records (BatchSize 2) meets both.
type conformanceReceiver struct {
	refusal string
	refuse  atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	body    bytes.Buffer
}

func (r *conformanceReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.refuse.Load() {
		if r.refused.Add(1)%2 == 1 {
			panic(http.ErrAbortHandler) // the connection drops without a response
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, r.refusal)
		return
	}
	r.mu.Lock()
	r.body.Write(body)
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *conformanceReceiver) accepted() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.body.Bytes())
}
