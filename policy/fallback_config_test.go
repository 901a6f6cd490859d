package policy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// withClusters gives every provider of BaseConfig a cluster, as a fallback config needs.
func withClusters(c *policy.Config) {
	for i := range c.Providers {
		c.Providers[i].Cluster = c.Providers[i].Name + "_cluster"
	}
}

// TestValidateFallback: providers[].cluster and models[].fallback are checked field by
// field; a target of another dialect is refused until Tollgate translates.
func TestValidateFallback(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*policy.Config)
		want   []string // each a substring of the joined error; none: valid
	}{
		{"valid: openai falls back to azure and an openai-compatible server", func(c *policy.Config) {
			withClusters(c)
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "az", Upstream: "my-deployment"}, {Provider: "vllm", Upstream: "llama"}}
		}, nil},
		{"valid: anthropic falls back to anthropic with its own price", func(c *policy.Config) {
			withClusters(c)
			c.Providers = append(c.Providers, policy.ProviderConfig{Name: "ant2", Type: policy.ProviderAnthropic, Route: "anthropic",
				Cluster: "anthropic_eu", Credential: "env:TG_ANTHROPIC_KEY"})
			c.Models[2].Fallback = []policy.FallbackTarget{{Provider: "ant2", Pricing: &policy.PricingConfig{Input: "1", Output: "5"}}}
		}, nil},
		{"valid: a cluster without fallback is unused", func(c *policy.Config) { withClusters(c) }, nil},
		{"cluster name", func(c *policy.Config) { c.Providers[0].Cluster = "bad cluster" },
			[]string{"providers[0].cluster: must name an Envoy cluster"}},
		{"unknown fallback provider", func(c *policy.Config) {
			withClusters(c)
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "nope"}}
		}, []string{`models[0].fallback[0].provider: unknown provider "nope"`}},
		{"target without cluster", func(c *policy.Config) {
			withClusters(c)
			c.Providers[2].Cluster = ""
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "az", Upstream: "d"}}
		}, []string{`models[0].fallback[0].provider: provider "az" has no cluster`}},
		{"model's own provider without cluster", func(c *policy.Config) {
			withClusters(c)
			c.Providers[0].Cluster = ""
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "az", Upstream: "d"}}
		}, []string{`models[0].provider: provider "oai" has no cluster`}},
		{"duplicate of the primary", func(c *policy.Config) {
			withClusters(c)
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "oai"}}
		}, []string{`models[0].fallback[0]: provider "oai" with upstream model "gpt-4o-mini" is already a target of models[0]`}},
		{"duplicate fallback", func(c *policy.Config) {
			withClusters(c)
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "az", Upstream: "d"}, {Provider: "az", Upstream: "d"}}
		}, []string{`models[0].fallback[1]: provider "az" with upstream model "d" is already a target of models[0].fallback[0]`}},
		{"the same provider with another model is a target", func(c *policy.Config) {
			withClusters(c)
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "oai", Upstream: "gpt-4o"}}
		}, nil},
		{"too many targets", func(c *policy.Config) {
			withClusters(c)
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "az", Upstream: "a"}, {Provider: "az", Upstream: "b"},
				{Provider: "az", Upstream: "c"}, {Provider: "az", Upstream: "d"}}
		}, []string{"models[0].fallback: lists 4 targets; at most 3 are allowed"}},
		{"openai to anthropic needs translation", func(c *policy.Config) {
			withClusters(c)
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "ant", Upstream: "claude-haiku-4-5"}}
		}, []string{`models[0].fallback[0].provider: provider "ant" (type anthropic) speaks another API than the chat_completions endpoint the model is served on: falling back to it needs each attempt translated, which Tollgate does not do yet`}},
		{"anthropic to openai needs translation", func(c *policy.Config) {
			withClusters(c)
			c.Models[2].Fallback = []policy.FallbackTarget{{Provider: "oai", Upstream: "gpt-4o"}}
		}, []string{`models[2].fallback[0].provider: provider "oai" (type openai) speaks another API than the messages endpoint the model is served on: falling back to it needs each attempt translated`}},
		{"fallback pricing is checked", func(c *policy.Config) {
			withClusters(c)
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "az", Upstream: "d", Pricing: &policy.PricingConfig{Input: "lots"}}}
		}, []string{"models[0].fallback[0].pricing.input: must be a decimal USD amount"}},
		{"a target without a price under USD limits", func(c *policy.Config) {
			withClusters(c)
			c.Teams[0].Limits.USDPerDay = "5"
			c.Models[0].Pricing = &policy.PricingConfig{Input: "1", Output: "1"}
			c.Models[0].Fallback = []policy.FallbackTarget{{Provider: "vllm", Upstream: "self-hosted"}}
		}, []string{`models[0].fallback[0].pricing: no catalog price for "self-hosted"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := policytest.BaseConfig()
			cfg.ApplyDefaults()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestCompileFallbackRefusedTranslation: the whole config is refused (Compile fails), not
// the target skipped silently.
func TestCompileFallbackRefusedTranslation(t *testing.T) {
	cfg := policytest.BaseConfig()
	withClusters(&cfg)
	cfg.Models[0].Fallback = []policy.FallbackTarget{{Provider: "ant", Upstream: "claude-haiku-4-5"}}
	_, err := policy.Compile(cfg, "", policytest.Resolver(), policytest.New(t).Now)
	require.ErrorContains(t, err, "needs each attempt translated")
}
