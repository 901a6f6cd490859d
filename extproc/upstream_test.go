package extproc_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// fallbackConfig gives every provider a cluster and gpt-4o-mini (oai, priced 1 and 2
// micro-dollars per token by NewWithBudget) one fallback target: the Azure deployment
// my-deployment, priced 5 and 10.
func fallbackConfig(c *policy.Config) {
	for i := range c.Providers {
		c.Providers[i].Cluster = c.Providers[i].Name + "_cluster"
	}
	c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "az", Upstream: "my-deployment", Pricing: &policy.PricingConfig{Input: "5", Output: "10"}}}
	c.Teams[0].Limits.USDPerDay = "10"
}

// fallbackHarness serves a budgeted fallback config with captured logs and audit events.
func fallbackHarness(t *testing.T) (*harness, *fakeAuditor) {
	t.Helper()
	fx := policytest.NewWithBudget(t, budget.NewMemoryLedger(), func(c *policy.Config) {
		fallbackConfig(c)
		policytest.Guarded(c)
	})
	core, logs := observer.New(zapcore.DebugLevel)
	fa := &fakeAuditor{healthy: true}
	srv := extproc.New(fixedSource{fx.Snapshot}, zap.New(core), extproc.WithClock(func() time.Time { return fx.Now }),
		extproc.WithAudit(extproc.AuditConfig{Auditor: fa, V4Bits: 24, V6Bits: 48}))
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(extproc.GRPCServerOptions()...)
	srv.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(); gs.Stop() })
	return &harness{fx: fx, srv: srv, client: extprocv3.NewExternalProcessorClient(conn), logs: logs}, fa
}

// openStage opens a stream as the filter of stage does (envoy.yaml's initial_metadata).
func (h *harness) openStage(t *testing.T, stage string) extprocv3.ExternalProcessor_ProcessClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := h.client.Process(metadata.AppendToOutgoingContext(ctx, extproc.StageHeader, stage))
	require.NoError(t, err)
	return s
}

const fallbackPrompt = "mail jane.doe@example.com the numbers"

// fallbackChat is the client's request body; the guardrail redacts the email in it.
var fallbackChat = `{"model":"gpt-4o-mini","max_completion_tokens":20,"messages":[{"role":"user","content":"` + fallbackPrompt + `"}]}`

// upstreamHeaders is an attempt's request_headers message as Envoy 1.40 sends it to the
// upstream filter: the shared header map (with extra, e.g. an earlier attempt's credential),
// the attempt number and cluster as attributes (numbers as NumberValue), and the metadata
// namespaces of forwarding_namespaces.
func upstreamHeaders(n int, cluster string, md map[string]*structpb.Struct, extra ...string) *extprocv3.ProcessingRequest {
	req := reqHeaders(false, append([]string{
		":authority", "gateway.example", ":path", "/v1/chat/completions", ":method", "POST", ":scheme", "https",
		"content-type", "application/json", "x-request-id", "req-123", "accept-encoding", "identity",
	}, extra...)...)
	req.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": {Fields: map[string]*structpb.Value{
		"upstream.request_attempt_count": structpb.NewNumberValue(float64(n)),
		"xds.cluster_name":               structpb.NewStringValue(cluster),
	}}}
	req.MetadataContext = &corev3.Metadata{FilterMetadata: md}
	return req
}

// namespaces splits a reply's dynamic_metadata into its namespaces.
func namespaces(resp *extprocv3.ProcessingResponse) map[string]*structpb.Struct {
	out := map[string]*structpb.Struct{}
	for k, v := range resp.GetDynamicMetadata().GetFields() {
		out[k] = v.GetStructValue()
	}
	return out
}

// merge applies dynamic metadata the way Envoy does: a namespace is merged key by key.
func merge(dst map[string]*structpb.Struct, resp *extprocv3.ProcessingResponse) {
	for ns, s := range namespaces(resp) {
		if dst[ns] == nil {
			dst[ns] = &structpb.Struct{Fields: map[string]*structpb.Value{}}
		}
		for k, v := range s.GetFields() {
			dst[ns].Fields[k] = v
		}
	}
}

