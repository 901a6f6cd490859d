package extproc_test

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeAuditor collects events.
type fakeAuditor struct {
	mu      sync.Mutex
	events  []*audit.Event
	healthy bool
}

func (f *fakeAuditor) Emit(e *audit.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *fakeAuditor) Healthy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.healthy
}

func (f *fakeAuditor) last(t *testing.T) *audit.Event {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.events)
	return f.events[len(f.events)-1]
}

// auditHarness serves with a budget, guardrails and a fake auditor.
func auditHarness(t *testing.T, cfg extproc.AuditConfig) (*harness, *fakeAuditor) {
	t.Helper()
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), policytest.Guarded)
	fa := &fakeAuditor{healthy: true}
	cfg.Auditor = fa
	srv := extproc.New(fixedSource{fx.Snapshot}, zap.NewNop(), extproc.WithClock(func() time.Time { return fx.Now }), extproc.WithAudit(cfg))
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(extproc.GRPCServerOptions()...)
	srv.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(); gs.Stop() })
	return &harness{fx: fx, srv: srv, client: extprocv3.NewExternalProcessorClient(conn)}, fa
}

// withClient adds Envoy's source.address attribute, as request_attributes sends it.
func withClient(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingRequest {
	st, _ := structpb.NewStruct(map[string]any{"source.address": "203.0.113.77:51234"})
	req.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": st}
	return req
}

func golden(t *testing.T, name string, e *audit.Event) {
	t.Helper()
	got, err := json.MarshalIndent(e, "", "  ")
	require.NoError(t, err)
	path := filepath.Join("testdata", "audit", name+".json")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./extproc/ -run TestAuditEventGolden -update")
	require.JSONEq(t, string(want), string(got))
}

func TestAuditEventGolden(t *testing.T) {
	prompt := "mail jane.doe" + "@example.com about the merger"
	body := `{"model":"fast","max_tokens":20,"messages":[{"role":"user","content":"` + prompt + `"}]}`
	usage := `{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}`
	tests := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"success", func(t *testing.T, h *harness) {
			s, _ := h.open(t)
			roundTrip(t, s, withClient(chatHeaders(h.fx.Keys["valid"])))
			roundTrip(t, s, reqBody(body))
			roundTrip(t, s, respHeaders("200", "content-type", "application/json"))
			roundTrip(t, s, respBody(usage, true))
			require.NoError(t, s.CloseSend())
			_, _ = s.Recv()
		}},
		{"denied_401", func(t *testing.T, h *harness) {
			s, _ := h.open(t)
			roundTrip(t, s, withClient(chatHeaders("tgk_AAAAAAAAAAAA_"+strings.Repeat("b", 49))))
			require.NoError(t, s.CloseSend()) // Envoy ends the stream after an ImmediateResponse
			_, _ = s.Recv()
		}},
		{"upstream_error", func(t *testing.T, h *harness) {
			s, _ := h.open(t)
			roundTrip(t, s, withClient(chatHeaders(h.fx.Keys["valid"])))
			roundTrip(t, s, reqBody(body))
			roundTrip(t, s, respHeaders("500", "content-type", "application/json"))
			roundTrip(t, s, respBody(`{"error":{"message":"boom"}}`, true))
			require.NoError(t, s.CloseSend())
			_, _ = s.Recv()
		}},
		{"client_abort_mid_stream", func(t *testing.T, h *harness) {
			s, cancel := h.open(t)
			roundTrip(t, s, withClient(chatHeaders(h.fx.Keys["valid"])))
			roundTrip(t, s, reqBody(strings.Replace(body, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)))
			roundTrip(t, s, respHeaders("200", "content-type", "text/event-stream"))
			roundTrip(t, s, respBody("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n", false))
			cancel()
		}},
		{"upstream_timeout", func(t *testing.T, h *harness) {
			s, _ := h.open(t)
			roundTrip(t, s, withClient(chatHeaders(h.fx.Keys["valid"])))
			roundTrip(t, s, reqBody(body))
			roundTrip(t, s, respHeaders("504", "content-type", "text/plain"))
			roundTrip(t, s, respBody("upstream request timeout", true))
			require.NoError(t, s.CloseSend())
			_, _ = s.Recv()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, fa := auditHarness(t, extproc.AuditConfig{V4Bits: 24, V6Bits: 48})
			tc.run(t, h)
			h.waitIdle(t)
			e := fa.last(t)
			e.KeyID = strings.Repeat("K", len(e.KeyID)) // generated per run
			golden(t, tc.name, e)
			raw, _ := json.Marshal(e)
			require.NotContains(t, string(raw), prompt)
			require.NotContains(t, string(raw), "example.com")
			for _, k := range h.fx.Keys {
				require.NotContains(t, string(raw), k[17:])
			}
		})
	}
}

func TestAuditFailClosed(t *testing.T) {
	h, fa := auditHarness(t, extproc.AuditConfig{FailClosed: true})
	fa.mu.Lock()
	fa.healthy = false
	fa.mu.Unlock()
	s, _ := h.open(t)
	ir := roundTrip(t, s, chatHeaders(h.fx.Keys["valid"])).GetImmediateResponse()
	require.EqualValues(t, 503, ir.GetStatus().GetCode())
	require.Contains(t, string(ir.GetBody()), "audit")
}
