package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Dynamic metadata namespaces of the fallback prototype (testdata/fallback-envoy.yaml).
const (
	nsFallback = "tollgate.fallback" // priority groups, read by the route's cluster specifier
	nsPlan     = "tollgate.plan"     // the targets, written downstream, read by upstream filters
	nsAttempts = "tollgate.attempts" // one entry per attempt, written by upstream filters
)

// credentialHeaders are removed from every attempt before its own credential is set: all
// attempts of a request share one request header map, so attempt 2 starts with whatever
// attempt 1 set.
var credentialHeaders = []string{"authorization", "x-api-key", "api-key"}

// fallbackTarget is one target of the prototype's plan.
type fallbackTarget struct {
	Cluster    string // Envoy cluster of the attempt (one priority group)
	CredHeader string // the provider's credential header and value (never in metadata)
	Credential string
	Model      string // upstream model written into the body
	Path       string // upstream path; "" keeps the client's
}

// fallbackScenario is what the processor does for the requests of one subtest.
type fallbackScenario struct {
	targets []fallbackTarget
	// planClusters overrides the clusters tollgate.plan allows (default: the targets').
	planClusters []string
	// noGroups leaves tollgate.fallback unset, as a buggy decision would.
	noGroups bool
	// failCluster makes the upstream filter of that cluster's attempt fail its stream.
	failCluster string
	// direct routes to the first target the way Tollgate routes a model without fallback
	// today: route direct-a, the credential set downstream, no plan.
	direct bool
}

// attemptSeen is what the upstream filter saw of one attempt.
type attemptSeen struct {
	Attempt    int
	Cluster    string
	InHeaders  map[string]string // request headers as this attempt's filter received them
	InBody     []byte            // request body as this attempt's filter received it
	Status     string            // response status ("" when none came)
	Refused    bool              // the filter answered with an ImmediateResponse
	RespBody   []byte            // the provider's body before the filter rewrote it
	RespEnded  bool              // the body's end_of_stream was seen
	UsageIn    int64
	UsageOut   int64
	RespChunks int
}

// downstreamSeen is what the downstream filter saw of the request.
type downstreamSeen struct {
	Requests        int    // request_headers messages (one per client request)
	ResponseHeaders int    // response_headers messages: the final response only
	Status          string // of that response
	Cluster         string // response attribute xds.cluster_name
	// AttemptsAtHeaders and Attempts are tollgate.attempts as forwarded with the response
	// headers and with the last response message.
	AttemptsAtHeaders, Attempts map[string]any
}

// fallbackProcessor is the test's ext_proc server in both of Tollgate's fallback roles: the
// downstream filter decides the plan (as policy would), the upstream filter rewrites each
// attempt for its target and reports it. It is a stand-in to prove the Envoy mechanism, not
// Tollgate's policy.
type fallbackProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer

	mu       sync.Mutex
	sc       fallbackScenario
	down     downstreamSeen
	attempts []*attemptSeen
}

func startFallbackProcessor(t *testing.T) (*fallbackProcessor, int) {
	t.Helper()
	fp := &fallbackProcessor{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(32 << 20))
	extprocv3.RegisterExternalProcessorServer(srv, fp)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return fp, ln.Addr().(*net.TCPAddr).Port
}

// use starts a subtest's scenario and forgets what earlier ones saw.
func (fp *fallbackProcessor) use(sc fallbackScenario) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.sc, fp.down, fp.attempts = sc, downstreamSeen{}, nil
}

// seen returns copies of what both filters saw so far.
func (fp *fallbackProcessor) seen() (downstreamSeen, []attemptSeen) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	out := make([]attemptSeen, 0, len(fp.attempts))
	for _, a := range fp.attempts {
		out = append(out, *a)
	}
	return fp.down, out
}

