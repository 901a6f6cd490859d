package envoycheck

import (
	"fmt"
	"net"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

// tollgateFilter returns the index of Tollgate's ext_proc filter in h, or -1: the first
// ext_proc filter whose gRPC target reaches listen.extproc. When none does, the first
// ext_proc filter is taken and the mismatch reported.
func (c *checker) tollgateFilter(h *hcmAt) int {
	first := -1
	for i, hf := range h.hcm.GetHttpFilters() {
		ep, ok := openFilter(hf).cfg.(*filterv3.ExternalProcessor)
		if !ok {
			continue
		}
		if c.opt.ExtProcAddr == "" || c.reachesTollgate(ep.GetGrpcService()) {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	if first >= 0 {
		c.f.add(Medium, "extproc-target", filterPath(*h, first),
			fmt.Sprintf("no ext_proc filter's gRPC service reaches listen.extproc (%s) of the Tollgate config; this one is assumed to be Tollgate's", c.opt.ExtProcAddr),
			"point the ext_proc cluster's endpoint at listen.extproc (or fix listen.extproc)")
	}
	return first
}

// reachesTollgate reports whether a gRPC service targets listen.extproc.
func (c *checker) reachesTollgate(g *corev3.GrpcService) bool {
	if eg := g.GetEnvoyGrpc(); eg != nil {
		for _, a := range endpoints(c.clusters[eg.GetClusterName()]) {
			if sameAddress(a, c.opt.ExtProcAddr) {
				return true
			}
		}
		return false
	}
	target := g.GetGoogleGrpc().GetTargetUri()
	if path, ok := strings.CutPrefix(target, "unix:"); ok {
		path = strings.TrimPrefix(path, "//")
		return sameAddress(&corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: path}}}, c.opt.ExtProcAddr)
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(target, "dns:///"))
	if err != nil {
		return false
	}
	var p uint32
	if _, err := fmt.Sscan(port, &p); err != nil {
		return false
	}
	return sameAddress(&corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: p}}}}, c.opt.ExtProcAddr)
}

// checkExtProc checks Tollgate's ext_proc filter config and its cluster.
func (c *checker) checkExtProc(h hcmAt) {
	fp := filterPath(h, h.tollgate)
	fi := openFilter(h.hcm.GetHttpFilters()[h.tollgate])
	ep := fi.cfg.(*filterv3.ExternalProcessor)
	p := join(fp, fi.cfgPath)
	if ep.GetFailureModeAllow() {
		c.f.add(High, "failure-mode-allow", join(p, "failure_mode_allow"),
			"failure_mode_allow: true lets requests through when Tollgate is down or slow: the client's virtual key goes upstream, budgets, guardrails and the audit record are skipped",
			"set failure_mode_allow: false (Envoy then answers 503/504 and forwards nothing)")
	}
	if ep.GetGrpcService() == nil {
		c.f.add(High, "extproc-http-service", join(p, "http_service"),
			"ext_proc uses http_service, which sends headers only: Tollgate never sees bodies (model, budget, redaction)",
			"use grpc_service.envoy_grpc pointing at Tollgate's cluster")
	}
	if ep.GetObservabilityMode() {
		c.f.add(High, "extproc-observability-mode", join(p, "observability_mode"),
			"observability_mode: true ignores every reply from Tollgate: no key swap, no denial, no redaction",
			"remove observability_mode")
	}
	if ep.GetDisableImmediateResponse() {
		c.f.add(High, "extproc-ignores-denials", join(p, "disable_immediate_response"),
			"disable_immediate_response: true ignores Tollgate's denials (401/403/429) and lets the request continue without processing",
			"remove disable_immediate_response")
	}
	c.checkMode(join(p, "processing_mode"), ep.GetProcessingMode(), true)
	if ep.GetMessageTimeout() == nil {
		c.f.add(Low, "extproc-message-timeout", join(p, "message_timeout"),
			"message_timeout is not set: Envoy's default of 200 ms is tight for a key lookup plus redaction of a large body",
			"set message_timeout explicitly (envoy/envoy.yaml uses 2s)")
	}
	if t := ep.GetGrpcService().GetTimeout(); t != nil && t.AsDuration() > 0 {
		c.f.add(Medium, "extproc-stream-timeout", join(p, "grpc_service.timeout"),
			fmt.Sprintf("grpc_service.timeout %s caps the whole ext_proc stream, which lives as long as its request: long streamed completions are cut", t.AsDuration()),
			"leave grpc_service.timeout unset; message_timeout bounds each message")
	}
	c.checkSkipMatcher(fp, fi)
	c.checkExtProcCluster(p, ep.GetGrpcService())
}

