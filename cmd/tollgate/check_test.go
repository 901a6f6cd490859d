package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/cmd/tollgate/internal/envoycheck"
)

const checkData = "testdata/check"

// checkResult is one `tollgate check --json` run.
type checkResult struct {
	report envoycheck.Report
	text   string // stdout and stderr
	code   int    // exit status main would use
}

func runCheckJSON(t *testing.T, args ...string) checkResult {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"check", "--json"}, args...), &out, &errOut)
	res := checkResult{text: out.String() + errOut.String()}
	if err != nil {
		res.code = exitCode(err)
		res.text += err.Error()
	}
	if res.code != 2 {
		require.NoError(t, json.Unmarshal(out.Bytes(), &res.report), "%s", out.String())
	}
	return res
}

// has reports whether rep holds a finding with id and severity.
func has(rep envoycheck.Report, id string, sev envoycheck.Severity) bool {
	for _, f := range rep.Findings {
		if f.ID == id && f.Severity == sev {
			return true
		}
	}
	return false
}

func ids(rep envoycheck.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, f.Severity.String()+":"+f.ID)
	}
	return out
}

// TestSeverityText: severities are written by name and read back.
func TestSeverityText(t *testing.T) {
	for _, s := range []envoycheck.Severity{envoycheck.High, envoycheck.Medium, envoycheck.Low} {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back envoycheck.Severity
		require.NoError(t, back.UnmarshalText(b))
		require.Equal(t, s, back)
	}
}

// TestCheckGoodFixtures: the good pair keeps every promise, so it has no finding at all and
// exits 0. Every bad fixture below differs from it in one place.
func TestCheckGoodFixtures(t *testing.T) {
	res := runCheckJSON(t, "--config", filepath.Join(checkData, "config-good.yaml"), "--envoy", filepath.Join(checkData, "envoy-good.yaml"))
	require.Equal(t, 0, res.code, res.text)
	require.Empty(t, res.report.Findings)

	// The Envoy file alone: no cross-check with providers[].route or listen.extproc.
	res = runCheckJSON(t, "--envoy", filepath.Join(checkData, "envoy-unrouted-provider.yaml"))
	require.Equal(t, 0, res.code, res.text)
	require.Empty(t, res.report.Findings)
}

// TestScrubValues: values quoted in a decoding error are dropped, field names kept.
func TestScrubValues(t *testing.T) {
	in := `'providers[0].api_version' cannot parse 'x': strconv.ParseInt: parsing "sk-1": invalid syntax, value: 'sk-2'`
	out := scrubValues(in)
	require.NotContains(t, out, "sk-1")
	require.NotContains(t, out, "sk-2")
	require.Contains(t, out, "'providers[0].api_version'")
}

// TestCheckEnvoyFixtures runs each bad Envoy fixture with the good config: each must raise
// its own finding, and exit 1 exactly when a finding is high.
func TestCheckEnvoyFixtures(t *testing.T) {
	H, M, L := envoycheck.High, envoycheck.Medium, envoycheck.Low
	tests := []struct {
		file string
		id   string
		sev  envoycheck.Severity
	}{
		{"admin-exposed", "envoy-admin-exposed", H},
		{"failure-mode-allow", "failure-mode-allow", H},
		{"override-failure-open", "failure-mode-allow", H},
		{"lua-before-extproc", "extproc-not-first", H},
		{"second-extproc-first", "extproc-not-first", H},
		{"unknown-type", "extproc-not-first", H},
		{"unknown-type", "envoy-unknown-type", M},
		{"route-bypass", "route-bypasses-extproc", H},
		{"filter-disabled", "route-bypasses-extproc", H},
		{"second-listener", "route-bypasses-extproc", H},
		{"route-without-header", "route-without-routing-header", H},
		{"skip-matcher", "extproc-skippable", H},
		{"extproc-missing", "extproc-missing", H},
		{"headers-not-stripped", "internal-headers-not-stripped", H},
		{"headers-stripped-late", "internal-headers-stripped-late", L},
		{"cluster-header", "cluster-header-routing", H},
		{"route-timeout", "route-timeout", M},
		{"idle-timeout", "route-timeout", M},
		{"stream-idle-timeout", "stream-timeout", M},
		{"no-normalize-path", "normalize-path", H},
		{"no-merge-slashes", "merge-slashes", H},
		{"escaped-slashes", "escaped-slashes", M},
		{"extproc-cluster-timeout", "extproc-cluster-timeout", M},
		{"extproc-plaintext", "extproc-plaintext", H},
		{"extproc-stream-timeout", "extproc-stream-timeout", M},
		{"access-log-credentials", "access-log-credentials", H},
		{"access-log-api-key", "access-log-credentials", H},
		{"access-log-body", "access-log-body", H},
		{"access-log-query", "access-log-query", L},
		{"request-id-preserved", "request-id-preserved", H},
		{"no-remote-address", "request-id-preserved", M},
		{"processing-mode", "extproc-processing-mode", H},
		{"observability-mode", "extproc-observability-mode", H},
		{"ignores-denials", "extproc-ignores-denials", H},
		{"unrouted-provider", "provider-route-missing", M},
		{"unrouted-provider", "route-value-unused", L},
		{"mirror", "route-mirrors-provider-traffic", H},
		{"unknown-field", "envoy-decode", H},
		{"invalid-value", "envoy-invalid", H},
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.id, func(t *testing.T) {
			res := runCheckJSON(t, "--config", filepath.Join(checkData, "config-good.yaml"),
				"--envoy", filepath.Join(checkData, "envoy-"+tc.file+".yaml"))
			require.True(t, has(res.report, tc.id, tc.sev), "want %s:%s, got %v", tc.sev, tc.id, ids(res.report))
			wantCode := 0
			if res.report.Counts.High > 0 {
				wantCode = 1
			}
			require.Equal(t, wantCode, res.code, res.text)
			for _, f := range res.report.Findings {
				require.NotEmpty(t, f.Problem)
				require.NotEmpty(t, f.Fix)
				require.Contains(t, []string{"envoy", "config"}, f.File)
			}
		})
	}
}

