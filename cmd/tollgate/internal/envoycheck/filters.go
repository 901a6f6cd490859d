package envoycheck

import (
	"fmt"
	"strings"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlyhmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	"google.golang.org/protobuf/proto"
)

// httpFilterPrefix starts the type name of every HTTP filter config; the next segment names
// the filter (envoy.extensions.filters.http.lua.v3.Lua is "lua").
const httpFilterPrefix = "envoy.extensions.filters.http."

// bodyFilters read, buffer, rewrite or forward request or response bodies. Any of them ahead
// of Tollgate's ext_proc filter sees a prompt before Tollgate has checked, redacted or
// budgeted it, or changes the body Tollgate checks from the one the provider gets.
var bodyFilters = map[string]bool{
	"lua": true, "wasm": true, "dynamic_modules": true, "golang": true, "buffer": true,
	"file_system_buffer": true, "compressor": true, "decompressor": true, "gzip": true,
	"ext_proc": true, "transform": true, "grpc_json_transcoder": true,
	"grpc_json_reverse_transcoder": true, "grpc_web": true, "grpc_http1_bridge": true,
	"grpc_http1_reverse_bridge": true, "connect_grpc_bridge": true, "grpc_field_extraction": true,
	"proto_message_extraction": true, "proto_api_scrubber": true, "json_to_metadata": true,
	"sse_to_metadata": true, "aws_lambda": true, "aws_request_signing": true,
	"aws_eventstream_parser": true, "mcp": true, "mcp_json_rest_bridge": true, "mcp_router": true,
	"a2a": true, "ai_protocol_manager": true, "cache": true, "cache_v2": true, "composite": true,
	"tap": true,
}

// filterInfo is one HTTP filter with its config opened: matcher wrappers are looked through.
type filterInfo struct {
	// kind is the filter's package name (lua, ext_proc, header_mutation, ...), from its type
	// or, without a typed config, its name.
	kind string
	// cfg is the filter's config message (nil for ECDS or an unknown type).
	cfg proto.Message
	// cfgPath is the path of cfg below the filter.
	cfgPath string
	// wrapper is the matcher wrapping the filter, if any.
	wrapper *matchingv3.ExtensionWithMatcher
	// discovered is true when the config comes from ECDS (config_discovery).
	discovered bool
}

// openFilter returns what hf is.
func openFilter(hf *hcmv3.HttpFilter) filterInfo {
	fi := filterInfo{cfgPath: "typed_config"}
	if hf.GetConfigDiscovery() != nil {
		fi.discovered = true
		fi.kind = kindFromName(hf.GetName())
		return fi
	}
	a := hf.GetTypedConfig()
	fi.cfg = unpack(a)
	tn := anyTypeName(a)
	if w, ok := fi.cfg.(*matchingv3.ExtensionWithMatcher); ok {
		fi.wrapper = w
		a = w.GetExtensionConfig().GetTypedConfig()
		fi.cfg, tn = unpack(a), anyTypeName(a)
		fi.cfgPath = "typed_config.extension_config.typed_config"
	}
	if unresolvedType(fi.cfg) != "" {
		fi.cfg = nil
	}
	fi.kind = kindFromType(tn)
	if fi.kind == "" {
		fi.kind = kindFromName(hf.GetName())
	}
	return fi
}

// kindFromType returns "lua" for envoy.extensions.filters.http.lua.v3.Lua, or "".
func kindFromType(t string) string {
	rest, ok := strings.CutPrefix(t, httpFilterPrefix)
	if !ok {
		return ""
	}
	k, _, _ := strings.Cut(rest, ".")
	return k
}

// kindFromName returns "lua" for the conventional filter name envoy.filters.http.lua.
func kindFromName(n string) string {
	if k, ok := strings.CutPrefix(n, "envoy.filters.http."); ok {
		return k
	}
	return n
}

// touchesBody reports whether the filter reads or changes bodies.
func (fi filterInfo) touchesBody() bool {
	if fi.kind == "ext_authz" {
		// ext_authz sends the body to the authorization service only when asked to.
		a, ok := fi.cfg.(*extauthzv3.ExtAuthz)
		return ok && a.GetWithRequestBody() != nil
	}
	return bodyFilters[fi.kind]
}

