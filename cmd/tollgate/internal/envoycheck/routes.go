package envoycheck

import (
	"fmt"
	"slices"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// matchKind says how a route matches the routing header.
type matchKind int

const (
	matchNone  matchKind = iota // the route ignores the header
	matchExact                  // an exact, case-sensitive value
	matchOther                  // present, prefix, regex, inverted, ...
)

// routingMatch returns how r matches header, and the value for matchExact.
func routingMatch(r *routev3.Route, header string) (string, matchKind) {
	for _, hm := range r.GetMatch().GetHeaders() {
		if !strings.EqualFold(hm.GetName(), header) {
			continue
		}
		//lint:ignore SA1019 exact_match is deprecated but Envoy 1.40 still routes on it
		exact := hm.GetExactMatch()
		switch {
		case hm.GetInvertMatch():
		case exact != "":
			return exact, matchExact
		case hm.GetStringMatch().GetExact() != "" && !hm.GetStringMatch().GetIgnoreCase():
			return hm.GetStringMatch().GetExact(), matchExact
		}
		return "", matchOther
	}
	return "", matchNone
}

// targets returns the clusters a route action may forward to by name.
func targets(a *routev3.RouteAction) []string {
	if a.GetCluster() != "" {
		return []string{a.GetCluster()}
	}
	var out []string
	for _, w := range a.GetWeightedClusters().GetClusters() {
		out = append(out, w.GetName())
	}
	return out
}

// routeConfigPath is where an HCM's inline routes sit.
func routeConfigPath(h hcmAt) string { return join(h.path, "route_config") }

// forEachRoute calls fn for every route of h's inline route config.
func forEachRoute(h hcmAt, fn func(vh *routev3.VirtualHost, vp string, r *routev3.Route, rp string)) {
	for i, vh := range h.hcm.GetRouteConfig().GetVirtualHosts() {
		vp := label(join(routeConfigPath(h), "virtual_hosts"), i, vh)
		for j, r := range vh.GetRoutes() {
			fn(vh, vp, r, label(join(vp, "routes"), j, r))
		}
	}
}

// collectRoutes learns, from an HCM with Tollgate's filter, which routing-header values Envoy
// routes and which clusters those routes reach (the provider clusters).
func (c *checker) collectRoutes(h hcmAt) {
	if h.hcm.GetRouteConfig() == nil {
		c.f.add(Low, "routes-not-checked", h.path,
			"routes come from RDS or scoped routes; they were not checked (bypass, routing header, timeouts)",
			"run the check on a bootstrap with the routes inline")
		return
	}
	forEachRoute(h, func(_ *routev3.VirtualHost, _ string, r *routev3.Route, rp string) {
		v, kind := routingMatch(r, c.opt.RoutingHeader)
		if kind == matchNone || r.GetRoute() == nil || fallbackSpecifier(r.GetRoute()) != nil {
			return
		}
		if kind == matchExact {
			if _, seen := c.routedValues[v]; !seen {
				c.routedValues[v] = rp
			}
		}
		for _, cl := range targets(r.GetRoute()) {
			c.providerClusters[cl] = true
		}
	})
}

// extProcState is whether Tollgate's filter runs on a route, resolved level by level (route
// configuration, virtual host, route, weighted cluster), the most specific level winning.
type extProcState struct {
	filterOn bool // the HTTP filter is enabled (HttpFilter.disabled / FilterConfig.disabled)
	off      bool // ExtProcPerRoute.disabled
}

func (s extProcState) runs() bool { return s.filterOn && !s.off }

// apply returns s after one level's typed_per_filter_config; with report set it also
// reports unsafe ext_proc overrides found there.
func (c *checker) apply(s extProcState, cfgs map[string]*anypb.Any, name, path string, report bool) extProcState {
	a, ok := cfgs[name]
	if !ok {
		return s
	}
	p := fmt.Sprintf("%s.typed_per_filter_config[%s]", path, name)
	m := unpack(a)
	if fc, ok := m.(*routev3.FilterConfig); ok {
		s.filterOn = !fc.GetDisabled()
		m, p = unpack(fc.GetConfig()), p+".config"
	}
	pr, ok := m.(*filterv3.ExtProcPerRoute)
	if !ok {
		return s
	}
	if pr.GetDisabled() {
		s.off = true
		return s
	}
	if o := pr.GetOverrides(); o != nil {
		s.off = false
		if report && o.GetFailureModeAllow().GetValue() {
			c.f.add(High, "failure-mode-allow", join(p, "overrides.failure_mode_allow"),
				"a per-route override sets failure_mode_allow: true: requests on these routes pass when Tollgate is down or slow, with the client's virtual key and no budget or guardrail",
				"remove the override's failure_mode_allow")
		}
		if report {
			c.checkMode(join(p, "overrides.processing_mode"), o.GetProcessingMode(), false)
		}
	}
	return s
}

// checkRoutes checks the routes of an HCM that carries Tollgate's filter.
func (c *checker) checkRoutes(h hcmAt) {
	rc := h.hcm.GetRouteConfig()
	if rc == nil {
		return
	}
	hf := h.hcm.GetHttpFilters()[h.tollgate]
	name := hf.GetName()
	base := c.apply(extProcState{filterOn: !hf.GetDisabled()}, rc.GetTypedPerFilterConfig(), name, routeConfigPath(h), true)
	vhStates := map[*routev3.VirtualHost]extProcState{}
	forEachRoute(h, func(vh *routev3.VirtualHost, vp string, r *routev3.Route, rp string) {
		vs, ok := vhStates[vh]
		if !ok {
			vs = c.apply(base, vh.GetTypedPerFilterConfig(), name, vp, true)
			vhStates[vh] = vs
		}
		rs := c.apply(vs, r.GetTypedPerFilterConfig(), name, rp, true)
		c.checkRoute(h, r, rp, rs, name)
	})
}

// checkRoute checks one route of a Tollgate HCM.
func (c *checker) checkRoute(h hcmAt, r *routev3.Route, rp string, rs extProcState, name string) {
	a := r.GetRoute()
	if a == nil {
		return // direct_response, redirect: nothing is forwarded
	}
	if pg := fallbackSpecifier(a); pg != nil {
		c.checkFallbackRoute(h, r, rp, rs, pg)
		return
	}
	if a.GetClusterHeader() != "" {
		c.checkClusterHeader(h, a.GetClusterHeader(), join(rp, "route.cluster_header"))
		if !rs.runs() {
			c.bypass(rp, "cluster_header "+a.GetClusterHeader())
		}
	}
	if a.GetClusterSpecifierPlugin() != "" || a.GetInlineClusterSpecifierPlugin() != nil {
		c.f.add(Medium, "cluster-specifier-plugin", join(rp, "route"),
			"the route picks its cluster with a cluster specifier plugin, which the check cannot evaluate",
			"route with exact matches on the routing header to named clusters")
	}
	provider := false
	for i, cl := range targets(a) {
		if !c.providerClusters[cl] {
			continue
		}
		provider = true
		s := rs
		if ws := a.GetWeightedClusters().GetClusters(); len(ws) > i && a.GetCluster() == "" {
			s = c.apply(rs, ws[i].GetTypedPerFilterConfig(), name, label(join(rp, "route.weighted_clusters.clusters"), i, ws[i]), true)
		}
		if !s.runs() {
			c.bypass(rp, "provider cluster "+cl)
		}
	}
	if !provider {
		return
	}
	switch _, kind := routingMatch(r, c.opt.RoutingHeader); kind {
	case matchNone:
		c.f.add(High, "route-without-routing-header", join(rp, "match"),
			fmt.Sprintf("the route forwards to a provider cluster without matching %s: requests can reach that provider whatever Tollgate chose, with the key Tollgate set for another provider or none", c.opt.RoutingHeader),
			fmt.Sprintf("match each provider route on an exact %s value (string_match.exact), as envoy/envoy.yaml does", c.opt.RoutingHeader))
	case matchOther:
		c.f.add(Medium, "routing-header-not-exact", join(rp, "match.headers"),
			fmt.Sprintf("the route matches %s by something other than one exact value", c.opt.RoutingHeader),
			"use string_match.exact with the provider's route value")
	}
	if len(a.GetRequestMirrorPolicies()) > 0 {
		c.f.add(High, "route-mirrors-provider-traffic", join(rp, "route.request_mirror_policies"),
			"the route mirrors provider requests to another cluster: each copy carries the provider key Tollgate set and the prompt",
			"remove request_mirror_policies from provider routes")
	}
	c.checkRouteTimeouts(a, rp)
}

// bypass reports a forwarding route on which Tollgate's filter does not run.
func (c *checker) bypass(rp, what string) {
	c.f.add(High, "route-bypasses-extproc", rp,
		fmt.Sprintf("ext_proc is disabled on a route that forwards to %s: requests skip key checks, budgets and guardrails", what),
		"remove the per-route ExtProcPerRoute{disabled: true} (or FilterConfig{disabled: true}); only direct_response routes such as /healthz may disable it")
}

// checkClusterHeader reports routing on a header's value: whoever can set the header picks
// any cluster, including ext_proc's own.
func (c *checker) checkClusterHeader(h hcmAt, header, path string) {
	early, _ := c.requestMutations(h)
	if removedBy(early, header) {
		c.f.add(Medium, "cluster-header-routing", path,
			fmt.Sprintf("the route picks its cluster from header %s; clients cannot send it, but any value Tollgate (or a later filter) sets names any cluster, including the ext_proc cluster", header),
			fmt.Sprintf("replace cluster_header with one route per provider matching an exact %s value", c.opt.RoutingHeader))
		return
	}
	c.f.add(High, "cluster-header-routing", path,
		fmt.Sprintf("the route picks its cluster from header %s, which a client can send: a client chooses any cluster, bypassing Tollgate's routing", header),
		fmt.Sprintf("replace cluster_header with one route per provider matching an exact %s value", c.opt.RoutingHeader))
}

// checkRouteTimeouts reports route timeouts that cut streamed completions.
func (c *checker) checkRouteTimeouts(a *routev3.RouteAction, rp string) {
	switch t := a.GetTimeout(); {
	case t == nil:
		c.f.add(Medium, "route-timeout", join(rp, "route.timeout"),
			"the provider route has no timeout set, so Envoy's default of 15 s ends every longer completion (and Tollgate loses its usage)",
			"set timeout: 0s on provider routes and bound inactivity with idle_timeout instead")
	case t.AsDuration() > 0:
		c.f.add(Medium, "route-timeout", join(rp, "route.timeout"),
			fmt.Sprintf("the provider route's timeout of %s ends every longer completion (and Tollgate loses its usage)", t.AsDuration()),
			"set timeout: 0s on provider routes and bound inactivity with idle_timeout instead")
	}
	if t := a.GetIdleTimeout(); t != nil && t.AsDuration() > 0 && t.AsDuration() < minIdle {
		c.f.add(Medium, "route-timeout", join(rp, "route.idle_timeout"),
			fmt.Sprintf("idle_timeout %s resets a stream that is silent that long; a model thinking before its first token takes longer", t.AsDuration()),
			"set idle_timeout to several minutes (envoy/envoy.yaml uses 600s)")
	}
	if t := a.GetMaxStreamDuration().GetMaxStreamDuration(); t != nil && t.AsDuration() > 0 {
		c.f.add(Medium, "route-timeout", join(rp, "route.max_stream_duration"),
			fmt.Sprintf("max_stream_duration %s cuts every stream at that age", t.AsDuration()),
			"remove max_stream_duration from provider routes")
	}
}

// checkOtherHCM reports a connection manager without Tollgate's filter whose routes reach a
// provider cluster: a second door to the providers.
func (c *checker) checkOtherHCM(h hcmAt) {
	forEachRoute(h, func(_ *routev3.VirtualHost, _ string, r *routev3.Route, rp string) {
		for _, cl := range targets(r.GetRoute()) {
			if c.providerClusters[cl] {
				c.f.add(High, "route-bypasses-extproc", rp,
					fmt.Sprintf("this HTTP connection manager has no Tollgate ext_proc filter but routes to provider cluster %s: requests skip key checks, budgets and guardrails", cl),
					"add Tollgate's ext_proc filter to this connection manager, or remove the route")
				return
			}
		}
	})
}

// checkRouteValues cross-checks providers[].route of the Tollgate config with the routing
// header values Envoy routes.
func (c *checker) checkRouteValues() {
	if c.opt.ProviderRoutes == nil || len(c.hcms) == 0 {
		return
	}
	for _, v := range sortedKeys(c.opt.ProviderRoutes) {
		if _, ok := c.routedValues[v]; ok {
			continue
		}
		c.f.list = append(c.f.list, Finding{Severity: Medium, ID: "provider-route-missing", File: "config",
			Path:    fmt.Sprintf("providers[%s].route", strings.Join(c.opt.ProviderRoutes[v], ",")),
			Problem: fmt.Sprintf("route %q has no Envoy route matching %s: %s; every request to it fails with the no-upstream 502", v, c.opt.RoutingHeader, v),
			Fix:     fmt.Sprintf("add a route matching %s exactly %q to the provider's cluster, or fix providers[].route", c.opt.RoutingHeader, v)})
	}
	for _, v := range sortedKeys(c.routedValues) {
		if _, ok := c.opt.ProviderRoutes[v]; !ok {
			c.f.add(Low, "route-value-unused", c.routedValues[v],
				fmt.Sprintf("Envoy routes %s: %s, but no provider in the Tollgate config uses route %q", c.opt.RoutingHeader, v, v),
				"remove the route, or add the provider that should use it")
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
