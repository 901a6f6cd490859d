package extproc

import (
	"math"
	"strconv"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-ai/tollgate/policy"
)

// Dynamic-metadata namespaces of fallback across providers (envoy/fallback-design.md). Only
// ext_proc filters write dynamic metadata, so neither a client nor a provider can set them.
const (
	// NamespaceFallback holds the priority groups the fallback-N routes' priority_group
	// cluster specifier reads (override_metadata_namespace): one provider cluster per attempt.
	NamespaceFallback = "tollgate.fallback"
	// NamespacePlan holds the policy.Plan the upstream filter checks each attempt against.
	NamespacePlan = "tollgate.plan"
	// NamespaceAttempts holds one entry per attempt ("1", "2", ...), written by the upstream
	// filter and forwarded to the downstream filter with every response message.
	NamespaceAttempts = "tollgate.attempts"
)

// attributesKey is where Envoy puts the request and response attributes an ext_proc filter
// asks for (request_attributes in envoy.yaml).
const attributesKey = "envoy.filters.http.ext_proc"

// planMetadata adds the fallback namespaces of plan p to md: the priority groups (attempt n
// goes to the cluster of target n) and the plan itself. Neither holds a secret.
func planMetadata(md map[string]*structpb.Value, p *policy.Plan) {
	groups := make([]*structpb.Value, 0, len(p.Targets))
	targets := make([]*structpb.Value, 0, len(p.Targets))
	for i, t := range p.Targets {
		groups = append(groups, structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"name": structpb.NewStringValue("target-" + strconv.Itoa(i+1)),
			"clusters": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{
				structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
					"cluster_name": structpb.NewStringValue(t.Cluster),
					"weight":       structpb.NewNumberValue(1),
				}}),
			}}),
		}}))
		targets = append(targets, structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"cluster":  structpb.NewStringValue(t.Cluster),
			"provider": structpb.NewStringValue(t.Provider),
			"model":    structpb.NewStringValue(t.Model),
		}}))
	}
	md[NamespaceFallback] = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
		"priority_groups": structpb.NewListValue(&structpb.ListValue{Values: groups}),
	}})
	plan := map[string]*structpb.Value{
		"model":    structpb.NewStringValue(p.Model),
		"endpoint": structpb.NewStringValue(p.Endpoint),
		"path":     structpb.NewStringValue(p.Path),
		"expires":  structpb.NewNumberValue(float64(p.Expires)),
		"mac":      structpb.NewStringValue(p.MAC),
		"targets":  structpb.NewListValue(&structpb.ListValue{Values: targets}),
	}
	if p.AnthropicVersion != "" {
		plan["anthropic_version"] = structpb.NewStringValue(p.AnthropicVersion)
	}
	md[NamespacePlan] = structpb.NewStructValue(&structpb.Struct{Fields: plan})
}

// decodePlan reads tollgate.plan; nil when it is absent or not a plan's shape (the attempt is
// then refused).
func decodePlan(s *structpb.Struct) *policy.Plan {
	f := s.GetFields()
	if f == nil {
		return nil
	}
	str := func(m map[string]*structpb.Value, k string, optional bool) (string, bool) {
		v, ok := m[k]
		if !ok {
			return "", optional
		}
		sv, ok := v.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return "", false
		}
		return sv.StringValue, true
	}
	p := &policy.Plan{}
	var ok [6]bool
	p.Model, ok[0] = str(f, "model", false)
	p.Endpoint, ok[1] = str(f, "endpoint", false)
	p.Path, ok[2] = str(f, "path", false)
	p.MAC, ok[3] = str(f, "mac", false)
	p.AnthropicVersion, ok[4] = str(f, "anthropic_version", true)
	var exp int64
	exp, ok[5] = integer(f["expires"])
	for _, good := range ok {
		if !good {
			return nil
		}
	}
	p.Expires = exp
	list, isList := f["targets"].GetKind().(*structpb.Value_ListValue)
	if !isList || len(list.ListValue.GetValues()) > policy.MaxPlanTargets {
		return nil
	}
	for _, v := range list.ListValue.GetValues() {
		tf := v.GetStructValue().GetFields()
		var t policy.PlanTarget
		var a, b, c bool
		t.Cluster, a = str(tf, "cluster", false)
		t.Provider, b = str(tf, "provider", false)
		t.Model, c = str(tf, "model", false)
		if !a || !b || !c {
			return nil
		}
		p.Targets = append(p.Targets, t)
	}
	return p
}

