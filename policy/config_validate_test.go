package policy_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// Values planted in the broken config below that must never come back in an error.
const (
	plantedCredential = "sk-live-plaintext-key-123"
	plantedPepper     = "pepper-pasted-in-place-0123456789abcdef"
	plantedKEK        = "kek-material-pasted-in-place-0123456789"
	plantedRedisPass  = "redis-password-pasted-in-place"
	plantedHookAuth   = "Bearer webhook-token-pasted-in-place"
)

// everySectionBroken returns BaseConfig (with defaults) broken in every section Validate
// checks: listeners and admin, security, limits, log, reload, providers, models, teams,
// budget, guardrails, audit and keys.
func everySectionBroken() policy.Config {
	cfg := policytest.BaseConfig()
	cfg.ApplyDefaults()

	cfg.Listen.ExtProc = "unix:"
	cfg.Listen.ExtProcTLS = policy.TLSListenerConfig{CertFile: "server.pem", MinVersion: "1.1"}
	cfg.Listen.Admin = "admin-without-port"
	cfg.Admin.TokenSHA256 = "not-hex"
	cfg.Admin.TLS = policy.TLSListenerConfig{KeyFile: "admin.key", AllowedSANs: []string{"*.example.org", "10.0.0.1"}}

	cfg.Security.Pepper = plantedPepper
	cfg.Security.KEKs = []policy.KEKConfig{
		{ID: "bad id!", Key: plantedKEK},
		{ID: "k1", Key: "env:TG_KEK_1"},
		{ID: "k1", Key: "env:TG_KEK_2"},
	}
	cfg.Limits.MaxRequestBytes = policy.MaxRequestBytesCeiling + 1
	cfg.Log = policy.LogConfig{Level: "loud", Format: "xml"}
	cfg.Reload = time.Millisecond

	cfg.Providers[0].Credential = plantedCredential
	cfg.Providers[1].Type = "bard"
	cfg.Providers[1].Route = "bad route"
	cfg.Providers[1].Organization = "org-1"
	cfg.Providers[2].Credentials = policy.CredentialsConfig{Primary: "env:TG_AZURE_NEXT"}
	cfg.Providers[3].Credential = ""
	cfg.Providers[3].Credentials = policy.CredentialsConfig{Next: "env:TG_VLLM_NEXT"}
	cfg.Providers = append(cfg.Providers, policy.ProviderConfig{
		Name: "oai", Type: policy.ProviderOpenAI, Route: "openai", Credential: "none",
		ForwardHeaders: []string{"authorization", "x-trace-id"}, Project: "bad project!",
	})

	cfg.Models = append(cfg.Models,
		policy.ModelConfig{Name: "", Provider: "nope", MaxOutputTokens: -1},
		policy.ModelConfig{Name: "gpt-4o-mini", Provider: "oai", Aliases: []string{"fast", "", "llama"}},
		policy.ModelConfig{Name: "priced", Provider: "oai", Pricing: &policy.PricingConfig{Input: "one", Output: "-2"}},
		policy.ModelConfig{Name: strings.Repeat("m", 257), Provider: "vllm", Pricing: &policy.PricingConfig{Input: "1"}},
	)

	cfg.Teams[1].Models = []string{"missing-model", "claude-haiku"}
	cfg.Teams = append(cfg.Teams,
		policy.TeamConfig{Name: "platform", Guardrails: "ghost-profile"},
		policy.TeamConfig{
			Name:          "bad name!",
			Limits:        policy.LimitsConfig{RequestsPerMinute: -1, USDPerDay: "abc", USDPerMonth: "10"},
			RequestPolicy: policy.RequestPolicyConfig{OverCap: "maybe", Streaming: "sometimes", MaxMessages: -1},
		},
	)

	cfg.Budget.Ledger = policy.LedgerRedis
	cfg.Budget.Redis = policy.RedisConfig{
		Addrs: []string{"ftp://redis:6379", "rediss://redis:6380"}, Password: plantedRedisPass, DB: -1,
	}
	cfg.Budget.Timezone = "Mars/Olympus_Mons"
	cfg.Budget.Hold = time.Second
	cfg.Budget.DefaultMaxOutputTokens = 0
	cfg.Budget.FailOpen = []string{"usd_per_day", "usd_per_century"}

	cfg.Guardrails.Default = "ghost-default"

	cfg.Audit.Stdout = true
	cfg.Audit.QueueSize = -1
	cfg.Audit.QueueMaxBytes = -1
	cfg.Audit.Content = "maybe"
	cfg.Audit.File = &policy.AuditFileConfig{Fsync: "sometimes"}
	cfg.Audit.Webhook = &policy.AuditWebhookConfig{URL: "http://audit.example.org/ingest", Authorization: plantedHookAuth}

	cfg.Keys = []policy.KeyConfig{
		{ID: "short", Team: "ghosts", Hash: "zz", Models: []string{"missing-model"},
			Limits: policy.LimitsConfig{TokensPerMinute: -5}, RequestPolicy: policy.RequestPolicyConfig{MaxChoices: -1},
			Guardrails: "ghost-key-profile"},
		{ID: "abcdefghijkl", Team: "platform", Hash: strings.Repeat("0", 64)},
		{ID: "abcdefghijkl", Team: "research", Hash: strings.Repeat("1", 64), RequestPolicy: policy.RequestPolicyConfig{MaxRequestBytes: -1}},
	}
	return cfg
}

// TestValidateEveryProblemGolden pins the whole joined error, text and order, of a config
// with a problem in every section, so a reorganisation of Validate provably changes nothing.
// Refresh with -update only when a message is meant to change.
func TestValidateEveryProblemGolden(t *testing.T) {
	cfg := everySectionBroken()
	err := cfg.Validate()
	require.Error(t, err)
	got := err.Error() + "\n"

	golden := filepath.Join("testdata", "validate_every_section.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, rerr := os.ReadFile(golden)
	require.NoError(t, rerr)
	require.Equal(t, string(want), got)

	for _, section := range []string{
		"listen.extproc:", "listen.extproc_tls.", "listen.admin:", "admin.token_sha256:", "admin.tls.",
		"security.pepper:", "security.keks[", "limits.max_request_bytes:", "log.level:", "log.format:",
		"reload_interval:", "providers[", "models[", "teams[", "budget.", "guardrails.", "audit.", "keys[",
	} {
		require.Contains(t, got, section, "the broken config must exercise every section")
	}
	for _, secret := range []string{plantedCredential, plantedPepper, plantedKEK, plantedRedisPass, plantedHookAuth} {
		require.NotContains(t, got, secret, "validation must never echo a pasted secret")
	}
}
