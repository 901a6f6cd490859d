package envoycheck

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckFallback: envoy/envoy.yaml's fallback-N routes and upstream filter chain pass; each
// way of breaking them is reported where it is.
func TestCheckFallback(t *testing.T) {
	raw, err := os.ReadFile("../../../../envoy/envoy.yaml")
	require.NoError(t, err)
	shipped := string(raw)
	opts := testOpts
	opts.ProviderRoutes = nil
	opts.FallbackClusters = map[string][]string{"openai": {"openai"}, "anthropic": {"anthropic"}, "mock_llm": {"mock-openai"}}
	opts.FallbackPlans = []int{2, 3}

	const (
		refresh  = "                    refresh_cluster_on_retry: true\n"
		retries3 = "                    num_retries: 2\n"
		failMode = "                failure_mode_allow: false\n                status_on_error: { code: ServiceUnavailable }\n                # Request: headers and the whole body"
		mockTLS  = "        explicit_http_config:\n          http_protocol_options: {}\n        http_filters: *tollgate_upstream_filters\n    load_assignment:\n      cluster_name: mock_llm"
	)
	tests := []struct {
		name string
		in   string
		opts *Options
		want []string // nil: no finding
	}{
		{name: "shipped", in: shipped},
		{name: "shipped, Envoy file alone", in: shipped, opts: &Options{RoutingHeader: testOpts.RoutingHeader,
			InternalPrefix: testOpts.InternalPrefix, ExtProcAddr: testOpts.ExtProcAddr, MetadataNamespace: testOpts.MetadataNamespace}},
		{name: "retries go to the same cluster", in: replaceAll(t, shipped, refresh, "                    refresh_cluster_on_retry: false\n", 3),
			want: []string{"medium:fallback-retry-policy", "medium:fallback-retry-policy", "medium:fallback-retry-policy"}},
		{name: "more retries than targets", in: replaceOnce(t, shipped, retries3, "                    num_retries: 3\n"),
			want: []string{"medium:fallback-retry-policy"}},
		{name: "a 400 retried on another provider", in: replaceOnce(t, shipped,
			"                    retriable_status_codes: [429]\n                    num_retries: 1\n", "                    retriable_status_codes: [429, 400]\n                    num_retries: 1\n"),
			want: []string{"medium:fallback-retry-policy"}},
		{name: "no plan goes to a provider", in: replaceOnce(t, shipped,
			"                        - name: none\n                          clusters: [{ cluster_name: no_upstream, weight: 1 }]\n                        override_metadata_namespace: tollgate.fallback\n                  auto_host_rewrite: true\n                  timeout: 0s\n                  idle_timeout: 600s\n                  retry_policy:\n                    retry_on: \"retriable-status-codes,5xx,reset,connect-failure,refused-stream\"\n                    retriable_status_codes: [429]\n                    num_retries: 1",
			"                        - name: none\n                          clusters: [{ cluster_name: openai, weight: 1 }]\n                        override_metadata_namespace: tollgate.fallback\n                  auto_host_rewrite: true\n                  timeout: 0s\n                  idle_timeout: 600s\n                  retry_policy:\n                    retry_on: \"retriable-status-codes,5xx,reset,connect-failure,refused-stream\"\n                    retriable_status_codes: [429]\n                    num_retries: 1"),
			want: []string{"medium:fallback-default-group"}},
		{name: "the upstream filter fails open", in: replaceOnce(t, shipped, failMode, "                failure_mode_allow: true\n                status_on_error: { code: ServiceUnavailable }\n                # Request: headers and the whole body"),
			// Once per cluster that runs the chain.
			want: []string{"high:failure-mode-allow", "high:failure-mode-allow", "high:failure-mode-allow", "high:failure-mode-allow", "high:failure-mode-allow"}},
		{name: "a fallback cluster without the upstream filter", in: replaceOnce(t, shipped, mockTLS,
			"        explicit_http_config:\n          http_protocol_options: {}\n    load_assignment:\n      cluster_name: mock_llm"),
			want: []string{"high:fallback-upstream-filter-missing"}},
		{name: "the downstream filter cannot write the plan", in: replaceOnce(t, shipped,
			`untyped: ["tollgate", "tollgate.fallback", "tollgate.plan"]`, `untyped: ["tollgate"]`),
			want: []string{"medium:fallback-namespaces"}},
		{name: "the upstream filter lacks the attempt attributes", in: replaceOnce(t, shipped,
			`request_attributes: ["upstream.request_attempt_count", "xds.cluster_name"]`, `request_attributes: ["xds.cluster_name"]`),
			want: []string{"medium:fallback-upstream-filter", "medium:fallback-upstream-filter", "medium:fallback-upstream-filter", "medium:fallback-upstream-filter", "medium:fallback-upstream-filter"}},
		{name: "a plan length without its route", in: replaceOnce(t, shipped, "string_match: { exact: fallback-3 }", "string_match: { exact: fallback-x }"),
			want: []string{"medium:fallback-route-match", "medium:fallback-route-missing"}},
		{name: "auto_sni instead of a static SNI", in: replaceOnce(t, shipped, "        sni: api.anthropic.com\n", ""),
			want: []string{"medium:fallback-auto-sni"}},
		{name: "a cluster the Envoy file lacks", in: shipped, opts: func() *Options {
			o := opts
			o.FallbackClusters = map[string][]string{"nope": {"p"}}
			return &o
		}(), want: []string{"medium:fallback-cluster-missing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			if tc.opts != nil {
				o = *tc.opts
			}
			got := Check([]byte(tc.in), o)
			if tc.want == nil {
				require.Empty(t, got, "%+v", got)
				return
			}
			require.ElementsMatch(t, tc.want, idsOf(got), "%+v", got)
		})
	}
}

// replaceAll replaces old, which must occur n times, in s.
func replaceAll(t *testing.T, s, old, new string, n int) string {
	t.Helper()
	require.Equal(t, n, strings.Count(s, old), "%q", old)
	return strings.ReplaceAll(s, old, new)
}
