package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

// egFilterTimeout replaces Envoy Gateway's fixed 10 s GrpcService timeout in the test, so a
// stream can outlive it without making the test wait 10 s. It is the same setting.
const egFilterTimeout = "2s"

// envoyGatewayFilter returns the ext_proc filter of examples/envoy-gateway/extproc-filter.json
// (what Envoy Gateway generates from the example's EnvoyExtensionPolicy; envoy/ checks that
// derivation) as one line of JSON for the stack's bootstrap: its cluster is the stack's
// ext_proc_grpc, and its GrpcService timeout egFilterTimeout.
func envoyGatewayFilter(t *testing.T, root string) string {
	t.Helper()
	var f map[string]any
	require.NoError(t, json.Unmarshal([]byte(readFile(t, filepath.Join(root, "examples", "envoy-gateway", "extproc-filter.json"))), &f))
	gs := f["grpc_service"].(map[string]any)
	require.Equal(t, "10s", gs["timeout"], "Envoy Gateway's fixed timeout")
	gs["timeout"] = egFilterTimeout
	gs["envoy_grpc"].(map[string]any)["cluster_name"] = "ext_proc_grpc"
	require.NotContains(t, f, "failure_mode_allow", "fail closed (false is the default)")
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(f))
	return strings.TrimSpace(b.String())
}

// TestEnvoyGatewayExtProcFilter runs Tollgate behind the ext_proc filter Envoy Gateway
// generates from examples/envoy-gateway (no mutation rules, no matcher, no max message
// timeout, a GrpcService timeout; envoy/ lists every difference from envoy.yaml's filter) in
// place of envoy.yaml's: keys are swapped, denials pass through, a stream held open longer
// than the GrpcService timeout is not cut and Tollgate sees it to its end, and with Tollgate
// down the filter fails closed with 503.
func TestEnvoyGatewayExtProcFilter(t *testing.T) {
	filter := envoyGatewayFilter(t, testutil.RepoRoot(t))
	s := startStack(t, stackOptions{envoy: func(t *testing.T, cfg string) {
		c := readFile(t, cfg)
		const from, to = "          - name: envoy.filters.http.ext_proc\n", "          - name: envoy.filters.http.router\n"
		require.Equal(t, 1, strings.Count(c, from))
		i, j := strings.Index(c, from), strings.Index(c, to)
		require.Less(t, i, j)
		c = c[:i] + from + "            disabled: true\n            typed_config: " + filter + "\n" + c[j:]
		require.NoError(t, os.WriteFile(cfg, []byte(c), 0o600))
	}})
	bearer := []string{"authorization", "Bearer " + s.keys["demo"], "content-type", "application/json"}

	t.Run("keys are swapped and denials pass through", func(t *testing.T) {
		s.mock.Reset()
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), bearer...)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		up := s.mock.Requests()
		require.Len(t, up, 1)
		require.Equal(t, "Bearer "+s.openAIKey, up[0].Header.Get("authorization"))
		require.Empty(t, up[0].Header.Values("x-tollgate-upstream"))
		r = s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), "authorization", "Bearer tgk_AAAAAAAAAAAA_"+strings.Repeat("b", 49))
		requireJSONError(t, r, http.StatusUnauthorized)
	})

	t.Run("a stream outliving the GrpcService timeout is not cut", func(t *testing.T) {
		hold, err := time.ParseDuration(egFilterTimeout)
		require.NoError(t, err)
		release := s.gate.Hold(2) // the upstream stops after two events
		defer release()
		req, err := http.NewRequest("POST", s.base+"/v1/chat/completions", strings.NewReader(chatBody("fast", true)))
		require.NoError(t, err)
		req.Header.Set("authorization", "Bearer "+s.keys["raw"])
		req.Header.Set("content-type", "application/json")
		req.Header.Set("user-agent", "eg-long-stream")
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		go func() {
			time.Sleep(2 * hold) // the ext_proc stream is now older than its GrpcService timeout
			release()
		}()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err, "the stream was reset")
		require.True(t, strings.HasSuffix(string(body), "data: [DONE]\n\n"), "%s", body)
		// Tollgate saw the whole stream: its request line says complete, with usage.
		require.Eventually(t, func() bool {
			for _, l := range strings.Split(s.tollgate.Logs(), "\n") {
				if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"team":"raw"`) &&
					strings.Contains(l, `"stream":true`) && strings.Contains(l, `"complete":true`) && strings.Contains(l, `"settle_rule":"usage"`) {
					return true
				}
			}
			return false
		}, 10*time.Second, 50*time.Millisecond, "tollgate logged the stream as complete")
	})

	t.Run("Tollgate down: 503, nothing forwarded", func(t *testing.T) {
		s.tollgate.Stop()
		s.mock.Reset()
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), bearer...)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "status_on_error: 503; body: %s", r.body)
		require.Empty(t, s.mock.Requests())
	})
}
