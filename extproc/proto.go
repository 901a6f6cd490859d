package extproc

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-ai/tollgate/policy"
)

// MetadataNamespace is the dynamic-metadata namespace tollgate writes for Envoy's access log
// (envoy.yaml lists it in metadata_options.receiving_namespaces).
const MetadataNamespace = "tollgate"

// continueResponseBody passes a streamed response chunk through unchanged. It is shared and
// never mutated.
var continueResponseBody = &extprocv3.ProcessingResponse{
	Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}},
}

// headerOption builds a header mutation entry. Envoy (send_header_raw_value, on since 1.27)
// reads only RawValue: a Value would set an empty header, and both together fail the request.
// ext_proc ignores append_action and overwrites unless the deprecated append flag is set, so
// OVERWRITE_IF_EXISTS_OR_ADD only documents what happens.
func headerOption(h policy.Header) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: h.Key, RawValue: h.Value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// forwardResponse is the request-body reply that sends the request upstream: credential swap,
// routing header and clear_route_cache in the same CommonResponse (Envoy ignores
// clear_route_cache without a header_mutation beside it), and the rewritten body with its
// content-length (BUFFERED keeps content-length, and Envoy rejects a mismatch with a 500).
func forwardResponse(a *policy.Admission, f *policy.Forward) *extprocv3.ProcessingResponse {
	mut := &extprocv3.HeaderMutation{RemoveHeaders: f.RemoveHeaders}
	mut.SetHeaders = make([]*corev3.HeaderValueOption, 0, len(f.SetHeaders))
	for _, h := range f.SetHeaders {
		mut.SetHeaders = append(mut.SetHeaders, headerOption(h))
	}
	cr := &extprocv3.CommonResponse{HeaderMutation: mut, ClearRouteCache: true}
	if f.Body != nil {
		cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: f.Body}}
	}
	md := map[string]*structpb.Value{
		MetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"key_id":   structpb.NewStringValue(a.Key.ID),
			"team":     structpb.NewStringValue(a.Key.Team),
			"endpoint": structpb.NewStringValue(a.Endpoint.String()),
			"model":    structpb.NewStringValue(f.Model),
			"provider": structpb.NewStringValue(f.Provider),
		}}),
	}
	if f.Plan != nil {
		planMetadata(md, f.Plan)
	}
	return &extprocv3.ProcessingResponse{
		Response:        &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cr}},
		DynamicMetadata: &structpb.Struct{Fields: md},
	}
}

// immediateResponse answers the client directly. The status is always set: Envoy would
// substitute 200 for a missing one.
func immediateResponse(r *policy.Reply) *extprocv3.ProcessingResponse {
	mut := &extprocv3.HeaderMutation{SetHeaders: make([]*corev3.HeaderValueOption, 0, len(r.Headers))}
	for _, h := range r.Headers {
		mut.SetHeaders = append(mut.SetHeaders, headerOption(h))
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(r.Status)},
			Headers: mut,
			Body:    r.Body,
			Details: "tollgate_" + string(r.Reason),
		},
	}}
}

// responseHeadersReply answers the response headers, with the header changes the exchange
// decided (none: an empty reply).
func responseHeadersReply(set []policy.Header, remove []string) *extprocv3.ProcessingResponse {
	hr := &extprocv3.HeadersResponse{}
	if len(set)+len(remove) > 0 {
		mut := &extprocv3.HeaderMutation{RemoveHeaders: remove, SetHeaders: make([]*corev3.HeaderValueOption, 0, len(set))}
		for _, h := range set {
			mut.SetHeaders = append(mut.SetHeaders, headerOption(h))
		}
		hr.Response = &extprocv3.CommonResponse{HeaderMutation: mut}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: hr}}
}

// bodyReplacement replaces a streamed chunk with out (nothing when out is empty).
func bodyReplacement(out []byte) *extprocv3.ProcessingResponse {
	bm := &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
	if len(out) == 0 {
		bm.Mutation = &extprocv3.BodyMutation_ClearBody{ClearBody: true}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
		ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{BodyMutation: bm}},
	}}
}
