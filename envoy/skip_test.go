package envoy_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// skipAlways replaces envoy.yaml's matcher around ext_proc with one that skips ext_proc for
// every request, from the request headers on.
const skipAlways = `
              xds_matcher:
                on_no_match:
                  action:
                    name: skip
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter`

// replaceMatcher swaps the xds_matcher of the ext_proc filter in the bootstrap at path.
func replaceMatcher(t *testing.T, path, matcher string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	src := string(b)
	const from, to = "\n              xds_matcher:\n", "\n              extension_config:\n"
	require.Equal(t, 1, strings.Count(src, from), "one xds_matcher in envoy.yaml")
	i, j := strings.Index(src, from), strings.Index(src, to)
	require.Less(t, i, j)
	src = src[:i] + matcher + src[j:]
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
}

// withoutVhostEnable removes the tollgate virtual host's entry that enables ext_proc, which
// http_filters disables by default.
func withoutVhostEnable(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	src := string(b)
	const from, to = "\n              typed_per_filter_config:\n                envoy.filters.http.ext_proc:\n", "\n              request_headers_to_remove:"
	require.Equal(t, 1, strings.Count(src, from), "the virtual host enables ext_proc")
	i := strings.Index(src, from)
	j := i + strings.Index(src[i:], to)
	require.Less(t, i, j)
	src = src[:i] + src[j:]
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
}

// TestFailClosedWhenExtProcSkipped: envoy.yaml runs ext_proc only where the tollgate virtual
// host enables it, and skips it only for replies Envoy makes to requests Tollgate never
// forwarded, a decision that cannot be taken before response headers exist. Were ext_proc ever
// left out of a request instead (the matcher deciding on the request path, or the virtual host
// not enabling the filter), the request must still end on the catch-all route with the JSON
// 502 and reach no upstream, even when the client names one in x-tollgate-upstream. Nothing
// listens on the ext_proc port: a request that consulted ext_proc would get a 503, so the 502
// also shows that ext_proc was left out.
func TestFailClosedWhenExtProcSkipped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, cfg string)
	}{
		{"matcher skips every request", func(t *testing.T, cfg string) { replaceMatcher(t, cfg, skipAlways) }},
		{"virtual host does not enable ext_proc", withoutVhostEnable},
	} {
		t.Run(tc.name, func(t *testing.T) { failClosedWithoutExtProc(t, tc.mutate) })
	}
}

func failClosedWithoutExtProc(t *testing.T, mutate func(t *testing.T, cfg string)) {
	bin := testutil.EnvoyBinary(t)
	tlsDir := devTLS(t)
	ports := testutil.FreeEnvoyPorts(t)
	mockHits := startMock(t, ports.Mock)
	cfg := testutil.RenderEnvoyConfig(t, "", ports, tlsDir)
	mutate(t, cfg)
	envoy := testutil.StartEnvoy(t, bin, cfg)

	base := "https://127.0.0.1:" + strconv.Itoa(ports.Listener)
	ca := filepath.Join(tlsDir, devtls.CAFile)
	spoofed := map[string]string{
		"x-tollgate-upstream": "mock",
		"authorization":       "Bearer sk-virtual-not-checked",
		"content-type":        "application/json",
	}
	for _, c := range []struct {
		name, proto string
		client      *http.Client
	}{
		{"h2", "HTTP/2.0", testutil.TLSClient(ca)},
		{"http1", "HTTP/1.1", testutil.TLSClientHTTP1(ca)},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, r := range []struct{ method, path, body string }{
				{http.MethodPost, "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`},
				{http.MethodGet, "/v1/models", ""},
			} {
				resp, body := doRequest(t, c.client, c.proto, r.method, base+r.path, r.body, spoofed)
				require.Equal(t, http.StatusBadGateway, resp.StatusCode, "%s %s: %s", r.method, r.path, body)
				require.True(t, testutil.IsJSONContentType(resp.Header.Get("content-type")))
				var eb testutil.ErrorBody
				require.NoError(t, json.Unmarshal(body, &eb), "%s", body)
				require.Equal(t, "no_upstream", eb.Error.Code)
			}
		})
	}
	require.Zero(t, mockHits.Load(), "no request may reach an upstream when ext_proc is skipped")

	var entries []accessLog
	require.Eventually(t, func() bool {
		entries = entries[:0]
		for _, line := range strings.Split(envoy.Logs(), "\n") {
			var e accessLog
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &e) == nil && e.Method != "" {
				entries = append(entries, e)
			}
		}
		return len(entries) >= 4
	}, 10*time.Second, 50*time.Millisecond, "access log lines")
	for _, e := range entries {
		require.Equal(t, "no_upstream_selected", e.Route, "%+v", e)
		require.Equal(t, "no_healthy_upstream", e.Details, "%+v", e)
	}
}
