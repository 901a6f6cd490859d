// Package stack builds and runs what the bench measures: an Envoy bootstrap with three
// listeners generated from envoy/envoy.yaml, a Tollgate config generated from
// examples/config.yaml, and the processes (Envoy, Tollgate, the upstream, the do-nothing
// ext_proc server).
package stack

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Ports are the loopback ports of one bench stack.
type Ports struct {
	D, N, F    int // Envoy listeners: Envoy only, ext_proc to the do-nothing server, Tollgate
	EnvoyAdmin int
	Tollgate   int // Tollgate ext_proc (h2c)
	Noop       int // do-nothing ext_proc server (h2c)
	Upstream   int // zero-delay upstream (HTTP/1.1)
	// TollgateSock and NoopSock, when set, are unix socket paths that replace the ext_proc
	// servers' TCP ports (both or neither, so N and F stay comparable).
	TollgateSock, NoopSock string
}

// Names the generated bootstrap relies on in envoy/envoy.yaml. If one is renamed there,
// generation fails instead of measuring something else.
const (
	srcListener      = "tollgate_https"
	extProcFilter    = "envoy.filters.http.ext_proc"
	extProcCluster   = "ext_proc_grpc"
	noopCluster      = "ext_proc_noop"
	upstreamCluster  = "mock_llm"
	catchAllRoute    = "no_upstream_selected"
	catchAllCluster  = "no_upstream"
	tollgateVHostKey = "tollgate"
)

// EnvoyBootstrap turns envoy/envoy.yaml (src) into the bench's bootstrap. The listener F is
// envoy.yaml's listener as users run it (every HTTP filter, the ext_proc settings, routes,
// local replies, access log), with two changes: plaintext HTTP on loopback instead of TLS
// (the same for all three paths, and it keeps TLS out of the comparison), and port p.F.
// N is a copy of F whose ext_proc filter talks to the do-nothing server; since that server
// chooses no upstream, N's catch-all route forwards to the upstream. D is a copy of F
// without the ext_proc filter, routed the same way. All three share the cluster mock_llm,
// pointed at the bench upstream. Every edit must find exactly one target.
func EnvoyBootstrap(src []byte, p Ports) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("envoy.yaml: %w", err)
	}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	admin := mapAt(doc, "admin", "address", "socket_address")
	if admin == nil {
		fail("admin.address.socket_address not found")
	} else {
		admin["address"], admin["port_value"] = "127.0.0.1", p.EnvoyAdmin
	}

	sr := mapAt(doc, "static_resources")
	listeners, _ := sr["listeners"].([]any)
	var src0 map[string]any
	for _, l := range listeners {
		if m, ok := l.(map[string]any); ok && m["name"] == srcListener {
			if src0 != nil {
				fail("listener %s occurs twice", srcListener)
			}
			src0 = m
		}
	}
	if src0 == nil {
		return nil, fmt.Errorf("listener %s not found in envoy.yaml", srcListener)
	}
	f, err := benchListener(src0, "bench_f", p.F)
	if err != nil {
		return nil, err
	}
	n, err := benchListener(src0, "bench_n", p.N)
	if err != nil {
		return nil, err
	}
	d, err := benchListener(src0, "bench_d", p.D)
	if err != nil {
		return nil, err
	}
	if err := retargetExtProc(n, noopCluster); err != nil {
		fail("N: %v", err)
	}
	if err := routeCatchAllUpstream(n); err != nil {
		fail("N: %v", err)
	}
	if err := removeExtProc(d); err != nil {
		fail("D: %v", err)
	}
	if err := routeCatchAllUpstream(d); err != nil {
		fail("D: %v", err)
	}
	sr["listeners"] = []any{d, n, f}

	clusters, _ := sr["clusters"].([]any)
	var extproc, up map[string]any
	for _, c := range clusters {
		m, _ := c.(map[string]any)
		switch m["name"] {
		case extProcCluster:
			extproc = m
		case upstreamCluster:
			up = m
		}
	}
	if extproc == nil || up == nil {
		fail("clusters %s and %s must exist", extProcCluster, upstreamCluster)
	} else {
		noopC := deepCopy(extproc).(map[string]any)
		noopC["name"] = noopCluster
		for _, e := range []struct {
			c    map[string]any
			port int
			sock string
		}{{extproc, p.Tollgate, p.TollgateSock}, {noopC, p.Noop, p.NoopSock}, {up, p.Upstream, ""}} {
			if err := setEndpoint(e.c, e.port, e.sock); err != nil {
				fail("cluster %v: %v", e.c["name"], err)
			}
		}
		sr["clusters"] = append(clusters, noopC)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return yaml.Marshal(doc)
}

// benchListener copies the source listener as a plaintext loopback listener named name.
func benchListener(src map[string]any, name string, port int) (map[string]any, error) {
	l := deepCopy(src).(map[string]any)
	l["name"] = name
	sa := mapAt(l, "address", "socket_address")
	if sa == nil {
		return nil, errors.New("listener address.socket_address not found")
	}
	sa["address"], sa["port_value"] = "127.0.0.1", port
	chains, _ := l["filter_chains"].([]any)
	if len(chains) != 1 {
		return nil, fmt.Errorf("listener has %d filter chains, want 1", len(chains))
	}
	chain := chains[0].(map[string]any)
	if _, ok := chain["transport_socket"]; !ok {
		return nil, errors.New("listener has no transport_socket (TLS) to remove")
	}
	delete(chain, "transport_socket")
	hcm := hcmOf(l)
	if hcm == nil {
		return nil, errors.New("http_connection_manager not found")
	}
	hcm["stat_prefix"] = name
	return l, nil
}

