package envoycheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	pgv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/router/cluster_specifiers/priority_group/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// Fallback across providers (envoy/fallback-design.md): Tollgate routes a model with fallback
// targets to a fallback-N route, whose priority_group cluster specifier sends attempt k to the
// cluster named in dynamic metadata tollgate.fallback; Tollgate's upstream ext_proc filter on
// that cluster sets the attempt's key. All attempts share one request header map, so an
// attempt that leaves a cluster without that filter carries the previous attempt's key.

// Fallback names shared with Tollgate (extproc's namespaces and stage header).
const (
	nsFallback     = "tollgate.fallback"
	nsPlan         = "tollgate.plan"
	nsAttempts     = "tollgate.attempts"
	stageHeader    = "x-tollgate-stage"
	stageUpstream  = "upstream"
	fallbackPrefix = "fallback-"
	maxPlanTargets = 4
)

// fallbackSpecifier returns the route's priority_group cluster specifier when it is
// Tollgate's (it reads tollgate.fallback), else nil.
func fallbackSpecifier(a *routev3.RouteAction) *pgv3.PriorityGroupClusterSpecifier {
	p := a.GetInlineClusterSpecifierPlugin()
	if p == nil {
		return nil
	}
	pg, ok := unpack(p.GetExtension().GetTypedConfig()).(*pgv3.PriorityGroupClusterSpecifier)
	if !ok || pg.GetOverrideMetadataNamespace() != nsFallback {
		return nil
	}
	return pg
}

// checkFallbackRoute checks a fallback-N route: it matches one exact fallback-N value, fails
// closed without a plan, retries onto the next group at most N-1 times, and only on what a
// provider did not bill.
func (c *checker) checkFallbackRoute(h hcmAt, r *routev3.Route, rp string, rs extProcState, pg *pgv3.PriorityGroupClusterSpecifier) {
	a := r.GetRoute()
	if !rs.runs() {
		c.bypass(rp, "the fallback clusters")
	}
	v, kind := routingMatch(r, c.opt.RoutingHeader)
	n, err := strconv.Atoi(strings.TrimPrefix(v, fallbackPrefix))
	if kind != matchExact || !strings.HasPrefix(v, fallbackPrefix) || err != nil || n < 2 || n > maxPlanTargets {
		c.f.add(Medium, "fallback-route-match", join(rp, "match"),
			fmt.Sprintf("the fallback route must match %s exactly fallback-N, N from 2 to %d: Tollgate routes a plan of N targets there", c.opt.RoutingHeader, maxPlanTargets),
			"match string_match.exact: fallback-N, one route per N, as envoy/envoy.yaml does")
		n = 0
	} else {
		c.fallbackRoutes[n] = rp
	}
	for _, g := range pg.GetPriorityGroups() {
		for _, cl := range g.GetClusters() {
			if cc, ok := c.clusters[cl.GetClusterName()]; !ok || len(endpoints(cc)) > 0 {
				c.f.add(Medium, "fallback-default-group", join(rp, "route.inline_cluster_specifier_plugin"),
					fmt.Sprintf("without a plan in %s the route sends the request to cluster %q; it must fail closed on a cluster without endpoints (no_upstream)", nsFallback, cl.GetClusterName()),
					"set priority_groups to one group with the cluster no_upstream")
			}
		}
	}
	rp2 := join(rp, "route.retry_policy")
	rt := a.GetRetryPolicy()
	switch {
	case !rt.GetRefreshClusterOnRetry():
		c.f.add(Medium, "fallback-retry-policy", rp2,
			"refresh_cluster_on_retry is not true: every retry goes to the first target's cluster again, and Tollgate refuses the attempt (502)",
			"set retry_policy.refresh_cluster_on_retry: true")
	case n > 0 && int(rt.GetNumRetries().GetValue()) != n-1:
		c.f.add(Medium, "fallback-retry-policy", join(rp2, "num_retries"),
			fmt.Sprintf("num_retries is %d on a route for plans of %d targets: it must be %d (Envoy reuses the last target past the plan, and Tollgate refuses that attempt)", rt.GetNumRetries().GetValue(), n, n-1),
			fmt.Sprintf("set num_retries: %d", n-1))
	}
	for _, code := range rt.GetRetriableStatusCodes() {
		if code != 429 && code < 500 {
			c.f.add(Medium, "fallback-retry-policy", join(rp2, "retriable_status_codes"),
				fmt.Sprintf("status %d is retried on another provider: a 4xx other than 429 means the request or the key is wrong, and another provider would hide it", code),
				"retry only 429 (retriable_status_codes) and 5xx")
		}
	}
	for _, on := range strings.Split(rt.GetRetryOn(), ",") {
		if on = strings.TrimSpace(on); on == "retriable-4xx" {
			c.f.add(Medium, "fallback-retry-policy", join(rp2, "retry_on"),
				"retry_on retriable-4xx retries a 409 on another provider", "remove retriable-4xx")
		}
	}
	if len(a.GetRequestMirrorPolicies()) > 0 {
		c.f.add(High, "route-mirrors-provider-traffic", join(rp, "route.request_mirror_policies"),
			"the route mirrors provider requests to another cluster: each copy carries the prompt",
			"remove request_mirror_policies from provider routes")
	}
	c.checkRouteTimeouts(a, rp)
}