// checkMode reports a processing mode other than the one Tollgate's protocol loop expects:
// request headers and body BUFFERED (it must see the whole JSON before anything goes
// upstream), response headers and body STREAMED (usage is read from every chunk).
func (c *checker) checkMode(path string, pm *filterv3.ProcessingMode, top bool) {
	if pm == nil && !top {
		return // a per-route override without a mode keeps the filter's
	}
	var bad []string
	if pm.GetRequestHeaderMode() == filterv3.ProcessingMode_SKIP {
		bad = append(bad, "request_header_mode SKIP (want SEND)")
	}
	if pm.GetResponseHeaderMode() == filterv3.ProcessingMode_SKIP {
		bad = append(bad, "response_header_mode SKIP (want SEND)")
	}
	if m := pm.GetRequestBodyMode(); m != filterv3.ProcessingMode_BUFFERED {
		bad = append(bad, fmt.Sprintf("request_body_mode %s (want BUFFERED)", m))
	}
	if m := pm.GetResponseBodyMode(); m != filterv3.ProcessingMode_STREAMED {
		bad = append(bad, fmt.Sprintf("response_body_mode %s (want STREAMED)", m))
	}
	if len(bad) == 0 {
		return
	}
	c.f.add(High, "extproc-processing-mode", path,
		"ext_proc processing mode is not the one Tollgate needs: "+strings.Join(bad, ", ")+"; without the whole request body Tollgate cannot check the model, reserve budget or redact, and without the response body it cannot settle usage",
		"set request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SEND, response_body_mode: STREAMED")
}

// checkExtProcCluster checks the cluster Envoy reaches Tollgate through.
func (c *checker) checkExtProcCluster(p string, g *corev3.GrpcService) {
	name := g.GetEnvoyGrpc().GetClusterName()
	if name == "" {
		return
	}
	cl, ok := c.clusters[name]
	if !ok {
		if c.bs.GetDynamicResources().GetCdsConfig() == nil {
			c.f.add(Medium, "extproc-cluster-missing", join(p, "grpc_service.envoy_grpc.cluster_name"),
				fmt.Sprintf("cluster %q does not exist: every request fails with 503", name),
				"define the cluster under static_resources.clusters")
		}
		return
	}
	cp := fmt.Sprintf("static_resources.clusters[%s]", name)
	if cl.GetConnectTimeout() == nil {
		c.f.add(Medium, "extproc-cluster-timeout", join(cp, "connect_timeout"),
			"the ext_proc cluster has no explicit connect_timeout (Envoy's default is 5 s): with Tollgate unreachable every request hangs that long before failing",
			"set connect_timeout explicitly (envoy/envoy.yaml uses 1s for loopback)")
	}
	if cl.GetTransportSocket() == nil && !hasTLSMatch(cl) {
		for _, a := range endpoints(cl) {
			if host, remote := networkAddress(a); remote {
				c.f.add(High, "extproc-plaintext", cp,
					fmt.Sprintf("ext_proc traffic to %s crosses the network in plaintext: Tollgate's replies carry provider keys", host),
					"keep Tollgate on loopback or a unix socket, or use mTLS (transport_socket with a client certificate, and listen.extproc TLS in Tollgate)")
				break
			}
		}
	}
}

// hasTLSMatch reports whether a cluster picks a transport socket per endpoint.
func hasTLSMatch(cl *clusterv3.Cluster) bool {
	return len(cl.GetTransportSocketMatches()) > 0 || cl.GetTransportSocketMatcher() != nil
}