// integer reads a whole number from a Struct value.
func integer(v *structpb.Value) (int64, bool) {
	n, ok := v.GetKind().(*structpb.Value_NumberValue)
	if !ok || n.NumberValue != math.Trunc(n.NumberValue) || math.Abs(n.NumberValue) > 1<<53 {
		return 0, false
	}
	return int64(n.NumberValue), true
}

// attemptInput reads what Envoy tells the upstream filter about an attempt: the plan
// (forwarding_namespaces), the attempt number and cluster (request_attributes) and the
// request id (the x-request-id header). A missing or malformed value leaves its zero, which
// NewAttempt refuses.
func attemptInput(req *extprocv3.ProcessingRequest, requestID string) policy.AttemptInput {
	attrs := req.GetAttributes()[attributesKey].GetFields()
	in := policy.AttemptInput{
		Plan:      decodePlan(req.GetMetadataContext().GetFilterMetadata()[NamespacePlan]),
		Cluster:   attrs["xds.cluster_name"].GetStringValue(),
		RequestID: requestID,
	}
	if n, ok := integer(attrs["upstream.request_attempt_count"]); ok && n > 0 && n <= policy.MaxPlanTargets {
		in.N = int(n)
	}
	return in
}

// attemptMetadata is the dynamic metadata that reports an attempt: its tollgate.attempts
// entry, written whole (a namespace is merged key by key, so it replaces the earlier entry).
func attemptMetadata(at *policy.Attempt) *structpb.Struct {
	r, ok := at.Report()
	if !ok {
		return nil
	}
	e := map[string]*structpb.Value{
		"cluster": structpb.NewStringValue(r.Cluster),
		"state":   structpb.NewStringValue(r.State),
	}
	if r.Status != 0 {
		e["status"] = structpb.NewNumberValue(float64(r.Status))
	}
	if r.UsageSeen {
		e["usage_seen"] = structpb.NewBoolValue(true)
		e["input_tokens"] = structpb.NewNumberValue(float64(r.InputTokens))
		e["output_tokens"] = structpb.NewNumberValue(float64(r.OutputTokens))
		e["cached_input_tokens"] = structpb.NewNumberValue(float64(r.CachedInputTokens))
		e["cache_write_tokens"] = structpb.NewNumberValue(float64(r.CacheWriteTokens))
	}
	if r.Ended {
		e["ended"] = structpb.NewBoolValue(true)
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		NamespaceAttempts: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			strconv.Itoa(r.N): structpb.NewStructValue(&structpb.Struct{Fields: e}),
		}}),
	}}
}

// decodeAttempts reads tollgate.attempts as the downstream filter receives it. It never fails:
// a value of the wrong shape becomes one that policy's checks refuse (attempt 0, state "",
// negative tokens), so a corrupt report is refused there, whole.
func decodeAttempts(s *structpb.Struct) []policy.AttemptReport {
	if len(s.GetFields()) == 0 {
		return nil
	}
	out := make([]policy.AttemptReport, 0, len(s.GetFields()))
	for k, v := range s.GetFields() {
		var r policy.AttemptReport
		if n, err := strconv.Atoi(k); err == nil && strconv.Itoa(n) == k {
			r.N = n
		}
		f := v.GetStructValue().GetFields()
		r.Cluster = f["cluster"].GetStringValue()
		r.State = f["state"].GetStringValue()
		num := func(k string) int64 {
			v, ok := f[k]
			if !ok {
				return 0
			}
			n, ok := integer(v)
			if !ok {
				return -1
			}
			return n
		}
		r.Status = int(num("status"))
		r.UsageSeen, r.Ended = f["usage_seen"].GetBoolValue(), f["ended"].GetBoolValue()
		r.InputTokens, r.OutputTokens = num("input_tokens"), num("output_tokens")
		r.CachedInputTokens, r.CacheWriteTokens = num("cached_input_tokens"), num("cache_write_tokens")
		out = append(out, r)
	}
	return out
}

// observeAttempts hands the attempts reported so far to the exchange of a request with a
// fallback plan; they come with every response message (forwarding_namespaces). A report
// that does not fit the plan is logged once and ignored by the exchange from then on.
func (st *stream) observeAttempts(req *extprocv3.ProcessingRequest) {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_ResponseHeaders, *extprocv3.ProcessingRequest_ResponseBody, *extprocv3.ProcessingRequest_ResponseTrailers:
	default:
		return
	}
	if f := st.x.Forward(); f == nil || f.Plan == nil {
		return
	}
	reports := decodeAttempts(req.GetMetadataContext().GetFilterMetadata()[NamespaceAttempts])
	if err := st.x.ObserveAttempts(reports); err != nil {
		st.log.Warn("fallback attempt report refused; the request is charged without it", zap.Error(err))
	}
}
