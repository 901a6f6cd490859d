package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/tollgate-ai/tollgate/cmd/tollgate/internal/envoycheck"
	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// sealedPrefix starts a sealed credential (ciphertext, safe in a config file).
const sealedPrefix = "sealed:"

// minPepperSymbols is the fewest distinct byte values a pepper may have; fewer means a
// typed or repeated string (aaaa..., 0000...), not random bytes.
const minPepperSymbols = 8

// configCheck collects findings about one Tollgate config.
type configCheck struct {
	dir  string
	raw  map[string]any
	list []envoycheck.Finding
	// reported holds the field paths already reported, so config validation does not
	// repeat them.
	reported map[string]bool
}

func (c *configCheck) add(sev envoycheck.Severity, id, path, problem, fix string) {
	c.list = append(c.list, envoycheck.Finding{Severity: sev, ID: id, File: "config", Path: path, Problem: problem, Fix: fix})
	c.reported[path] = true
}

// checkConfig checks the Tollgate config at path and fills opt with what the Envoy check
// needs from it. Only an unreadable file is an error; everything else is a finding.
func checkConfig(path string, opt *envoycheck.Options) ([]envoycheck.Finding, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	c := &configCheck{dir: filepath.Dir(abs), raw: map[string]any{}, reported: map[string]bool{}}
	if err := yaml.Unmarshal(raw, &c.raw); err != nil {
		c.add(envoycheck.High, "config-invalid", "", "the config is not valid YAML: "+err.Error(), "fix the syntax")
		return c.list, nil
	}
	var cfg policy.Config
	if err := decodeYAMLBytes(filepath.Base(abs), raw, &cfg); err != nil {
		c.add(envoycheck.High, "config-invalid", "", "tollgate serve refuses this config: "+oneLine(scrubValues(err.Error())),
			"fix the field named in the message")
		cfg = policy.Config{}
		if err := decodeLenient(raw, &cfg); err != nil {
			return c.list, nil
		}
	}
	c.loadKeyFiles(&cfg)
	c.checkSecrets()
	cfg.ApplyDefaults()
	c.checkPepper(cfg.Security.Pepper)
	c.checkSurfaces(cfg.Listen)
	c.checkValid(&cfg)

	opt.ExtProcAddr = cfg.Listen.ExtProc
	opt.ProviderRoutes = map[string][]string{}
	for _, p := range cfg.Providers {
		opt.ProviderRoutes[p.Route] = append(opt.ProviderRoutes[p.Route], p.Name)
	}
	opt.FallbackClusters, opt.FallbackPlans = fallbackUse(cfg)
	return c.list, nil
}

// quotedValue matches the values decoding errors quote ("parsing \"x\"", "value: 'x'"): a
// secret typed into the wrong field must not be echoed.
var quotedValue = regexp.MustCompile(`(parsing |value: )("[^"]*"|'[^']*')`)

// scrubValues removes quoted values from a decoding error, keeping field names.
func scrubValues(msg string) string {
	return quotedValue.ReplaceAllString(msg, "${1}(value not shown)")
}

// oneLine joins a multi-line error into one line.
func oneLine(msg string) string { return strings.Join(strings.Fields(msg), " ") }

// decodeLenient decodes the config ignoring unknown fields, so the other checks can still
// run on a config that serve would refuse.
func decodeLenient(raw []byte, out *policy.Config) error {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
		return err
	}
	return v.Unmarshal(out, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(), stringToTimeHook, mapstructure.StringToSliceHookFunc(","))))
}

// loadKeyFiles adds the keys of key_files to cfg. A missing key file (the local trial's
// .dev/keys.yaml before `tollgate dev init`) is noted, not failed.
func (c *configCheck) loadKeyFiles(cfg *policy.Config) {
	for i, kf := range cfg.KeyFiles {
		p := kf
		if !filepath.IsAbs(p) {
			p = filepath.Join(c.dir, p)
		}
		var extra struct {
			Keys []policy.KeyConfig `mapstructure:"keys"`
		}
		err := decodeYAML(p, &extra)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.add(envoycheck.Low, "not-checked", fmt.Sprintf("key_files[%d]", i),
				fmt.Sprintf("key file %s does not exist, so its keys were not checked", kf), "create it, or run the check where it exists")
		case err != nil:
			c.add(envoycheck.High, "config-invalid", fmt.Sprintf("key_files[%d]", i), err.Error(), "fix the key file")
		default:
			cfg.Keys = append(cfg.Keys, extra.Keys...)
		}
	}
}

// secretField is a config field that must hold a reference, never the secret itself.
type secretField struct {
	path   []string // map keys; "[]" iterates a list
	sealed bool     // a sealed value (ciphertext) is accepted
	none   bool     // "none" is accepted
}

