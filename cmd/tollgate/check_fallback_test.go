package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/cmd/tollgate/internal/envoycheck"
)

// TestCheckFallbackConfig: `tollgate check` reads the clusters and plan lengths of the
// config's fallback models and holds the Envoy file to them: the shipped pair with a fallback
// model passes; a cluster of the plan without Tollgate's upstream filter is a high finding,
// since its attempts would carry an earlier attempt's provider key.
func TestCheckFallbackConfig(t *testing.T) {
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join("..", "..", "examples", "config.yaml"))
	require.NoError(t, err)
	withFallback := strings.Replace(string(cfg), "  - name: text-embedding-3-small\n", `  - name: fast-anywhere
    provider: mock-openai
    upstream_model: mock-gpt-4o-mini
    pricing: {input: "0.15", output: "0.60"}
    fallback:
      - provider: openai
        upstream_model: gpt-4o-mini
  - name: text-embedding-3-small
`, 1)
	require.NotEqual(t, string(cfg), withFallback)
	cfgFile := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(withFallback), 0o600))

	envoyRaw, err := os.ReadFile(filepath.Join("..", "..", "envoy", "envoy.yaml"))
	require.NoError(t, err)
	res := runCheckJSON(t, "--config", cfgFile, "--envoy", filepath.Join("..", "..", "envoy", "envoy.yaml"))
	require.Equal(t, 0, res.code, res.text)
	for _, f := range res.report.Findings {
		require.NotContains(t, f.ID, "fallback", "%+v", f)
	}

	const chain = "          http_protocol_options: {}\n        http_filters: *tollgate_upstream_filters\n    load_assignment:\n      cluster_name: mock_llm"
	require.Equal(t, 1, strings.Count(string(envoyRaw), chain))
	bare := strings.Replace(string(envoyRaw), chain, "          http_protocol_options: {}\n    load_assignment:\n      cluster_name: mock_llm", 1)
	envoyFile := filepath.Join(dir, "envoy.yaml")
	require.NoError(t, os.WriteFile(envoyFile, []byte(bare), 0o600))
	res = runCheckJSON(t, "--config", cfgFile, "--envoy", envoyFile)
	require.Equal(t, 1, res.code, res.text)
	require.True(t, has(res.report, "fallback-upstream-filter-missing", envoycheck.High), "%v", ids(res.report))

	// Without the fallback model the same Envoy file passes: mock_llm then serves only routes
	// where the downstream filter sets the key.
	res = runCheckJSON(t, "--config", filepath.Join("..", "..", "examples", "config.yaml"), "--envoy", envoyFile)
	require.Equal(t, 0, res.code, res.text)
}