// TestCheckConfigFixtures runs each bad Tollgate config with the good Envoy file.
func TestCheckConfigFixtures(t *testing.T) {
	t.Setenv("TOLLGATE_CHECK_UNSET_PEPPER", "")
	H, M, L := envoycheck.High, envoycheck.Medium, envoycheck.Low
	tests := []struct {
		file string
		id   string
		sev  envoycheck.Severity
		path string
	}{
		{"plaintext-credential", "plaintext-secret", H, "providers[0].credential"},
		{"plaintext-chain-key", "plaintext-secret", H, "audit.chain_key"},
		{"plaintext-pepper", "plaintext-secret", H, "security.pepper"},
		{"plaintext-redis-url", "plaintext-secret", H, "budget.redis.addrs[0]"},
		{"plaintext-admin-token", "plaintext-secret", H, "admin.token_sha256"},
		{"weak-pepper", "weak-pepper", H, "security.pepper"},
		{"empty-pepper", "weak-pepper", H, "security.pepper"},
		{"repetitive-pepper", "weak-pepper", H, "security.pepper"},
		{"missing-pepper-file", "not-checked", L, "security.pepper"},
		{"unset-pepper-env", "not-checked", L, "security.pepper"},
		{"extproc-exposed", "extproc-exposed", H, "listen.extproc"},
		{"extproc-half-mtls", "extproc-exposed", H, "listen.extproc_tls"},
		{"admin-exposed", "admin-exposed", H, "listen.admin"},
		{"admin-token-plaintext", "admin-exposed", M, "listen.admin"},
		{"unknown-field", "config-invalid", H, ""},
		{"secret-in-int-field", "config-invalid", H, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			res := runCheckJSON(t, "--config", filepath.Join(checkData, "config-"+tc.file+".yaml"),
				"--envoy", filepath.Join(checkData, "envoy-good.yaml"))
			found := false
			for _, f := range res.report.Findings {
				found = found || (f.ID == tc.id && f.Severity == tc.sev && f.Path == tc.path && f.File == "config")
			}
			require.True(t, found, "want %s:%s at %s, got %+v", tc.sev, tc.id, tc.path, res.report.Findings)
			if tc.sev == H {
				require.Equal(t, 1, res.code, res.text)
			}
		})
	}
}

// TestCheckMTLSExtProc: a network ext_proc listener with complete mutual TLS is not
// reported as exposed (the listener settings are read whether or not this build's config
// schema knows them).
func TestCheckMTLSExtProc(t *testing.T) {
	res := runCheckJSON(t, "--config", filepath.Join(checkData, "config-extproc-mtls.yaml"))
	for _, f := range res.report.Findings {
		require.NotEqual(t, "extproc-exposed", f.ID, "%+v", f)
	}
}

// TestCheckNeverPrintsSecrets: the plaintext values and the pepper found in the fixtures
// never appear in the report, text or JSON.
func TestCheckNeverPrintsSecrets(t *testing.T) {
	pepper, err := os.ReadFile(filepath.Join(checkData, "pepper-short"))
	require.NoError(t, err)
	secrets := []string{"sk-proj-PLAINTEXTSECRET0000", "chain-key-PLAINTEXT", "hunter2REDIS", "pepper-in-the-clear-0123456789abcdef", "admin-token-PLAINTEXT", "TYPEDINTOINT", string(pepper)}
	files := []string{"plaintext-credential", "plaintext-chain-key", "plaintext-redis-url", "plaintext-pepper", "plaintext-admin-token", "weak-pepper", "secret-in-int-field"}
	for _, file := range files {
		for _, asJSON := range []bool{false, true} {
			args := []string{"check", "--config", filepath.Join(checkData, "config-"+file+".yaml"), "--envoy", filepath.Join(checkData, "envoy-good.yaml")}
			if asJSON {
				args = append(args, "--json")
			}
			var out bytes.Buffer
			err := run(context.Background(), args, &out, &out)
			require.Error(t, err)
			text := out.String() + err.Error()
			for _, s := range secrets {
				require.NotContains(t, text, s, "%s (json %v)", file, asJSON)
			}
		}
	}
}

