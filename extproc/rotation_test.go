package extproc_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// swapSource is what cmd/tollgate's gateway is to the server: the snapshot in force, swapped
// atomically by a reload.
type swapSource struct {
	p atomic.Pointer[policy.Snapshot]
}

func (s *swapSource) Snapshot() *policy.Snapshot { return s.p.Load() }

// rotation drives requests through a server over bufconn while a test reloads configs.
type rotation struct {
	t     *testing.T
	fx    *policytest.Fixture
	src   *swapSource
	h     *harness
	logs  *observer.ObservedLogs
	audit *fakeAuditor
	reg   *prometheus.Registry

	mu       sync.RWMutex // held for writing while a reload swaps the snapshot and the stage
	stage    int
	inflight [8]atomic.Int64 // requests running, by the stage they started in
	done     atomic.Int64
	failures atomic.Int64
	firstErr atomic.Pointer[string]
	sent     sync.Map // credential header value -> *atomic.Int64
	// accept reports whether the provider accepts the credential now.
	accept func(auth string) bool
}

func newRotation(t *testing.T, fx *policytest.Fixture, accept func(string) bool) *rotation {
	core, logs := observer.New(zapcore.DebugLevel)
	r := &rotation{t: t, fx: fx, src: &swapSource{}, logs: logs, accept: accept,
		audit: &fakeAuditor{healthy: true}, reg: prometheus.NewRegistry()}
	r.src.p.Store(fx.Snapshot)
	srv := extproc.New(r.src, zap.New(core), extproc.WithClock(func() time.Time { return fx.Now }),
		extproc.WithAudit(extproc.AuditConfig{Auditor: r.audit}),
		extproc.WithMetrics(extproc.NewMetrics(r.reg, extproc.MetricsOptions{PerKeyLabels: true})))
	r.h = serveServer(t, fx, srv)
	return r
}

// reload compiles cfg, as the gateway does, and swaps it in. A config that does not compile
// is refused and the snapshot in force keeps serving.
func (r *rotation) reload(cfg policy.Config) error {
	s, err := policy.Compile(cfg, "", policytest.Resolver(), r.fx.Now)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.src.p.Store(s)
	r.stage++
	r.mu.Unlock()
	return nil
}

