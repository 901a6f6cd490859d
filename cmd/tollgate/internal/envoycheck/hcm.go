package envoycheck

import (
	"fmt"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// minIdle is the shortest idle timeout that does not cut a slow model's stream: a reasoning
// model can stay silent for minutes before its first token.
const minIdle = 60 * time.Second

// requestIDHeader is Envoy's request id header.
const requestIDHeader = "x-request-id"

// checkHCM runs every check on an HTTP connection manager that carries Tollgate's filter.
func (c *checker) checkHCM(h hcmAt) {
	c.checkFilterOrder(h)
	c.checkExtProc(h)
	c.checkInternalHeaders(h)
	c.checkPaths(h)
	c.checkRequestID(h)
	c.checkStreamTimeouts(h)
	c.checkRoutes(h)
}

// checkPaths reports missing path normalization. Tollgate classifies the path it is given
// (which endpoint, which provider API); a provider that normalizes differently could serve
// another endpoint than the one Tollgate allowed.
func (c *checker) checkPaths(h hcmAt) {
	hcm := h.hcm
	if !hcm.GetNormalizePath().GetValue() {
		c.f.add(High, "normalize-path", join(h.path, "normalize_path"),
			"normalize_path is not true: dot segments (/v1/models/../chat/completions) and percent-encoded characters reach Tollgate and the provider unnormalized, so the endpoint Tollgate checks can differ from the one the provider serves",
			"set normalize_path: true")
	}
	if !hcm.GetMergeSlashes() {
		c.f.add(High, "merge-slashes", join(h.path, "merge_slashes"),
			"merge_slashes is not true: //v1//chat/completions reaches Tollgate and the provider as written, so their view of the endpoint can differ",
			"set merge_slashes: true")
	}
	switch a := hcm.GetPathWithEscapedSlashesAction(); a {
	case hcmv3.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT, hcmv3.HttpConnectionManager_KEEP_UNCHANGED:
		c.f.add(Medium, "escaped-slashes", join(h.path, "path_with_escaped_slashes_action"),
			fmt.Sprintf("path_with_escaped_slashes_action is %s: %%2F and %%5C pass through unchanged, and a provider that decodes them sees another path than Tollgate checked", a),
			"set path_with_escaped_slashes_action: REJECT_REQUEST (or UNESCAPE_AND_REDIRECT)")
	}
}

// checkRequestID reports configurations where a client's x-request-id survives: Tollgate and
// its audit trail correlate on it, so a client could collide or forge it.
func (c *checker) checkRequestID(h hcmAt) {
	hcm := h.hcm
	early, _ := c.requestMutations(h)
	if removedBy(early, requestIDHeader) {
		return
	}
	if hcm.GetPreserveExternalRequestId() {
		c.f.add(High, "request-id-preserved", join(h.path, "preserve_external_request_id"),
			"preserve_external_request_id: true keeps a client's x-request-id, which Tollgate's logs and audit events correlate on",
			"remove preserve_external_request_id, so Envoy generates every request id itself")
	}
	if hcm.GetGenerateRequestId() != nil && !hcm.GetGenerateRequestId().GetValue() {
		c.f.add(Medium, "request-id-not-generated", join(h.path, "generate_request_id"),
			"generate_request_id: false leaves requests without an Envoy-generated id; a client's x-request-id is used instead",
			"remove generate_request_id (it defaults to true)")
	}
	if !hcm.GetUseRemoteAddress().GetValue() && c.listenerFacesNetwork(h) {
		c.f.add(Medium, "request-id-preserved", join(h.path, "use_remote_address"),
			"use_remote_address is not true on a listener reachable from the network: Envoy treats requests as internal and keeps a client's x-request-id (and trusts its x-forwarded-for)",
			"set use_remote_address: true on the edge listener (behind a trusted proxy, have that proxy replace x-request-id, or remove it in early_header_mutation_extensions)")
	}
}

// listenerFacesNetwork reports whether h's listener accepts connections from other hosts.
func (c *checker) listenerFacesNetwork(h hcmAt) bool {
	if h.listener == nil {
		return false
	}
	_, remote := networkAddress(h.listener.GetAddress())
	return remote
}

// checkStreamTimeouts reports connection-manager timeouts that cut long streamed
// completions, which also loses the usage Tollgate settles at the end of a stream.
func (c *checker) checkStreamTimeouts(h hcmAt) {
	if d := h.hcm.GetStreamIdleTimeout(); d != nil && d.AsDuration() > 0 && d.AsDuration() < minIdle {
		c.f.add(Medium, "stream-timeout", join(h.path, "stream_idle_timeout"),
			fmt.Sprintf("stream_idle_timeout %s resets a stream that is silent that long; a model thinking before its first token takes longer", d.AsDuration()),
			"set stream_idle_timeout to several minutes (envoy/envoy.yaml uses 600s)")
	}
	if d := h.hcm.GetCommonHttpProtocolOptions().GetMaxStreamDuration(); d != nil && d.AsDuration() > 0 {
		c.f.add(Medium, "stream-timeout", join(h.path, "common_http_protocol_options.max_stream_duration"),
			fmt.Sprintf("max_stream_duration %s cuts every stream at that age, including long streamed completions", d.AsDuration()),
			"remove max_stream_duration")
	}
}