var secretFields = []secretField{
	{path: []string{"security", "pepper"}},
	{path: []string{"security", "keks", "[]", "key"}},
	{path: []string{"providers", "[]", "credential"}, sealed: true, none: true},
	{path: []string{"providers", "[]", "credentials", "primary"}, sealed: true, none: true},
	{path: []string{"providers", "[]", "credentials", "next"}, sealed: true},
	{path: []string{"audit", "chain_key"}},
	{path: []string{"audit", "checkpoint_key"}},
	{path: []string{"audit", "content_hash_key"}},
	{path: []string{"audit", "webhook", "authorization"}},
	{path: []string{"budget", "redis", "password"}},
}

// checkSecrets reports plaintext secrets: a secret field that holds something other than a
// reference, and passwords inside URLs. The value is never shown.
func (c *configCheck) checkSecrets() {
	for _, sf := range secretFields {
		lookup(c.raw, sf.path, "", func(p string, v any) {
			s, ok := v.(string)
			if !ok || s == "" || (sf.none && s == "none") || (sf.sealed && strings.HasPrefix(s, sealedPrefix)) {
				return
			}
			if secrets.LooksLikeReference(s) {
				return // a mistyped reference is reported by validation, with its reason
			}
			c.add(envoycheck.High, "plaintext-secret", p,
				"holds a value that is not a secret reference: probably the secret itself (not shown)",
				"move the value to a file or environment variable and write file:PATH or env:NAME here"+sealHint(sf))
		})
	}
	urls := []secretField{{path: []string{"budget", "redis", "addrs", "[]"}}, {path: []string{"audit", "webhook", "url"}}}
	for _, sf := range urls {
		lookup(c.raw, sf.path, "", func(p string, v any) {
			s, _ := v.(string)
			if u, err := url.Parse(s); err == nil && u.User != nil {
				if _, set := u.User.Password(); set {
					c.add(envoycheck.High, "plaintext-secret", p, "the URL carries a password (not shown)",
						"remove the password from the URL and use the field for it (budget.redis.password, audit.webhook.authorization) with a secret reference")
				}
			}
		})
	}
	lookup(c.raw, []string{"admin", "token_sha256"}, "", func(p string, v any) {
		if s, _ := v.(string); s != "" && !isHexDigest(s) {
			c.add(envoycheck.High, "plaintext-secret", p,
				"is not a 64-character hex SHA-256: probably the admin token itself (not shown)",
				"put the output of `tollgate admin hash-token` here, never the token")
		}
	})
}

func sealHint(sf secretField) string {
	if sf.sealed {
		return ", or seal it (sealed:...)"
	}
	return ""
}

// lookup calls fn for each value at path in the raw YAML tree, with its field path.
func lookup(v any, path []string, at string, fn func(string, any)) {
	if len(path) == 0 {
		fn(at, v)
		return
	}
	if path[0] == "[]" {
		list, _ := v.([]any)
		for i, e := range list {
			lookup(e, path[1:], fmt.Sprintf("%s[%d]", at, i), fn)
		}
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	e, ok := m[path[0]]
	if !ok {
		return
	}
	next := path[0]
	if at != "" {
		next = at + "." + path[0]
	}
	lookup(e, path[1:], next, fn)
}

// isHexDigest reports whether s is 64 hex characters.
func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(s[i])) {
			return false
		}
	}
	return true
}

// checkPepper resolves the pepper reference when it can and reports a weak one. A pepper that
// cannot be read here (a file on another machine, an env var of the service) is noted as not
// checked. Neither the pepper nor any part of it is ever printed.
func (c *configCheck) checkPepper(ref string) {
	const path = "security.pepper"
	if c.reported[path] {
		return // plaintext: already reported
	}
	r, err := secrets.ParseRef(ref)
	if err != nil {
		return // validation reports it
	}
	v, err := secrets.Resolver{}.Resolve(r, c.dir)
	switch {
	case errors.Is(err, secrets.ErrEmpty):
		c.add(envoycheck.High, "weak-pepper", path, fmt.Sprintf("the pepper (%s) is empty", ref),
			"write at least 32 random bytes there, e.g. `openssl rand -hex 32`")
		return
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, secrets.ErrUnset), errors.Is(err, fs.ErrPermission):
		c.add(envoycheck.Low, "not-checked", path,
			fmt.Sprintf("the pepper could not be read here (%v), so its strength was not checked", err),
			"run the check where the pepper is readable (as the service's user, with its environment)")
		return
	case err != nil:
		c.add(envoycheck.High, "weak-pepper", path, fmt.Sprintf("the pepper cannot be used: %v", err),
			"point security.pepper at a file or variable holding at least 32 random bytes")
		return
	}
	b := v.Bytes()
	defer clear(b)
	if err := keys.CheckPepper(b); err != nil {
		c.add(envoycheck.High, "weak-pepper", path, fmt.Sprintf("the pepper is too short: %v", err),
			"replace it with at least 32 random bytes (`openssl rand -hex 32`); existing virtual keys must then be reissued")
		return
	}
	seen := map[byte]bool{}
	for _, x := range b {
		seen[x] = true
	}
	if len(seen) < minPepperSymbols {
		c.add(envoycheck.High, "weak-pepper", path,
			fmt.Sprintf("the pepper uses only %d distinct byte values: it is not random", len(seen)),
			"replace it with random bytes (`openssl rand -hex 32`); existing virtual keys must then be reissued")
	}
}