// checkFallback checks what fallback needs beyond its routes: the downstream filter exchanges
// the plan and the attempts' reports, every cluster with Tollgate's upstream filter runs it
// safely, every cluster a fallback plan names (providers[].cluster) has it, and every plan
// length the config uses has its route.
func (c *checker) checkFallback() {
	uses := len(c.fallbackRoutes) > 0 || len(c.opt.FallbackClusters) > 0
	if !uses {
		return
	}
	for _, h := range c.hcms {
		if h.tollgate >= 0 {
			c.checkFallbackNamespaces(h)
		}
	}
	for _, name := range sortedKeys(c.clusters) {
		c.checkUpstreamFilter(name, c.clusters[name])
	}
	for _, name := range sortedKeys(c.opt.FallbackClusters) {
		cl, ok := c.clusters[name]
		provs := strings.Join(c.opt.FallbackClusters[name], ",")
		switch {
		case !ok:
			c.f.list = append(c.f.list, Finding{Severity: Medium, ID: "fallback-cluster-missing", File: "config",
				Path:    fmt.Sprintf("providers[%s].cluster", provs),
				Problem: fmt.Sprintf("cluster %q does not exist in the Envoy file: every fallback attempt to it fails (503)", name),
				Fix:     "add the provider's cluster, with Tollgate's upstream filter chain, or fix providers[].cluster"})
		case c.upstreamFilter(cl) == nil:
			c.f.add(High, "fallback-upstream-filter-missing", fmt.Sprintf("static_resources.clusters[%s]", name),
				fmt.Sprintf("providers %s send fallback attempts to this cluster, which has no Tollgate upstream ext_proc filter: an attempt leaves with no provider key, or with the key an earlier attempt set for another provider", provs),
				"add Tollgate's upstream filter chain (typed_extension_protocol_options HttpProtocolOptions.http_filters, as envoy/envoy.yaml's provider clusters)")
		}
	}
	for _, n := range c.opt.FallbackPlans {
		if _, ok := c.fallbackRoutes[n]; !ok && len(c.hcms) > 0 {
			c.f.list = append(c.f.list, Finding{Severity: Medium, ID: "fallback-route-missing", File: "config",
				Path:    "models[].fallback",
				Problem: fmt.Sprintf("a model has %d targets, but no Envoy route matches %s: fallback-%d; its requests fail with the no-upstream 502", n, c.opt.RoutingHeader, n),
				Fix:     fmt.Sprintf("add the fallback-%d route of envoy/envoy.yaml", n)})
		}
	}
}

// checkFallbackNamespaces checks that Tollgate's downstream filter may write the plan and
// reads the attempts' reports.
func (c *checker) checkFallbackNamespaces(h hcmAt) {
	fi := openFilter(h.hcm.GetHttpFilters()[h.tollgate])
	ep, ok := fi.cfg.(*filterv3.ExternalProcessor)
	if !ok {
		return
	}
	mo := ep.GetMetadataOptions()
	recv, fwd := mo.GetReceivingNamespaces().GetUntyped(), mo.GetForwardingNamespaces().GetUntyped()
	if !slices.Contains(recv, nsFallback) || !slices.Contains(recv, nsPlan) || !slices.Contains(fwd, nsAttempts) {
		c.f.add(Medium, "fallback-namespaces", join(join(filterPath(h, h.tollgate), fi.cfgPath), "metadata_options"),
			fmt.Sprintf("fallback needs metadata_options.receiving_namespaces %s and %s (the plan Tollgate writes) and forwarding_namespaces %s (the attempts' reports): without them fallback requests fail closed, or are charged without their reports", nsFallback, nsPlan, nsAttempts),
			"add them, as envoy/envoy.yaml does")
	}
}

