package policy

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// addFunc records one problem at a field path; Validate's steps report through it.
type addFunc = func(path, format string, a ...any)

// Validate reports every problem in the config, each naming its field path. It checks
// syntax and references only; Compile resolves secrets.
//
// The steps run in a fixed order, which is the order of the joined error's lines; later
// steps check references against the names earlier ones collected (KEK ids, providers,
// public model names, teams).
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
	}

	c.validateSurfaces(add)
	c.validatePepper(add)
	c.validateRequestLimits(add)
	c.validateLog(add)
	c.validateReload(add)
	keks := c.validateKEKs(add)
	providers := c.validateProviders(keks, add)
	public := c.validateModels(providers, add)
	c.validateFallback(add)
	teams := c.validateTeams(public, add)
	c.validateBudget(add)
	c.validateGuardrails(add)
	c.Audit.validate(add)
	c.validateKeys(teams, public, add)
	return errors.Join(errs...)
}

// validatePepper checks that security.pepper is a secret reference.
func (c *Config) validatePepper(add addFunc) {
	if _, err := secrets.ParseRef(c.Security.Pepper); err != nil {
		add("security.pepper", "%v", err)
	}
}

// validateRequestLimits checks limits.max_request_bytes.
func (c *Config) validateRequestLimits(add addFunc) {
	if c.Limits.MaxRequestBytes < 1 || c.Limits.MaxRequestBytes > MaxRequestBytesCeiling {
		add("limits.max_request_bytes", "must be between 1 and %d", MaxRequestBytesCeiling)
	}
}

// validateLog checks log.level and log.format.
func (c *Config) validateLog(add addFunc) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be one of debug, info, warn, error")
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		add("log.format", "must be json or console")
	}
}

// validateReload checks reload_interval.
func (c *Config) validateReload(add addFunc) {
	if c.Reload < 100*time.Millisecond {
		add("reload_interval", "must be at least 100ms")
	}
}

// validateProviders checks every provider against the KEK ids keks and returns the
// providers' types by name.
func (c *Config) validateProviders(keks map[string]bool, add addFunc) map[string]string {
	providers := map[string]string{}
	for i, p := range c.Providers {
		path := fmt.Sprintf("providers[%d]", i)
		if !validName(p.Name) {
			add(path+".name", "must be 1-64 characters of [A-Za-z0-9._-]")
		} else if _, dup := providers[p.Name]; dup {
			add(path+".name", "duplicate provider %q", p.Name)
		}
		providers[p.Name] = p.Type
		switch p.Type {
		case ProviderOpenAI, ProviderAnthropic, ProviderAzureOpenAI, ProviderOpenAICompatible:
		default:
			add(path+".type", "must be one of openai, anthropic, azure-openai, openai-compatible")
		}
		if !validName(p.Route) {
			add(path+".route", "must name an Envoy route target ([A-Za-z0-9._-])")
		}
		validateCredentials(path, p, keks, add)
		for j, h := range p.ForwardHeaders {
			if why := validateForwardHeader(h); why != "" {
				add(fmt.Sprintf("%s.forward_headers[%d]", path, j), "%s", why)
			}
		}
		validateBilling(path, p, add)
	}
	return providers
}

// validateBilling checks a provider's organization and project, which only OpenAI and
// OpenAI-compatible providers send.
func validateBilling(path string, p ProviderConfig, add addFunc) {
	for _, fv := range [...][2]string{{"organization", p.Organization}, {"project", p.Project}} {
		field, v := fv[0], fv[1]
		switch {
		case v == "":
		case p.Type != ProviderOpenAI && p.Type != ProviderOpenAICompatible:
			add(path+"."+field, "is only used by openai and openai-compatible providers")
		case !validName(v):
			add(path+"."+field, "must be 1-64 characters of [A-Za-z0-9._-]")
		}
	}
}

// validateModels checks every model against the providers and returns the public model
// names (names and aliases), each mapped to the path of the model that claims it.
func (c *Config) validateModels(providers map[string]string, add addFunc) map[string]string {
	public := map[string]string{}
	for i, m := range c.Models {
		path := fmt.Sprintf("models[%d]", i)
		if m.Name == "" || len(m.Name) > 256 {
			add(path+".name", "is required (at most 256 characters)")
		}
		if _, ok := providers[m.Provider]; !ok {
			add(path+".provider", "unknown provider %q", m.Provider)
		}
		for j, n := range append([]string{m.Name}, m.Aliases...) {
			if n == "" {
				continue
			}
			if prev, dup := public[n]; dup {
				field := path + ".name"
				if j > 0 {
					field = fmt.Sprintf("%s.aliases[%d]", path, j-1)
				}
				add(field, "model name %q is already used by %s", n, prev)
			}
			public[n] = path
		}
	}
	return public
}

// validateTeams checks every team's name, model allow-list (against the public model
// names) and request policy, and returns the set of team names. Limits and guardrails are
// checked by validateBudget and validateGuardrails.
func (c *Config) validateTeams(public map[string]string, add addFunc) map[string]bool {
	teams := map[string]bool{}
	for i, t := range c.Teams {
		path := fmt.Sprintf("teams[%d]", i)
		if !validName(t.Name) {
			add(path+".name", "must be 1-64 characters of [A-Za-z0-9._-]")
		} else if teams[t.Name] {
			add(path+".name", "duplicate team %q", t.Name)
		}
		teams[t.Name] = true
		checkModelRefs(add, path+".models", t.Models, public)
		t.RequestPolicy.validate(path+".request_policy", add)
	}
	return teams
}

// validateKeys checks every virtual key's id, team (against teams), hash, model allow-list
// (against the public model names) and request policy. Limits and guardrails are checked
// by validateBudget and validateGuardrails.
func (c *Config) validateKeys(teams map[string]bool, public map[string]string, add addFunc) {
	ids := map[string]bool{}
	for i, k := range c.Keys {
		path := fmt.Sprintf("keys[%d]", i)
		if !validKeyID(k.ID) {
			add(path+".id", "must be the 12-character public key id printed by `tollgate keys new`")
		} else if ids[k.ID] {
			add(path+".id", "duplicate key id %q", k.ID)
		}
		ids[k.ID] = true
		if !teams[k.Team] {
			add(path+".team", "unknown team %q", k.Team)
		}
		if _, err := keys.ParseDigest(k.Hash); err != nil {
			add(path+".hash", "must be the 64-character hex HMAC printed by `tollgate keys new`")
		}
		checkModelRefs(add, path+".models", k.Models, public)
		k.RequestPolicy.validate(path+".request_policy", add)
	}
}

// checkModelRefs reports each name that is not a public model name.
func checkModelRefs(add addFunc, path string, names []string, public map[string]string) {
	for j, n := range names {
		if _, ok := public[n]; !ok {
			add(fmt.Sprintf("%s[%d]", path, j), "unknown model %q", n)
		}
	}
}

// validateListenAddr checks a listener address: host:port, or unix:/path when allowUnix.
func validateListenAddr(addr string, allowUnix bool) error {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !allowUnix {
			return errors.New("must be host:port (unix sockets are not supported here)")
		}
		if path == "" {
			return errors.New("unix socket path is empty")
		}
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		if allowUnix {
			return errors.New("must be host:port or unix:/path")
		}
		return errors.New("must be host:port")
	}
	return nil
}

// validName reports whether s is 1-64 characters of [A-Za-z0-9._-].
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validKeyID reports whether s has the form of a public virtual key id.
func validKeyID(s string) bool {
	return len(s) == keys.IDLen && validName(s) && !strings.ContainsAny(s, "._-")
}