// filterPath is the path of the i-th HTTP filter of h.
func filterPath(h hcmAt, i int) string {
	return label(h.path+".http_filters", i, h.hcm.GetHttpFilters()[i])
}

// checkFilterOrder reports body-touching filters ahead of Tollgate's ext_proc filter.
func (c *checker) checkFilterOrder(h hcmAt) {
	filters := h.hcm.GetHttpFilters()
	for i := 0; i < h.tollgate; i++ {
		fi := openFilter(filters[i])
		switch {
		case fi.discovered:
			c.f.add(Medium, "extproc-not-first", filterPath(h, i),
				fmt.Sprintf("filter %q ahead of Tollgate's ext_proc gets its config from ECDS, so the check cannot tell whether it touches bodies", filters[i].GetName()),
				"move it after Tollgate's ext_proc filter, or confirm it never reads or changes bodies")
		case fi.touchesBody():
			c.f.add(High, "extproc-not-first", filterPath(h, i),
				fmt.Sprintf("body-touching filter %q (%s) runs before Tollgate's ext_proc: it sees prompts before they are checked and redacted, or changes the body Tollgate checks", filters[i].GetName(), fi.kind),
				"move Tollgate's ext_proc filter ahead of every filter that reads or changes bodies (only header-only filters such as header_mutation may precede it)")
		}
	}
}

// requestMutations returns the request header mutations that run before Tollgate's ext_proc
// filter: early_header_mutation_extensions (before the first route match), then those of
// header_mutation filters ahead of ext_proc.
func (c *checker) requestMutations(h hcmAt) (early, filters []*mutationv3.HeaderMutation) {
	for _, e := range h.hcm.GetEarlyHeaderMutationExtensions() {
		if m, ok := unpack(e.GetTypedConfig()).(*earlyhmv3.HeaderMutation); ok {
			early = append(early, m.GetMutations()...)
		}
	}
	hfs := h.hcm.GetHttpFilters()
	for i := 0; i < h.tollgate && i < len(hfs); i++ {
		fi := openFilter(hfs[i])
		if m, ok := fi.cfg.(*hmfilterv3.HeaderMutation); ok && !hfs[i].GetDisabled() && fi.wrapper == nil {
			filters = append(filters, m.GetMutations().GetRequestMutations()...)
		}
	}
	return early, filters
}

// checkInternalHeaders reports client-supplied internal headers (x-tollgate-*) that can
// reach ext_proc or the first route match: a client could pick its own upstream route.
func (c *checker) checkInternalHeaders(h hcmAt) {
	early, filters := c.requestMutations(h)
	all := append(append([]*mutationv3.HeaderMutation{}, early...), filters...)
	route, probe := c.opt.RoutingHeader, c.opt.InternalPrefix+"probe"
	where := h.path + ".early_header_mutation_extensions"
	fix := fmt.Sprintf("remove every %s* header in early_header_mutation_extensions (remove_on_match, key_matcher prefix %q), as envoy/envoy.yaml does", c.opt.InternalPrefix, c.opt.InternalPrefix)
	switch {
	case !removedBy(all, route):
		c.f.add(High, "internal-headers-not-stripped", where,
			fmt.Sprintf("a client-supplied %s header is not removed before ext_proc and route matching: a client can choose its own upstream route", route), fix)
	case !removedBy(all, probe):
		c.f.add(Medium, "internal-headers-not-stripped", where,
			fmt.Sprintf("only %s is removed; other client-supplied %s* headers reach Tollgate and the routes", route, c.opt.InternalPrefix), fix)
	case !removedBy(early, route) || !removedBy(early, probe):
		c.f.add(Low, "internal-headers-stripped-late", where,
			fmt.Sprintf("%s* headers are removed by an HTTP filter, which runs after the first route match: that match (and the per-route ext_proc settings it selects) can still see a client's header", c.opt.InternalPrefix), fix)
	}
}