// hcmOf returns the listener's HttpConnectionManager typed_config.
func hcmOf(l map[string]any) map[string]any {
	chains, _ := l["filter_chains"].([]any)
	if len(chains) == 0 {
		return nil
	}
	filters, _ := chains[0].(map[string]any)["filters"].([]any)
	for _, f := range filters {
		m, _ := f.(map[string]any)
		if m["name"] == "envoy.filters.network.http_connection_manager" {
			tc, _ := m["typed_config"].(map[string]any)
			return tc
		}
	}
	return nil
}

// httpFilters returns the HCM's http_filters and the index of the ext_proc filter (-1 when
// absent).
func httpFilters(l map[string]any) ([]any, int) {
	hcm := hcmOf(l)
	fs, _ := hcm["http_filters"].([]any)
	idx := -1
	for i, f := range fs {
		if m, _ := f.(map[string]any); m["name"] == extProcFilter {
			idx = i
		}
	}
	return fs, idx
}

// retargetExtProc points the listener's ext_proc filter at cluster.
func retargetExtProc(l map[string]any, cluster string) error {
	fs, i := httpFilters(l)
	if i < 0 {
		return errors.New("ext_proc filter not found")
	}
	eg := mapAt(fs[i].(map[string]any), "typed_config", "extension_config", "typed_config", "grpc_service", "envoy_grpc")
	if eg == nil {
		return errors.New("ext_proc grpc_service.envoy_grpc not found (matcher-wrapped filter expected)")
	}
	if eg["cluster_name"] != extProcCluster {
		return fmt.Errorf("ext_proc cluster is %v, want %s", eg["cluster_name"], extProcCluster)
	}
	eg["cluster_name"] = cluster
	return nil
}

// removeExtProc drops the ext_proc filter and the virtual host's per-filter config that
// enables it.
func removeExtProc(l map[string]any) error {
	fs, i := httpFilters(l)
	if i < 0 {
		return errors.New("ext_proc filter not found")
	}
	hcm := hcmOf(l)
	hcm["http_filters"] = append(append([]any{}, fs[:i]...), fs[i+1:]...)
	vh := tollgateVHost(l)
	if vh == nil {
		return errors.New("virtual host tollgate not found")
	}
	delete(vh, "typed_per_filter_config")
	routes, _ := vh["routes"].([]any)
	for _, r := range routes {
		delete(r.(map[string]any), "typed_per_filter_config")
	}
	return nil
}

// tollgateVHost returns the listener's virtual host named tollgate.
func tollgateVHost(l map[string]any) map[string]any {
	vhs, _ := mapAt(hcmOf(l), "route_config")["virtual_hosts"].([]any)
	for _, v := range vhs {
		if m, _ := v.(map[string]any); m["name"] == tollgateVHostKey {
			return m
		}
	}
	return nil
}

// routeCatchAllUpstream sends the catch-all route to the upstream cluster: on D and N
// nothing chooses an upstream.
func routeCatchAllUpstream(l map[string]any) error {
	vh := tollgateVHost(l)
	if vh == nil {
		return errors.New("virtual host tollgate not found")
	}
	routes, _ := vh["routes"].([]any)
	found := 0
	for _, r := range routes {
		m, _ := r.(map[string]any)
		if m["name"] != catchAllRoute {
			continue
		}
		found++
		rt := mapAt(m, "route")
		if rt == nil || rt["cluster"] != catchAllCluster {
			return fmt.Errorf("route %s does not go to cluster %s", catchAllRoute, catchAllCluster)
		}
		rt["cluster"] = upstreamCluster
		rt["timeout"] = "0s"
	}
	if found != 1 {
		return fmt.Errorf("route %s found %d times, want 1", catchAllRoute, found)
	}
	return nil
}

// setEndpoint points a STATIC cluster's single endpoint at 127.0.0.1:port, or at the unix
// socket sock when it is set.
func setEndpoint(c map[string]any, port int, sock string) error {
	eps, _ := mapAt(c, "load_assignment")["endpoints"].([]any)
	if len(eps) != 1 {
		return fmt.Errorf("%d endpoint groups, want 1", len(eps))
	}
	lbs, _ := eps[0].(map[string]any)["lb_endpoints"].([]any)
	if len(lbs) != 1 {
		return fmt.Errorf("%d lb_endpoints, want 1", len(lbs))
	}
	a := mapAt(lbs[0].(map[string]any), "endpoint", "address")
	sa := mapAt(a, "socket_address")
	if sa == nil {
		return errors.New("endpoint socket_address not found")
	}
	if sock != "" {
		delete(a, "socket_address")
		a["pipe"] = map[string]any{"path": sock}
		return nil
	}
	sa["address"], sa["port_value"] = "127.0.0.1", port
	return nil
}

// mapAt walks nested maps; nil when a step is missing or not a map.
func mapAt(m map[string]any, path ...string) map[string]any {
	cur := m
	for _, k := range path {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

// deepCopy copies the maps and slices of a decoded YAML document.
func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}