// drain waits until the requests that started before the current stage have ended, as an
// operator waits for every replica and its open streams before revoking a provider key.
func (r *rotation) drain() {
	r.mu.RLock()
	cur := r.stage
	r.mu.RUnlock()
	require.Eventually(r.t, func() bool {
		for s := 0; s < cur; s++ {
			if r.inflight[s].Load() != 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond)
}

// waitFor waits until n more requests have completed.
func (r *rotation) waitFor(n int64) {
	target := r.done.Load() + n
	require.Eventually(r.t, func() bool { return r.done.Load() >= target || r.failures.Load() > 0 },
		30*time.Second, time.Millisecond, "requests stalled")
}

func (r *rotation) fail(msg string) {
	r.failures.Add(1)
	r.firstErr.CompareAndSwap(nil, &msg)
}

// one runs one chat request to the point where Tollgate sets the provider credential, checks
// the provider accepts it, and ends the stream like Envoy does.
func (r *rotation) one(ctx context.Context) {
	r.mu.RLock()
	st := r.stage
	r.inflight[st].Add(1)
	r.mu.RUnlock()
	defer r.inflight[st].Add(-1)

	s, err := r.h.client.Process(ctx)
	if err != nil {
		r.fail("open: " + err.Error())
		return
	}
	defer func() { _ = s.CloseSend(); _, _ = s.Recv() }()
	if err := s.Send(chatHeaders(r.fx.Keys["valid"])); err != nil {
		r.fail("send headers: " + err.Error())
		return
	}
	resp, err := s.Recv()
	if err != nil || resp.GetImmediateResponse() != nil {
		r.fail(fmt.Sprintf("headers refused: %v %d", err, resp.GetImmediateResponse().GetStatus().GetCode()))
		return
	}
	if err := s.Send(reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"PROMPT-rotation-7f3a"}]}`)); err != nil {
		r.fail("send body: " + err.Error())
		return
	}
	resp, err = s.Recv()
	if err != nil || resp.GetImmediateResponse() != nil {
		r.fail(fmt.Sprintf("body refused: %v %d", err, resp.GetImmediateResponse().GetStatus().GetCode()))
		return
	}
	auth := setHeaders(resp.GetRequestBody().GetResponse().GetHeaderMutation())["authorization"]
	if !r.accept(auth) {
		r.fail("the provider refused the credential sent")
		return
	}
	n, _ := r.sent.LoadOrStore(auth, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	r.done.Add(1)
}

// run starts workers sending requests until stop is called; stop returns the number done.
func (r *rotation) run(workers int) (stop func() int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				r.one(context.Background())
			}
		})
	}
	return func() int64 {
		cancel()
		wg.Wait()
		return r.done.Load()
	}
}

func (r *rotation) requireNoFailures(total int64) {
	if p := r.firstErr.Load(); p != nil {
		r.t.Fatalf("%d failed requests of %d; first: %s", r.failures.Load(), total, *p)
	}
	require.GreaterOrEqual(r.t, total, int64(1000))
	r.t.Logf("%d requests, none failed", total)
}

func (r *rotation) count(auth string) int64 {
	n, ok := r.sent.Load(auth)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// TestKEKRotationUnderLoad rotates the KEK of a sealed provider key from k1 to k2 while
// requests flow, in the documented order: add k2, rewrap the value under k2 (what `tollgate
// secrets rewrap` writes), remove k1. A premature removal of k1 is refused as a reload, and
// the config in force keeps serving. Not one request fails.
func TestKEKRotationUnderLoad(t *testing.T) {
	sealedK1 := policytest.Seal(t, "k1", policytest.OpenAIKey)
	fx := policytest.NewWith(t, func(c *policy.Config) {
		c.Security.KEKs = policytest.KEKs("k1")
		c.Providers[0].Credential = sealedK1
	})
	r := newRotation(t, fx, func(auth string) bool { return auth == "Bearer "+policytest.OpenAIKey })
	stop := r.run(8)
	cfg := fx.Config

	r.waitFor(200)
	cfg.Security.KEKs = policytest.KEKs("k1", "k2")
	require.NoError(t, r.reload(cfg), "add k2")

	r.waitFor(200)
	ring, err := policy.LoadKeyring(cfg.Security.KEKs, "", policytest.Resolver())
	require.NoError(t, err)
	sealedK2, err := ring.Rewrap(sealedK1, "k2", rand.Reader)
	ring.Wipe()
	require.NoError(t, err)
	early := cfg
	early.Security.KEKs = policytest.KEKs("k2")
	require.Error(t, r.reload(early), "k1 removed before the rewrap: refused, nothing fails")
	cfg.Providers = append([]policy.ProviderConfig(nil), cfg.Providers...)
	cfg.Providers[0].Credential = sealedK2
	require.NoError(t, r.reload(cfg), "rewrapped under k2")

	r.waitFor(200)
	cfg.Security.KEKs = policytest.KEKs("k2")
	require.NoError(t, r.reload(cfg), "k1 removed")
	r.waitFor(400)
	total := stop()
	r.requireNoFailures(total)
	require.Equal(t, 3, r.stage)
	// A distinctive prompt: "hi" also occurs in random key ids (a flaky match, not a leak).
	requireNoSecrets(t, &harness{fx: fx, logs: r.logs}, "PROMPT-rotation-7f3a")
	r.requireNoLeak(policytest.OpenAIKey, sealedK1, sealedK1[20:60], sealedK2, sealedK2[20:60], policytest.KEK1, policytest.KEK2)
}

// TestProviderKeyRotationUnderLoad rotates a provider key with credentials.next while
// requests flow, against a provider that accepts both keys during the overlap and revokes
// the old one once every stream that started with it has ended: set next (sealed), revoke
// the old key, then promote next to primary. Not one request fails.
func TestProviderKeyRotationUnderLoad(t *testing.T) {
	fx := policytest.NewWith(t, func(c *policy.Config) { c.Security.KEKs = policytest.KEKs("k1") })
	var oldValid atomic.Bool
	oldValid.Store(true)
	oldAuth, newAuth := "Bearer "+policytest.OpenAIKey, "Bearer "+policytest.OpenAIKeyNext
	r := newRotation(t, fx, func(auth string) bool { return auth == newAuth || auth == oldAuth && oldValid.Load() })
	stop := r.run(8)
	cfg := fx.Config
	cfg.Providers = append([]policy.ProviderConfig(nil), cfg.Providers...)
	next := policytest.Seal(t, "k1", policytest.OpenAIKeyNext)

	r.waitFor(300)
	cfg.Providers[0].Credential = ""
	cfg.Providers[0].Credentials = policy.CredentialsConfig{Primary: "env:TG_OPENAI_KEY", Next: next}
	require.NoError(t, r.reload(cfg), "next set")
	r.drain()
	oldValid.Store(false) // the operator revokes the old key at the provider

	r.waitFor(300)
	cfg.Providers[0].Credentials = policy.CredentialsConfig{Primary: next}
	require.NoError(t, r.reload(cfg), "next promoted to primary")
	r.waitFor(400)
	total := stop()
	r.requireNoFailures(total)
	require.Positive(t, r.count(oldAuth), "the old key served before the rotation")
	require.Positive(t, r.count(newAuth))
	require.Equal(t, total, r.count(oldAuth)+r.count(newAuth))
	r.requireNoLeak(policytest.OpenAIKey, policytest.OpenAIKeyNext, next, next[20:60], policytest.KEK1)
}

// requireNoLeak fails if any of values appears in a captured log entry, an audit event or
// the metrics.
func (r *rotation) requireNoLeak(values ...string) {
	t := r.t
	t.Helper()
	r.h.waitIdle(t)
	var all strings.Builder
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	for _, e := range r.logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		require.NoError(t, err)
		all.Write(buf.Bytes())
	}
	r.audit.mu.Lock()
	require.NotEmpty(t, r.audit.events)
	for _, e := range r.audit.events {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		all.Write(b)
	}
	r.audit.mu.Unlock()
	all.WriteString(dump(t, r.reg))
	require.Contains(t, all.String(), `"decision":"allow"`)
	for _, s := range values {
		require.NotContains(t, all.String(), s)
	}
}
