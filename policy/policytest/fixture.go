// Package policytest builds compiled policy snapshots with real virtual keys for tests.
package policytest

import (
	"context"
	"crypto/rand"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/guard"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// Fake provider keys and pepper. They only exist in tests.
const (
	Pepper       = "test-pepper-0123456789abcdef0123456789abcdef"
	OpenAIKey    = "sk-test-openai-provider-key-0001"
	AnthropicKey = "sk-ant-test-provider-key-0002"
	AzureKey     = "azure-test-provider-key-0003"
)

// Fixture is a compiled snapshot plus the plaintext virtual keys that match it.
type Fixture struct {
	Config   policy.Config
	Snapshot *policy.Snapshot
	// Keys maps a name (valid, limited, disabled, expired, research) to its token text.
	Keys map[string]string
	// IDs maps the same names to the public key ids.
	IDs map[string]string
	Now time.Time
}

// Fake key-encryption keys for sealed credentials (base64 of 32 bytes: 0x11..., 0x22...),
// and the key a provider rotates to.
const (
	KEK1          = "ERERERERERERERERERERERERERERERERERERERERERE="
	KEK2          = "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="
	OpenAIKeyNext = "sk-test-openai-provider-key-0004-next"
)

// Env is the fake environment the fixture's secret references resolve in.
var Env = map[string]string{
	"TG_PEPPER":        Pepper,
	"TG_OPENAI_KEY":    OpenAIKey,
	"TG_ANTHROPIC_KEY": AnthropicKey,
	"TG_AZURE_KEY":     AzureKey,
	"TG_OPENAI_NEXT":   OpenAIKeyNext,
	"TG_KEK1":          KEK1,
	"TG_KEK2":          KEK2,
}

// KEKs returns security.keks entries for the fake KEKs: "k1" is KEK1 (env:TG_KEK1), "k2"
// is KEK2 (env:TG_KEK2).
func KEKs(ids ...string) []policy.KEKConfig {
	out := make([]policy.KEKConfig, 0, len(ids))
	for _, id := range ids {
		out = append(out, policy.KEKConfig{ID: id, Key: "env:TG_KEK" + strings.TrimPrefix(id, "k")})
	}
	return out
}

// Seal seals plaintext under the fake KEK id ("k1" or "k2").
func Seal(t testing.TB, id, plaintext string) string {
	t.Helper()
	r, err := policy.LoadKeyring(KEKs(id), "", Resolver())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Wipe()
	s, err := r.Seal(id, []byte(plaintext), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Resolver resolves references against Env only.
func Resolver() secrets.Resolver {
	return secrets.Resolver{LookupEnv: func(n string) (string, bool) { v, ok := Env[n]; return v, ok }}
}

// BaseConfig is a config with an OpenAI, an Anthropic, an Azure and an optional provider
// whose credential is missing, and two teams. Keys are added by New.
func BaseConfig() policy.Config {
	return policy.Config{
		Security: policy.SecurityConfig{Pepper: "env:TG_PEPPER"},
		Limits:   policy.RequestLimits{MaxRequestBytes: 64 << 10},
		Providers: []policy.ProviderConfig{
			{Name: "oai", Type: policy.ProviderOpenAI, Route: "openai", Credential: "env:TG_OPENAI_KEY"},
			{Name: "ant", Type: policy.ProviderAnthropic, Route: "anthropic", Credential: "env:TG_ANTHROPIC_KEY"},
			{Name: "az", Type: policy.ProviderAzureOpenAI, Route: "azure-openai", Credential: "env:TG_AZURE_KEY", APIVersion: "2024-10-21"},
			{Name: "vllm", Type: policy.ProviderOpenAICompatible, Route: "local", Credential: "none"},
			{Name: "off", Type: policy.ProviderOpenAI, Route: "openai", Credential: "env:TG_MISSING", Optional: true},
		},
		Models: []policy.ModelConfig{
			{Name: "gpt-4o-mini", Provider: "oai", Aliases: []string{"fast"}},
			{Name: "gpt-alias-up", Provider: "oai", Upstream: "gpt-4o-2024-08-06"},
			{Name: "claude-haiku", Provider: "ant", Upstream: "claude-haiku-4-5"},
			{Name: "azure-mini", Provider: "az", Upstream: "my-deployment"},
			{Name: "llama", Provider: "vllm"},
			{Name: "offline", Provider: "off"},
		},
		Teams: []policy.TeamConfig{
			{Name: "platform"},
			{Name: "research", Models: []string{"claude-haiku"}},
			{Name: "frozen", Disabled: true},
		},
	}
}

// New compiles BaseConfig with a set of generated keys.
func New(t testing.TB) *Fixture {
	t.Helper()
	return build(t, nil, nil)
}

// NewWith is New with the config changed by mutate before it is compiled.
func NewWith(t testing.TB, mutate func(*policy.Config)) *Fixture {
	t.Helper()
	return build(t, mutate, nil)
}

// Guarded sets a "standard" default profile that redacts emails and blocks AWS keys.
func Guarded(c *policy.Config) {
	c.Guardrails = policy.GuardrailsConfig{Default: "standard", Profiles: []guard.ProfileConfig{{
		Name: "standard",
		Rules: []guard.RuleConfig{
			{ID: "email", Detector: "pii.email", Action: "redact"},
			{ID: "aws-key", Detector: "secret.aws_access_key", Action: "block"},
		},
	}}}
}

// NewWithBudget is New with budgets: gpt-4o-mini costs 1 micro-dollar per input and 2 per
// output token, team platform has 1000 requests per minute and $0.001 (1000 micro-dollars)
// per day, key "limited" has 100000 tokens per minute. mutate may change the config before
// it is compiled; reservation ids are res-1, res-2, ... opts are added to Compile's options.
func NewWithBudget(t testing.TB, l budget.Ledger, mutate func(*policy.Config), opts ...policy.CompileOption) *Fixture {
	t.Helper()
	return build(t, func(cfg *policy.Config) {
		cfg.Models[0].Pricing = &policy.PricingConfig{Input: "1", Output: "2"}
		for _, i := range []int{3, 4, 5} { // an Azure deployment and self-hosted models have no catalog price
			cfg.Models[i].Pricing = &policy.PricingConfig{Input: "0.5", Output: "0.5"}
		}
		cfg.Teams[0].Limits = policy.LimitsConfig{RequestsPerMinute: 1000, USDPerDay: "0.001"}
		for i := range cfg.Keys {
			if cfg.Keys[i].Name == "limited" {
				cfg.Keys[i].Limits = policy.LimitsConfig{TokensPerMinute: 100000}
			}
		}
		if mutate != nil {
			mutate(cfg)
		}
	}, append([]policy.CompileOption{policy.WithLedger(l), policy.WithIDs(sequence("res-"))}, opts...))
}

// sequence returns an id source prefix-1, prefix-2, ...
func sequence(prefix string) func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return prefix + strconv.Itoa(n)
	}
}

func build(t testing.TB, mutate func(*policy.Config), opts []policy.CompileOption) *Fixture {
	t.Helper()
	f := &Fixture{Config: BaseConfig(), Keys: map[string]string{}, IDs: map[string]string{},
		Now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	add := func(name, team string, models []string, disabled bool, expires time.Time) {
		tok, err := keys.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		f.Keys[name] = tok.Reveal()
		f.IDs[name] = tok.ID
		f.Config.Keys = append(f.Config.Keys, policy.KeyConfig{
			ID: tok.ID, Name: name, Team: team, Models: models, Disabled: disabled, Expires: expires,
			Hash: keys.Hash([]byte(Pepper), tok.Secret).String(),
		})
	}
	add("valid", "platform", nil, false, time.Time{})
	add("limited", "platform", []string{"fast"}, false, time.Time{})
	add("disabled", "platform", nil, true, time.Time{})
	add("expired", "platform", nil, false, f.Now.Add(-time.Hour))
	add("research", "research", nil, false, f.Now.Add(time.Hour))
	add("frozen", "frozen", nil, false, time.Time{})
	if mutate != nil {
		mutate(&f.Config)
	}
	s, err := policy.Compile(f.Config, "", Resolver(), f.Now, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.Snapshot = s
	return f
}

// TeamUSDPerDay is the team usd_per_day counter of the snapshot's usage report at now: the
// budget limit NewWithBudget sets on team platform. It fails the test when there is none.
func TeamUSDPerDay(t testing.TB, s *policy.Snapshot, now time.Time) policy.UsageEntry {
	t.Helper()
	rep, err := s.UsageReport(context.Background(), now)
	if err != nil {
		t.Fatalf("usage report: %v", err)
	}
	for _, e := range rep {
		if e.Scope == "team" && e.Limit == "usd_per_day" {
			return e
		}
	}
	t.Fatal("no team usd_per_day counter")
	return policy.UsageEntry{}
}