func (fp *fallbackProcessor) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	var stage string
	if md, ok := metadata.FromIncomingContext(stream.Context()); ok && len(md.Get("x-tollgate-stage")) > 0 {
		stage = md.Get("x-tollgate-stage")[0]
	}
	var handle func(*extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error)
	switch stage {
	case "downstream":
		handle = fp.downstream
	case "upstream":
		handle = (&upstreamAttempt{fp: fp}).handle
	default:
		return status.Errorf(codes.InvalidArgument, "unknown stage %q", stage)
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := handle(req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// downstream plays the part of Tollgate's decision for a model with fallback targets.
func (fp *fallbackProcessor) downstream(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	attempts := req.GetMetadataContext().GetFilterMetadata()[nsAttempts].AsMap()
	switch r := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		fp.down.Requests++
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}, nil
	case *extprocv3.ProcessingRequest_RequestBody:
		// A guardrail's redaction: every attempt must get this body, not the client's.
		body := bytes.ReplaceAll(r.RequestBody.GetBody(), []byte(fallbackSecret), []byte("[REDACTED]"))
		groups, plan := []any{}, []any{}
		for _, tg := range fp.sc.targets {
			groups = append(groups, map[string]any{"name": tg.Cluster, "clusters": []any{map[string]any{"cluster_name": tg.Cluster, "weight": 1}}})
			plan = append(plan, map[string]any{"cluster": tg.Cluster, "model": tg.Model})
		}
		if fp.sc.planClusters != nil {
			plan = plan[:0]
			for _, c := range fp.sc.planClusters {
				plan = append(plan, map[string]any{"cluster": c, "model": "any"})
			}
		}
		md := map[string]any{nsPlan: map[string]any{"targets": plan}}
		if !fp.sc.noGroups {
			md[nsFallback] = map[string]any{"priority_groups": groups}
		}
		if fp.sc.direct {
			tg := fp.sc.targets[0]
			common := &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{
					SetHeaders: []*corev3.HeaderValueOption{
						rawHeader("x-tollgate-upstream", "direct-a"),
						rawHeader(tg.CredHeader, tg.Credential),
						rawHeader("content-length", strconv.Itoa(len(body))),
					},
					RemoveHeaders: []string{"x-api-key"},
				},
				BodyMutation:    &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}},
				ClearRouteCache: true,
			}
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: common}}}, nil
		}
		dm, err := structpb.NewStruct(md)
		if err != nil {
			return nil, err
		}
		common := &extprocv3.CommonResponse{
			HeaderMutation: &extprocv3.HeaderMutation{
				// The route for a plan of this length; the virtual key goes, no provider
				// credential comes (that is each attempt's business).
				SetHeaders: []*corev3.HeaderValueOption{
					rawHeader("x-tollgate-upstream", "fallback-"+strconv.Itoa(len(fp.sc.targets))),
					rawHeader("content-length", strconv.Itoa(len(body))),
				},
				RemoveHeaders: credentialHeaders,
			},
			BodyMutation:    &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}},
			ClearRouteCache: true,
		}
		return &extprocv3.ProcessingResponse{
			Response:        &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: common}},
			DynamicMetadata: dm,
		}, nil
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		fp.down.ResponseHeaders++
		fp.down.Status = headerValue(r.ResponseHeaders.GetHeaders(), ":status")
		if a := req.GetAttributes()["envoy.filters.http.ext_proc"]; a != nil {
			fp.down.Cluster = a.GetFields()["xds.cluster_name"].GetStringValue()
		}
		fp.down.AttemptsAtHeaders, fp.down.Attempts = attempts, attempts
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}, nil
	case *extprocv3.ProcessingRequest_ResponseBody:
		fp.down.Attempts = attempts
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}, nil
	default:
		return nil, status.Errorf(codes.InvalidArgument, "downstream: unexpected %T", r)
	}
}

// upstreamAttempt is the upstream filter's state for one attempt (one ext_proc stream).
type upstreamAttempt struct {
	fp     *fallbackProcessor
	seen   *attemptSeen
	target fallbackTarget
	model  string // from tollgate.plan
}

// report writes this attempt's entry of tollgate.attempts (whole: a namespace is merged key by
// key, so an entry written again replaces the earlier one).
func (ua *upstreamAttempt) report(fields map[string]any) *structpb.Struct {
	fields["cluster"] = ua.seen.Cluster
	dm, _ := structpb.NewStruct(map[string]any{nsAttempts: map[string]any{strconv.Itoa(ua.seen.Attempt): fields}})
	return dm
}

