package policy

import (
	"fmt"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

// FallbackTarget is one provider a model falls back to (models[].fallback): tried, in order,
// after the model's own provider when that answers 429 or 5xx, or its connection fails before
// any response. Envoy makes the attempts (envoy.yaml's fallback-N routes); Tollgate sets each
// attempt's credential, path and model, reserves the budget once for the dearest target and
// settles it to what the serving target used, priced for that target.
type FallbackTarget struct {
	// Provider names a configured provider with a cluster.
	Provider string `mapstructure:"provider"`
	// Upstream is the model name sent to that provider; default: the model's name.
	Upstream string `mapstructure:"upstream_model"`
	// Pricing prices this target's usage; default: the catalog price of Upstream.
	Pricing *PricingConfig `mapstructure:"pricing"`
}

// MaxPlanTargets bounds the targets of one model, its own provider included: envoy.yaml has
// one route per plan length (fallback-2 to fallback-4), whose retry count bounds the attempts.
const MaxPlanTargets = 4

// FallbackRoute is the routing-header value of the route for a plan of n targets.
func FallbackRoute(n int) string { return fmt.Sprintf("fallback-%d", n) }

// validateFallback checks providers[].cluster and models[].fallback: every target names a
// provider with a cluster (the model's own provider too), no target repeats, at most
// MaxPlanTargets in all, each target can serve every endpoint the model is served on, and
// each has a price when USD limits are configured.
func (c *Config) validateFallback(add addFunc) {
	byName := map[string]ProviderConfig{}
	for i, p := range c.Providers {
		if p.Cluster != "" && !validName(p.Cluster) {
			add(fmt.Sprintf("providers[%d].cluster", i), "must name an Envoy cluster ([A-Za-z0-9._-])")
		}
		if _, dup := byName[p.Name]; !dup {
			byName[p.Name] = p
		}
	}
	usd := c.anyUSDLimit()
	catalog := budget.DefaultCatalog()
	for i, m := range c.Models {
		if len(m.Fallback) == 0 {
			continue
		}
		path := fmt.Sprintf("models[%d]", i)
		if n := len(m.Fallback) + 1; n > MaxPlanTargets {
			add(path+".fallback", "lists %d targets; at most %d are allowed with the model's own provider (envoy.yaml routes plans of 2 to %d targets)",
				len(m.Fallback), MaxPlanTargets-1, MaxPlanTargets)
		}
		primary, ok := byName[m.Provider]
		if !ok {
			continue // validateModels reported it
		}
		if primary.Cluster == "" {
			add(path+".provider", "provider %q has no cluster: a model with fallback targets needs providers[].cluster on every provider it names", m.Provider)
		}
		seen := map[[2]string]string{{m.Provider, upstreamOr(m.Upstream, m.Name)}: path}
		for j, ft := range m.Fallback {
			fp := fmt.Sprintf("%s.fallback[%d]", path, j)
			p, ok := byName[ft.Provider]
			if !ok {
				add(fp+".provider", "unknown provider %q", ft.Provider)
				continue
			}
			if p.Cluster == "" {
				add(fp+".provider", "provider %q has no cluster: a fallback target needs providers[].cluster", ft.Provider)
			}
			up := upstreamOr(ft.Upstream, m.Name)
			if len(up) > 256 {
				add(fp+".upstream_model", "must be at most 256 characters")
			}
			if prev, dup := seen[[2]string{ft.Provider, up}]; dup {
				add(fp, "provider %q with upstream model %q is already a target of %s", ft.Provider, up, prev)
			}
			seen[[2]string{ft.Provider, up}] = fp
			if why := targetServes(primary.Type, p.Type); why != "" {
				add(fp+".provider", "provider %q (type %s) %s", ft.Provider, p.Type, why)
			}
			if ft.Pricing != nil {
				ft.Pricing.compile(fp+".pricing", add)
			} else if _, ok := budget.Lookup(catalog, up); !ok && usd {
				add(fp+".pricing", "no catalog price for %q: set pricing (USD per million tokens) since USD limits are configured", up)
			}
		}
	}
}

// targetServes reports why a provider of type target cannot stand in for one of type
// primary, "" when it can: it must serve every endpoint primary serves, each in the client's
// own dialect. A target of another dialect needs the request and the response translated per
// attempt (the seam is Attempt's translator); until Tollgate translates, it is refused.
func targetServes(primary, target string) string {
	for _, e := range llm.Endpoints() {
		sp := e.Spec()
		if sp.Local || !e.Serves(primary) || e.Serves(target) {
			continue
		}
		if translatable(e, target) {
			continue
		}
		if typeDialect(target) != sp.Dialect {
			return fmt.Sprintf("speaks another API than the %s endpoint the model is served on: "+
				"falling back to it needs each attempt translated, which Tollgate does not do yet", sp.Name)
		}
		return fmt.Sprintf("does not serve the %s endpoint the model is served on", sp.Name)
	}
	return ""
}

// translatable reports whether requests to e can be translated for a provider of type typ
// (and its responses back). No translator is wired yet: policy/translate (issue 13, item 1)
// plugs in here and in Attempt.
func translatable(llm.Endpoint, string) bool { return false }

// typeDialect is the wire format a provider type speaks.
func typeDialect(typ string) llm.Dialect {
	if typ == ProviderAnthropic {
		return llm.Anthropic
	}
	return llm.OpenAI
}

// upstreamOr returns up, or name when up is empty.
func upstreamOr(up, name string) string {
	if up == "" {
		return name
	}
	return up
}

// anyUSDLimit reports whether any team or key has a USD limit (then every model needs a price).
func (c *Config) anyUSDLimit() bool {
	ignore := func(string, string, ...any) {}
	for _, t := range c.Teams {
		if hasUSD(t.Limits.compile("", ignore)) {
			return true
		}
	}
	for _, k := range c.Keys {
		if hasUSD(k.Limits.compile("", ignore)) {
			return true
		}
	}
	return false
}