func asJSON(t *testing.T, s *structpb.Struct) map[string]any {
	t.Helper()
	b, err := protojson.Marshal(s)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// TestFallbackOverExtProc: the whole fallback exchange as Envoy drives it. The downstream
// stream decides a plan (no credential); attempt 1 gets its own credential and a 429;
// attempt 2 starts from attempt 1's header map, removes that credential, sets its own, path
// and model, and reports its usage; the downstream stream settles at attempt 2's usage priced
// for its target and audits both attempts.
func TestFallbackOverExtProc(t *testing.T) {
	h, fa := fallbackHarness(t)
	down := h.openStage(t, "downstream")
	roundTrip(t, down, withClient(chatHeaders(h.fx.Keys["valid"])))
	decided := roundTrip(t, down, reqBody(fallbackChat))
	mut := decided.GetRequestBody().GetResponse().GetHeaderMutation()
	requireRawValuesOnly(t, mut)
	require.Equal(t, "fallback-2", setHeaders(mut)["x-tollgate-upstream"])
	for _, c := range []string{"authorization", "x-api-key", "api-key"} {
		require.NotContains(t, setHeaders(mut), c, "no credential on a plan: it would reach every attempt")
		require.Contains(t, mut.GetRemoveHeaders(), c)
	}
	require.True(t, decided.GetRequestBody().GetResponse().GetClearRouteCache())
	forwardedBody := decided.GetRequestBody().GetResponse().GetBodyMutation().GetBody()
	require.NotContains(t, string(forwardedBody), "jane.doe@example.com", "redacted before any attempt")

	md := namespaces(decided)
	require.Equal(t, map[string]any{"priority_groups": []any{
		map[string]any{"name": "target-1", "clusters": []any{map[string]any{"cluster_name": "oai_cluster", "weight": 1.0}}},
		map[string]any{"name": "target-2", "clusters": []any{map[string]any{"cluster_name": "az_cluster", "weight": 1.0}}},
	}}, asJSON(t, md["tollgate.fallback"]))
	plan := asJSON(t, md["tollgate.plan"])
	require.Equal(t, []any{
		map[string]any{"cluster": "oai_cluster", "provider": "oai", "model": "gpt-4o-mini"},
		map[string]any{"cluster": "az_cluster", "provider": "az", "model": "my-deployment"},
	}, plan["targets"])
	shared := map[string]*structpb.Struct{"tollgate.plan": md["tollgate.plan"]}

	// Attempt 1: OpenAI, which answers 429.
	a1 := h.openStage(t, "upstream")
	resp := roundTrip(t, a1, upstreamHeaders(1, "oai_cluster", shared, "content-length", strconv.Itoa(len(forwardedBody))))
	hm := resp.GetRequestHeaders().GetResponse().GetHeaderMutation()
	requireRawValuesOnly(t, hm)
	require.Equal(t, "Bearer "+policytest.OpenAIKey, setHeaders(hm)["authorization"])
	require.Equal(t, "/v1/chat/completions", setHeaders(hm)[":path"])
	require.Subset(t, hm.GetRemoveHeaders(), []string{"x-api-key", "api-key", "anthropic-version", "openai-organization", "openai-project"})
	merge(shared, resp)
	resp = roundTrip(t, a1, reqBody(string(forwardedBody)))
	require.Equal(t, strconv.Itoa(len(forwardedBody)), setHeaders(resp.GetRequestBody().GetResponse().GetHeaderMutation())["content-length"])
	require.Nil(t, resp.GetRequestBody().GetResponse().GetBodyMutation(), "the first target's body goes as it is")
	merge(shared, roundTrip(t, a1, respHeaders("429", "content-type", "application/json")))
	require.NoError(t, a1.CloseSend()) // the router drops the attempt and retries

	// Attempt 2: Azure. The header map still holds attempt 1's credential.
	a2 := h.openStage(t, "upstream")
	resp = roundTrip(t, a2, upstreamHeaders(2, "az_cluster", shared, "authorization", "Bearer "+policytest.OpenAIKey, "content-length", "999"))
	hm = resp.GetRequestHeaders().GetResponse().GetHeaderMutation()
	requireRawValuesOnly(t, hm)
	require.Equal(t, policytest.AzureKey, setHeaders(hm)["api-key"])
	require.NotContains(t, setHeaders(hm), "authorization")
	require.Contains(t, hm.GetRemoveHeaders(), "authorization", "attempt 1's credential is removed")
	require.Equal(t, "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21", setHeaders(hm)[":path"])
	merge(shared, resp)
	resp = roundTrip(t, a2, reqBody(string(forwardedBody)))
	body := resp.GetRequestBody().GetResponse().GetBodyMutation().GetBody()
	require.Contains(t, string(body), `"model":"my-deployment"`)
	require.Equal(t, strconv.Itoa(len(body)), setHeaders(resp.GetRequestBody().GetResponse().GetHeaderMutation())["content-length"])
	merge(shared, roundTrip(t, a2, respHeaders("200", "content-type", "application/json")))
	served := `{"id":"c1","model":"my-deployment","choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}`
	resp = roundTrip(t, a2, respBody(served[:30], false))
	require.Nil(t, resp.GetDynamicMetadata(), "a middle chunk is answered at once, without a report")
	last := roundTrip(t, a2, respBody(served[30:], true))
	merge(shared, last)
	require.Equal(t, map[string]any{
		"1": map[string]any{"cluster": "oai_cluster", "state": "answered", "status": 429.0},
		"2": map[string]any{"cluster": "az_cluster", "state": "complete", "status": 200.0, "usage_seen": true, "ended": true,
			"input_tokens": 11.0, "output_tokens": 7.0, "cached_input_tokens": 0.0, "cache_write_tokens": 0.0},
	}, asJSON(t, shared["tollgate.attempts"]))
	require.NoError(t, a2.CloseSend())

	// The downstream stream sees only the final response, with the attempts forwarded.
	attempts := map[string]*structpb.Struct{"tollgate.attempts": shared["tollgate.attempts"]}
	rh := respHeaders("200", "content-type", "application/json")
	rh.MetadataContext = &corev3.Metadata{FilterMetadata: attempts}
	roundTrip(t, down, rh)
	rb := respBody(served, true)
	rb.MetadataContext = &corev3.Metadata{FilterMetadata: attempts}
	roundTrip(t, down, rb)
	require.NoError(t, down.CloseSend())
	_, _ = down.Recv()
	h.waitIdle(t)

	e := fa.last(t)
	require.Equal(t, "az", e.Provider)
	require.Equal(t, "my-deployment", e.ModelServed)
	require.Len(t, e.Attempts, 2)
	require.Equal(t, "failed", e.Attempts[0].Outcome)
	require.Equal(t, 429, e.Attempts[0].Status)
	require.Equal(t, "served", e.Attempts[1].Outcome)
	require.Equal(t, int64(11*5+7*10), e.CostUSDMicros, "attempt 2's usage at attempt 2's price")
	line := h.logs.FilterMessage("request").All()
	require.Len(t, line, 1)
	require.Equal(t, "az", line[0].ContextMap()["provider"])
	require.EqualValues(t, 2, line[0].ContextMap()["attempts"])
	requireNoSecrets(t, h, fallbackPrompt)
	raw, err := json.Marshal(e)
	require.NoError(t, err)
	for _, leak := range []string{"oai_cluster", "az_cluster", policytest.OpenAIKey, policytest.AzureKey, h.fx.Keys["valid"], "jane.doe"} {
		require.NotContains(t, string(raw), leak)
	}
	for _, ns := range shared {
		b, err := protojson.Marshal(ns)
		require.NoError(t, err)
		for _, leak := range []string{policytest.OpenAIKey, policytest.AzureKey, h.fx.Keys["valid"], "jane.doe", policytest.Pepper} {
			require.NotContains(t, string(b), leak, "metadata reaches the access log")
		}
	}
}

// TestUpstreamAttemptRefused: an attempt that does not match its plan gets a JSON 502
// ImmediateResponse (Envoy neither sends nor retries it), never a credential, and is reported
// as refused.
func TestUpstreamAttemptRefused(t *testing.T) {
	h, _ := fallbackHarness(t)
	down := h.openStage(t, "downstream")
	roundTrip(t, down, chatHeaders(h.fx.Keys["valid"]))
	plan := namespaces(roundTrip(t, down, reqBody(fallbackChat)))["tollgate.plan"]

	forged := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range plan.GetFields() {
		forged.Fields[k] = v
	}
	forged.Fields["mac"] = structpb.NewStringValue(strings.Repeat("a", 64))
	tests := []struct {
		name    string
		n       int
		cluster string
		plan    *structpb.Struct
	}{
		{"the plan names another cluster for this attempt", 2, "oai_cluster", plan},
		{"an attempt past the plan", 3, "az_cluster", plan},
		{"no plan", 1, "oai_cluster", nil},
		{"a forged plan", 1, "oai_cluster", forged},
		{"a plan of the wrong shape", 1, "oai_cluster", &structpb.Struct{Fields: map[string]*structpb.Value{"targets": structpb.NewStringValue("all")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]*structpb.Struct{}
			if tc.plan != nil {
				md["tollgate.plan"] = tc.plan
			}
			s := h.openStage(t, "upstream")
			resp := roundTrip(t, s, upstreamHeaders(tc.n, tc.cluster, md, "authorization", "Bearer "+policytest.OpenAIKey))
			ir := resp.GetImmediateResponse()
			require.NotNil(t, ir, "%v", resp)
			require.EqualValues(t, 502, ir.GetStatus().GetCode())
			require.Equal(t, "application/json", setHeaders(ir.GetHeaders())["content-type"])
			require.JSONEq(t, `{"error":{"message":"the gateway refused to send this attempt: it is not part of the request's fallback plan","type":"server_error","param":null,"code":"attempt_refused"}}`, string(ir.GetBody()))
			for _, k := range []string{policytest.OpenAIKey, policytest.AzureKey} {
				require.NotContains(t, resp.String(), k)
			}
			if tc.n <= 2 {
				require.Equal(t, "refused", asJSON(t, namespaces(resp)["tollgate.attempts"])[strconv.Itoa(tc.n)].(map[string]any)["state"])
			}
		})
	}
}

// TestUpstreamStage: an unknown stage is refused (the stream fails, Envoy fails closed), and
// an upstream stream that starts with anything but request headers is a protocol fault.
func TestUpstreamStage(t *testing.T) {
	h, _ := fallbackHarness(t)
	s := h.openStage(t, "sideways")
	// The server may refuse the stream before the message is sent: Send then reports io.EOF
	// and Recv the status.
	if err := s.Send(chatHeaders(h.fx.Keys["valid"])); err != nil {
		require.ErrorIs(t, err, io.EOF)
	}
	_, err := s.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	s = h.openStage(t, "upstream")
	require.NoError(t, s.Send(reqBody(fallbackChat)))
	_, err = s.Recv()
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
}
