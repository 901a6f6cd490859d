// Package envoycheck checks an Envoy 1.40 bootstrap against what Tollgate relies on: every
// provider request goes through Tollgate's ext_proc filter, fails closed, cannot carry a
// client's internal headers, and leaves no credential in Envoy's logs. The bootstrap is
// decoded strictly with go-control-plane's protos, so a field Envoy would reject is reported
// instead of ignored. It lives apart from policy/, which has no Envoy imports.
package envoycheck

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
)

// Options tells the check what the Tollgate config expects of Envoy.
type Options struct {
	// RoutingHeader is the header Tollgate sets to pick the upstream (policy.RoutingHeader).
	RoutingHeader string
	// InternalPrefix is the prefix of every Tollgate-internal header
	// (policy.InternalHeaderPrefix); a client must never be able to send one.
	InternalPrefix string
	// ProviderRoutes maps each providers[].route value of the Tollgate config to the
	// providers that use it. Nil skips the cross-check.
	ProviderRoutes map[string][]string
	// ExtProcAddr is listen.extproc of the Tollgate config (host:port or unix:/path); the
	// ext_proc filter whose cluster points there is Tollgate's. Empty: every ext_proc filter.
	ExtProcAddr string
	// MetadataNamespace is the dynamic metadata namespace Tollgate writes on the requests it
	// forwards (extproc.MetadataNamespace).
	MetadataNamespace string
	// FallbackClusters maps each providers[].cluster a fallback plan names to its providers;
	// each must run Tollgate's upstream filter. Nil skips the cross-check.
	FallbackClusters map[string][]string
	// FallbackPlans lists the plan lengths (targets per model) the config uses; each needs
	// its fallback-N route.
	FallbackPlans []int
}

// Check decodes the Envoy bootstrap raw (YAML or JSON) and returns its findings, sorted. It
// never panics on any input; an undecodable file is a high finding.
func Check(raw []byte, opt Options) []Finding {
	f := &findings{file: "envoy"}
	if bs := decode(raw, f); bs != nil {
		validate("", bs, f)
		c := newChecker(bs, opt, f)
		c.run()
	}
	Sort(f.list)
	return f.list
}

// checker holds one bootstrap and what was learnt from it while checking.
type checker struct {
	bs       *bootstrapv3.Bootstrap
	opt      Options
	f        *findings
	clusters map[string]*clusterv3.Cluster
	hcms     []hcmAt
	// providerClusters are the clusters Tollgate's routes send provider traffic to.
	providerClusters map[string]bool
	// routedValues are the routing-header values Envoy routes on, with a route path each.
	routedValues map[string]string
	// fallbackRoutes are Tollgate's fallback-N routes by N, with their paths.
	fallbackRoutes map[int]string
}

// hcmAt is one HTTP connection manager and where it sits.
type hcmAt struct {
	path     string
	hcm      *hcmv3.HttpConnectionManager
	listener *listenerv3.Listener
	// tollgate is the index in hcm.http_filters of Tollgate's ext_proc filter, or -1.
	tollgate int
}

func newChecker(bs *bootstrapv3.Bootstrap, opt Options, f *findings) *checker {
	c := &checker{bs: bs, opt: opt, f: f, clusters: map[string]*clusterv3.Cluster{},
		providerClusters: map[string]bool{}, routedValues: map[string]string{}, fallbackRoutes: map[int]string{}}
	for _, cl := range bs.GetStaticResources().GetClusters() {
		c.clusters[cl.GetName()] = cl
	}
	for i, l := range bs.GetStaticResources().GetListeners() {
		lp := label("static_resources.listeners", i, l)
		walk(lp, l, func(path string, m proto.Message) bool {
			h, ok := m.(*hcmv3.HttpConnectionManager)
			if ok {
				c.hcms = append(c.hcms, hcmAt{path: path, hcm: h, listener: l, tollgate: -1})
			}
			return !ok
		})
	}
	return c
}