// checkSurfaces reports the ext_proc and admin listeners reachable from the network without
// authentication. The authentication settings (listen.extproc_tls, admin.token_sha256,
// admin.tls) are read from the raw YAML, so the check works with configs that have them.
func (c *configCheck) checkSurfaces(l policy.ListenConfig) {
	if !loopbackAddr(l.ExtProc) {
		tls := mapAt(c.raw, "listen", "extproc_tls")
		switch {
		case tls == nil:
			c.add(envoycheck.High, "extproc-exposed", "listen.extproc",
				fmt.Sprintf("ext_proc listens on %s, reachable from the network, without mutual TLS: whoever opens a stream with a valid virtual key receives the provider key", l.ExtProc),
				"listen on 127.0.0.1 or unix:/path next to Envoy, or configure listen.extproc_tls (cert_file, key_file, client_ca_file, allowed_sans)")
		case !completeMTLS(tls):
			c.add(envoycheck.High, "extproc-exposed", "listen.extproc_tls",
				"listen.extproc_tls does not require client certificates (client_ca_file and allowed_sans must both be set)",
				"set cert_file, key_file, client_ca_file and allowed_sans")
		}
	}
	if !loopbackAddr(l.Admin) {
		token, _ := mapAt(c.raw, "admin")["token_sha256"].(string)
		tls := mapAt(c.raw, "admin", "tls")
		switch {
		case token == "" && !completeMTLS(tls):
			c.add(envoycheck.High, "admin-exposed", "listen.admin",
				fmt.Sprintf("the admin listener (%s) is reachable from the network without authentication: /metrics and /usage are open", l.Admin),
				"bind it to 127.0.0.1, or set admin.token_sha256 (`tollgate admin hash-token`) or admin.tls with client_ca_file and allowed_sans")
		case tls == nil:
			c.add(envoycheck.Medium, "admin-exposed", "listen.admin",
				"the admin token crosses the network in plaintext (no admin.tls)",
				"serve admin over TLS (admin.tls cert_file, key_file) or bind it to loopback")
		}
	}
}

// loopbackAddr reports whether a listen address (host:port or unix:/path) cannot be reached
// from another host.
func loopbackAddr(addr string) bool {
	if strings.HasPrefix(addr, "unix:") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true // not an address at all: validation reports it
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mapAt returns the mapping at keys in the raw tree, or nil.
func mapAt(v any, keys ...string) map[string]any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	m, _ := v.(map[string]any)
	return m
}

// completeMTLS reports whether a TLS listener section requires allow-listed client
// certificates.
func completeMTLS(tls map[string]any) bool {
	ca, _ := tls["client_ca_file"].(string)
	sans, _ := tls["allowed_sans"].([]any)
	cert, _ := tls["cert_file"].(string)
	key, _ := tls["key_file"].(string)
	return ca != "" && len(sans) > 0 && cert != "" && key != ""
}

// checkValid reports what tollgate serve's validation refuses, except problems already
// reported by a more specific finding.
func (c *configCheck) checkValid(cfg *policy.Config) {
	err := cfg.Validate()
	if err == nil {
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		path, _, _ := strings.Cut(line, ": ")
		if c.reported[path] || line == "" {
			continue
		}
		c.list = append(c.list, envoycheck.Finding{Severity: envoycheck.High, ID: "config-invalid", File: "config",
			Path: path, Problem: "tollgate serve refuses this config: " + line, Fix: "fix the field named in the message"})
	}
}

// fallbackUse returns, for the models with fallback targets, the clusters their plans name
// (with the providers that name them) and their plan lengths.
func fallbackUse(cfg policy.Config) (map[string][]string, []int) {
	cluster := map[string]string{}
	for _, p := range cfg.Providers {
		cluster[p.Name] = p.Cluster
	}
	clusters := map[string][]string{}
	var plans []int
	for _, m := range cfg.Models {
		if len(m.Fallback) == 0 {
			continue
		}
		if n := len(m.Fallback) + 1; !slices.Contains(plans, n) {
			plans = append(plans, n)
		}
		for _, prov := range append([]string{m.Provider}, fallbackProviders(m)...) {
			if cl := cluster[prov]; cl != "" && !slices.Contains(clusters[cl], prov) {
				clusters[cl] = append(clusters[cl], prov)
			}
		}
	}
	slices.Sort(plans)
	return clusters, plans
}

func fallbackProviders(m policy.ModelConfig) []string {
	out := make([]string, 0, len(m.Fallback))
	for _, t := range m.Fallback {
		out = append(out, t.Provider)
	}
	return out
}