func (ua *upstreamAttempt) handle(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	fp := ua.fp
	fp.mu.Lock()
	defer fp.mu.Unlock()
	switch r := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		attrs := req.GetAttributes()["envoy.filters.http.ext_proc"].GetFields()
		ua.seen = &attemptSeen{
			Attempt:   int(attrs["upstream.request_attempt_count"].GetNumberValue()),
			Cluster:   attrs["xds.cluster_name"].GetStringValue(),
			InHeaders: map[string]string{},
		}
		for _, h := range r.RequestHeaders.GetHeaders().GetHeaders() {
			ua.seen.InHeaders[h.GetKey()] = string(h.GetRawValue())
		}
		fp.attempts = append(fp.attempts, ua.seen)
		// The plan decides, not the cluster alone: an attempt the plan does not name is refused.
		plan := req.GetMetadataContext().GetFilterMetadata()[nsPlan].GetFields()["targets"].GetListValue().GetValues()
		n := ua.seen.Attempt
		if n < 1 || n > len(plan) || plan[n-1].GetStructValue().GetFields()["cluster"].GetStringValue() != ua.seen.Cluster {
			ua.seen.Refused = true
			return immediateJSON(typev3.StatusCode_BadGateway, `{"error":{"message":"attempt outside the fallback plan","type":"gateway_error"}}`), nil
		}
		if ua.seen.Cluster == fp.sc.failCluster {
			return nil, status.Error(codes.Internal, "upstream filter failure (test)")
		}
		ua.model = plan[n-1].GetStructValue().GetFields()["model"].GetStringValue()
		for _, tg := range fp.sc.targets {
			if tg.Cluster == ua.seen.Cluster {
				ua.target = tg
			}
		}
		hm := &extprocv3.HeaderMutation{
			RemoveHeaders: credentialHeaders,
			SetHeaders:    []*corev3.HeaderValueOption{rawHeader(ua.target.CredHeader, ua.target.Credential)},
		}
		if ua.target.Path != "" {
			hm.SetHeaders = append(hm.SetHeaders, rawHeader(":path", ua.target.Path))
		}
		return &extprocv3.ProcessingResponse{
			Response:        &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: hm}}},
			DynamicMetadata: ua.report(map[string]any{"state": "sent"}),
		}, nil
	case *extprocv3.ProcessingRequest_RequestBody:
		ua.seen.InBody = append([]byte(nil), r.RequestBody.GetBody()...)
		var body map[string]any
		if err := json.Unmarshal(r.RequestBody.GetBody(), &body); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "request body: %v", err)
		}
		body["model"] = ua.model
		nb, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		// content-length always: the header map may carry the previous attempt's value.
		common := &extprocv3.CommonResponse{
			HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{rawHeader("content-length", strconv.Itoa(len(nb)))}},
			BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: nb}},
		}
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: common}}}, nil
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		ua.seen.Status = headerValue(r.ResponseHeaders.GetHeaders(), ":status")
		return &extprocv3.ProcessingResponse{
			Response:        &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}},
			DynamicMetadata: ua.report(map[string]any{"state": "answered", "status": ua.seen.Status}),
		}, nil
	case *extprocv3.ProcessingRequest_ResponseBody:
		chunk := r.ResponseBody.GetBody()
		ua.seen.RespChunks++
		ua.seen.RespBody = append(ua.seen.RespBody, chunk...)
		// Stand-in for response translation: the client gets this attempt's rewrite of
		// every chunk (here: upper case, which holds at any chunk boundary).
		resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
			Response: &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: bytes.ToUpper(chunk)}}},
		}}}
		if r.ResponseBody.GetEndOfStream() {
			ua.seen.RespEnded = true
			// The provider's own usage, before any translation, is what budgets price.
			var u struct {
				Usage struct {
					Prompt     int64 `json:"prompt_tokens"`
					Completion int64 `json:"completion_tokens"`
				} `json:"usage"`
			}
			fields := map[string]any{"state": "complete", "status": ua.seen.Status}
			if json.Unmarshal(ua.seen.RespBody, &u) == nil && u.Usage.Prompt+u.Usage.Completion > 0 {
				ua.seen.UsageIn, ua.seen.UsageOut = u.Usage.Prompt, u.Usage.Completion
				fields["input_tokens"], fields["output_tokens"] = u.Usage.Prompt, u.Usage.Completion
			}
			resp.DynamicMetadata = ua.report(fields)
		}
		return resp, nil
	default:
		return nil, status.Errorf(codes.InvalidArgument, "upstream: unexpected %T", r)
	}
}

func rawHeader(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, RawValue: []byte(v)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func headerValue(h *corev3.HeaderMap, key string) string {
	for _, hv := range h.GetHeaders() {
		if hv.GetKey() == key {
			return string(hv.GetRawValue())
		}
	}
	return ""
}

func immediateJSON(code typev3.StatusCode, body string) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status:  &typev3.HttpStatus{Code: code},
		Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{rawHeader("content-type", "application/json")}},
		Body:    []byte(body),
		Details: fmt.Sprintf("tollgate_fallback_%d", code),
	}}}
}