// TestCheckTextOutput shows what an operator reads: severity, id, where, what, fix and a
// count line; exit 1 with a high finding.
func TestCheckTextOutput(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"check", "--config", filepath.Join(checkData, "config-good.yaml"),
		"--envoy", filepath.Join(checkData, "envoy-failure-mode-allow.yaml")}, &out, &out)
	require.ErrorIs(t, err, errHighFindings)
	require.Equal(t, 1, exitCode(err))
	text := out.String()
	require.Contains(t, text, "HIGH    failure-mode-allow\n")
	require.Contains(t, text, "  where: envoy: static_resources.listeners[gateway].filter_chains[0].filters[envoy.filters.network.http_connection_manager].typed_config.http_filters[envoy.filters.http.ext_proc].typed_config.failure_mode_allow\n")
	require.Contains(t, text, "  fix:   set failure_mode_allow: false")
	require.True(t, strings.HasSuffix(text, "1 high, 0 medium, 0 low\n"), text)
}

// TestCheckUsageErrors: the check could not run, so the exit status is 2.
func TestCheckUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no files", nil},
		{"missing envoy file", []string{"--envoy", filepath.Join(checkData, "nope.yaml")}},
		{"missing config file", []string{"--config", filepath.Join(checkData, "nope.yaml")}},
		{"stray argument", []string{"--envoy", filepath.Join(checkData, "envoy-good.yaml"), "extra"}},
		{"bad flag", []string{"--bogus"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"check"}, tc.args...), &out, &out)
			require.Error(t, err)
			require.Equal(t, 2, exitCode(err))
		})
	}
}

// shippedGaps are the findings the shipped envoy/envoy.yaml and examples/config.yaml may
// have, none of them high, each with its reason. The check must exit 0 on the shipped pair.
var shippedGaps = map[string]string{
	// The example config's secrets live in ../.dev, which `tollgate dev init` creates.
	"low:not-checked": "pepper and key file not readable before dev init",
	// envoy.yaml routes x-tollgate-upstream: local to a local OpenAI-compatible server that
	// the example config does not configure (it is there for operators to enable).
	"low:route-value-unused": "route local has no provider in examples/config.yaml",
	// This branch's envoy.yaml predates path_with_escaped_slashes_action (issue 9, item 4,
	// adds it); once it is set the finding disappears.
	"medium:escaped-slashes": "envoy.yaml leaves path_with_escaped_slashes_action at its default",
}

// TestCheckShipped: the shipped Envoy bootstrap and example config pass (exit 0, no high
// finding), before `tollgate dev init` (secrets not readable: noted, not failed) and after it
// (the pepper and key file are then checked too).
func TestCheckShipped(t *testing.T) {
	envoyFile := filepath.Join("..", "..", "envoy", "envoy.yaml")
	cfgFile := filepath.Join("..", "..", "examples", "config.yaml")

	assertShipped := func(t *testing.T, res checkResult) {
		t.Helper()
		require.Equal(t, 0, res.code, res.text)
		require.Zero(t, res.report.Counts.High, "%v", ids(res.report))
		for _, f := range res.report.Findings {
			_, known := shippedGaps[f.Severity.String()+":"+f.ID]
			require.True(t, known, "unexpected finding on the shipped files: %+v", f)
		}
	}
	t.Run("before dev init", func(t *testing.T) {
		res := runCheckJSON(t, "--config", cfgFile, "--envoy", envoyFile)
		assertShipped(t, res)
		require.True(t, has(res.report, "not-checked", envoycheck.Low), "%v", ids(res.report))
	})
	t.Run("after dev init", func(t *testing.T) {
		root := t.TempDir()
		require.NoError(t, os.Mkdir(filepath.Join(root, "examples"), 0o755))
		raw, err := os.ReadFile(cfgFile)
		require.NoError(t, err)
		cfgCopy := filepath.Join(root, "examples", "config.yaml")
		require.NoError(t, os.WriteFile(cfgCopy, raw, 0o600))
		devInitRun(t, filepath.Join(root, ".dev"))
		res := runCheckJSON(t, "--config", cfgCopy, "--envoy", envoyFile)
		assertShipped(t, res)
		require.False(t, has(res.report, "not-checked", envoycheck.Low), "%v", ids(res.report))
	})
}

// TestCheckExistingEnvoyExample: the "existing Envoy plus Tollgate" example users copy passes
// the check with no finding, so the documented block keeps what Tollgate relies on.
func TestCheckExistingEnvoyExample(t *testing.T) {
	res := runCheckJSON(t, "--envoy", filepath.Join("..", "..", "examples", "existing-envoy", "after.yaml"))
	require.Equal(t, 0, res.code, res.text)
	require.Zero(t, res.report.Counts.High+res.report.Counts.Medium, "%v", ids(res.report))
}