// upstreamFilter returns Tollgate's upstream ext_proc filter on a cluster (the one that says
// x-tollgate-stage: upstream), nil when it has none.
func (c *checker) upstreamFilter(cl *clusterv3.Cluster) *hcmv3.HttpFilter {
	for _, hf := range c.upstreamFilters(cl) {
		ep, ok := openFilter(hf).cfg.(*filterv3.ExternalProcessor)
		if !ok {
			continue
		}
		for _, md := range ep.GetGrpcService().GetInitialMetadata() {
			if strings.EqualFold(md.GetKey(), stageHeader) && md.GetValue() == stageUpstream {
				return hf
			}
		}
	}
	return nil
}

// upstreamFilters returns a cluster's upstream HTTP filters.
func (c *checker) upstreamFilters(cl *clusterv3.Cluster) []*hcmv3.HttpFilter {
	a := cl.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	po, ok := unpack(a).(*upstreamhttpv3.HttpProtocolOptions)
	if !ok {
		return nil
	}
	return po.GetHttpFilters()
}

// checkUpstreamFilter checks Tollgate's upstream filter on one cluster, if it has one: it
// fails closed, buffers the request body, reads the plan and reports the attempt, and the
// cluster's TLS does not depend on auto_sni.
func (c *checker) checkUpstreamFilter(name string, cl *clusterv3.Cluster) {
	hf := c.upstreamFilter(cl)
	if hf == nil {
		return
	}
	fi := openFilter(hf)
	ep := fi.cfg.(*filterv3.ExternalProcessor)
	p := join(fmt.Sprintf("static_resources.clusters[%s].typed_extension_protocol_options.http_filters[%s]", name, hf.GetName()), fi.cfgPath)
	if ep.GetFailureModeAllow() {
		c.f.add(High, "failure-mode-allow", join(p, "failure_mode_allow"),
			"failure_mode_allow: true on Tollgate's upstream filter sends an attempt on when Tollgate fails: with no key, or with the key an earlier attempt set for another provider",
			"set failure_mode_allow: false")
	}
	if ep.GetObservabilityMode() || ep.GetDisableImmediateResponse() {
		c.f.add(High, "extproc-ignores-denials", p,
			"Tollgate's upstream filter ignores Tollgate's replies (observability_mode or disable_immediate_response): attempts go out unchecked",
			"remove observability_mode and disable_immediate_response")
	}
	c.checkMode(join(p, "processing_mode"), ep.GetProcessingMode(), true)
	attrs := ep.GetRequestAttributes()
	mo := ep.GetMetadataOptions()
	if !slices.Contains(attrs, "upstream.request_attempt_count") || !slices.Contains(attrs, "xds.cluster_name") ||
		!slices.Contains(mo.GetForwardingNamespaces().GetUntyped(), nsPlan) || !slices.Contains(mo.GetReceivingNamespaces().GetUntyped(), nsAttempts) {
		c.f.add(Medium, "fallback-upstream-filter", p,
			fmt.Sprintf("Tollgate's upstream filter needs request_attributes upstream.request_attempt_count and xds.cluster_name, forwarding_namespaces %s and receiving_namespaces %s: without them Tollgate refuses every attempt", nsPlan, nsAttempts),
			"configure it as envoy/envoy.yaml's provider clusters do")
	}
	c.checkExtProcCluster(p, ep.GetGrpcService())
	if tc, ok := unpack(cl.GetTransportSocket().GetTypedConfig()).(*tlsv3.UpstreamTlsContext); ok && tc.GetSni() == "" && !tc.GetAutoHostSni() {
		c.f.add(Medium, "fallback-auto-sni", fmt.Sprintf("static_resources.clusters[%s].transport_socket", name),
			"the cluster has no static sni: a fallback attempt's Host comes from auto_host_rewrite, and auto_sni does not follow it (an empty SNI was measured on attempt 2)",
			"set sni and validation_context.match_typed_subject_alt_names to the provider's host")
	}
}