func (c *checker) run() {
	c.checkAdmin()
	if d := c.bs.GetDynamicResources(); d.GetLdsConfig() != nil || d.GetCdsConfig() != nil ||
		d.GetLdsResourcesLocator() != "" || d.GetCdsResourcesLocator() != "" {
		c.f.add(Low, "envoy-dynamic", "dynamic_resources",
			"listeners or clusters come from xDS; only the static parts of this file were checked",
			"run the check on a bootstrap that holds the resources the gateway serves (e.g. a config dump rendered as a bootstrap)")
	}
	found := false
	for i := range c.hcms {
		h := &c.hcms[i]
		h.tollgate = c.tollgateFilter(h)
		found = found || h.tollgate >= 0
	}
	if !found {
		c.f.add(High, "extproc-missing", "static_resources.listeners",
			"no HTTP connection manager runs Tollgate's ext_proc filter: requests reach providers without key swap, budgets or guardrails",
			"add envoy.filters.http.ext_proc pointing at Tollgate (see envoy/envoy.yaml and envoy/README.md)")
	}
	for _, h := range c.hcms {
		if h.tollgate >= 0 {
			c.collectRoutes(h)
		}
	}
	if len(c.providerClusters) == 0 {
		c.guessProviderClusters()
	}
	for _, h := range c.hcms {
		if h.tollgate >= 0 {
			c.checkHCM(h)
		} else {
			c.checkOtherHCM(h)
		}
	}
	c.checkRouteValues()
	c.checkFallback()
	c.checkAccessLogs()
}

// guessProviderClusters is used when no route matches the routing header: every cluster
// with endpoints, other than Tollgate's own, is then taken to be a provider.
func (c *checker) guessProviderClusters() {
	ext := map[string]bool{}
	for _, h := range c.hcms {
		if h.tollgate >= 0 {
			ep := openFilter(h.hcm.GetHttpFilters()[h.tollgate]).cfg.(*filterv3.ExternalProcessor)
			ext[ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()] = true
		}
	}
	for name, cl := range c.clusters {
		if !ext[name] && len(endpoints(cl)) > 0 {
			c.providerClusters[name] = true
		}
	}
}

// checkAdmin reports an Envoy admin interface reachable from the network: it has no
// authentication and can change runtime values, drain listeners or quit Envoy.
func (c *checker) checkAdmin() {
	addr := c.bs.GetAdmin().GetAddress()
	if addr == nil {
		return
	}
	if host, ok := networkAddress(addr); ok {
		c.f.add(High, "envoy-admin-exposed", "admin.address",
			fmt.Sprintf("Envoy's admin interface listens on %s, a non-loopback address; it is unauthenticated (config dump, /quitquitquit, /runtime_modify)", host),
			"bind admin to 127.0.0.1 (or a unix socket: address.pipe) and reach it through a port forward")
	}
}

// networkAddress reports whether a is reachable from other hosts (not loopback, not a unix
// socket, not an internal listener), with its host.
func networkAddress(a *corev3.Address) (string, bool) {
	sa := a.GetSocketAddress()
	if sa == nil {
		return "", false
	}
	return sa.GetAddress(), !isLoopbackHost(sa.GetAddress())
}

// isLoopbackHost reports whether host names only this machine.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// endpoints returns the addresses of a static cluster's endpoints.
func endpoints(cl *clusterv3.Cluster) []*corev3.Address {
	var out []*corev3.Address
	for _, le := range cl.GetLoadAssignment().GetEndpoints() {
		for _, lb := range le.GetLbEndpoints() {
			if a := lb.GetEndpoint().GetAddress(); a != nil {
				out = append(out, a)
			}
		}
	}
	return out
}

// sameAddress reports whether an Envoy endpoint reaches Tollgate's listen address want
// (host:port or unix:/path). A Tollgate bound to all interfaces matches any host with its
// port; loopback names match each other.
func sameAddress(a *corev3.Address, want string) bool {
	if path, ok := strings.CutPrefix(want, "unix:"); ok {
		return a.GetPipe() != nil && a.GetPipe().GetPath() == path
	}
	sa := a.GetSocketAddress()
	host, port, err := net.SplitHostPort(want)
	if sa == nil || err != nil || strconv.Itoa(int(sa.GetPortValue())) != port {
		return false
	}
	switch {
	case host == "" || host == "0.0.0.0" || host == "::":
		return true
	case isLoopbackHost(host) && isLoopbackHost(sa.GetAddress()):
		return true
	}
	return strings.EqualFold(host, sa.GetAddress())
}
