package policy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// Snapshot is a compiled, immutable config: every lookup a request needs is a map access.
// A new Snapshot is built on each reload and swapped in atomically, so a stream that loaded
// one keeps deciding with it.
type Snapshot struct {
	keys      *keys.Store
	teams     map[string]*team
	models    map[string]*model // public names and aliases
	providers map[string]*provider
	ordered   []*model // canonical models, config order (for /v1/models)
	maxBody   int
	budget    *budgetPolicy
	guard     *guardPolicy
	// keyPolicy and teamPolicy hold request policies; nil entries mean none.
	keyPolicy  map[string]*requestPolicy
	teamPolicy map[string]*requestPolicy
	// Loaded is when the snapshot was compiled.
	Loaded time.Time
	// Warnings lists non-fatal problems found while compiling (for example an optional
	// provider without its credential). They never contain secret values.
	Warnings []string
	// planKey authenticates fallback plans (see Plan): derived from the pepper, so every
	// replica sharing the pepper accepts the plans the others make.
	planKey []byte
}

type team struct {
	name     string
	models   map[string]bool // canonical names; nil = any
	disabled bool
}

type model struct {
	public   string
	upstream string
	provider *provider
	created  int64
	price    budget.Price
	maxOut   int64 // output tokens reserved when the request sets no cap
	maxIn    int64 // input reserved for a request with stored input (max_input_tokens); 0: refused under a budget
	// fallback are the targets tried after this one (models[].fallback), in order; each is a
	// model of the same public name with its own provider, upstream name and price.
	fallback []*model
}

// provider holds the decrypted credential in memory only (see credential). It has no String
// method on purpose, and nothing formats it.
type provider struct {
	name       string
	typ        string
	route      string
	cluster    string      // the Envoy cluster of its fallback attempts ("" when none)
	authHeader string      // lower-case header name the provider reads its key from
	cred       *credential // nil: no credential (credential: none)
	available  bool
	apiVersion string
	anthVer    string
	forward    map[string]bool // client headers that may reach the provider
	fixed      []Header        // headers the config sets (openai-organization, openai-project)
}

// Resolver resolves secret references; secrets.Resolver satisfies it.
type Resolver interface {
	Resolve(r secrets.Ref, baseDir string) (secrets.Value, error)
}

// Compile validates cfg, resolves its secret references against baseDir (the directory of
// the config file) and builds a Snapshot. Keys may come from cfg.Keys and from extra key
// files already merged into cfg.Keys by the caller.
func Compile(cfg Config, baseDir string, res Resolver, now time.Time, opts ...CompileOption) (*Snapshot, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var co compileOptions
	for _, o := range opts {
		o(&co)
	}
	s := &Snapshot{
		teams:     map[string]*team{},
		models:    map[string]*model{},
		providers: map[string]*provider{},
		maxBody:   cfg.Limits.MaxRequestBytes,
		Loaded:    now,
	}

	var errs []error
	pepperRef, _ := secrets.ParseRef(cfg.Security.Pepper)
	pepper, err := res.Resolve(pepperRef, baseDir)
	if err != nil {
		errs = append(errs, fmt.Errorf("security.pepper: %w", err))
	}

	// The KEKs live only while the sealed credentials are opened.
	ring, err := LoadKeyring(cfg.Security.KEKs, baseDir, res)
	if err != nil {
		errs = append(errs, err)
	}
	defer ring.Wipe()
	for i, pc := range cfg.Providers {
		p := &provider{name: pc.Name, typ: pc.Type, route: pc.Route, cluster: pc.Cluster, apiVersion: pc.APIVersion, anthVer: pc.AnthropicVersion, available: true,
			forward: forwardable(pc.Type, pc.ForwardHeaders)}
		if pc.Organization != "" {
			p.fixed = append(p.fixed, Header{Key: "openai-organization", Value: []byte(pc.Organization)})
		}
		if pc.Project != "" {
			p.fixed = append(p.fixed, Header{Key: "openai-project", Value: []byte(pc.Project)})
		}
		var warns []string
		var cerrs []error
		p.authHeader, p.cred, p.available, warns, cerrs = compileCredential(i, pc, baseDir, res, ring)
		s.Warnings = append(s.Warnings, warns...)
		errs = append(errs, cerrs...)
		s.providers[p.name] = p
	}

	catalog := budget.DefaultCatalog()
	ignore := func(string, string, ...any) {} // Validate already reported every problem
	for _, mc := range cfg.Models {
		up := mc.Upstream
		if up == "" {
			up = mc.Name
		}
		m := &model{public: mc.Name, upstream: up, provider: s.providers[mc.Provider], created: now.Unix(),
			maxOut: mc.MaxOutputTokens, maxIn: mc.MaxInputTokens}
		m.price, _ = budget.Lookup(catalog, up)
		if mc.Pricing != nil {
			m.price = mc.Pricing.compile("", ignore)
		}
		if m.maxOut == 0 {
			m.maxOut = cfg.Budget.DefaultMaxOutputTokens
		}
		s.ordered = append(s.ordered, m)
		s.models[mc.Name] = m
		for _, a := range mc.Aliases {
			s.models[a] = m
		}
		m.fallback = s.compileFallback(mc, m, catalog)
	}
	s.planKey = derivePlanKey(pepper.Bytes())

	s.keyPolicy, s.teamPolicy = map[string]*requestPolicy{}, map[string]*requestPolicy{}
	for _, tc := range cfg.Teams {
		s.teams[tc.Name] = &team{name: tc.Name, models: s.canonicalSet(tc.Models), disabled: tc.Disabled}
		if rp := tc.RequestPolicy.compile(); rp != nil {
			s.teamPolicy[tc.Name] = rp
		}
	}
	for _, kc := range cfg.Keys {
		if rp := kc.RequestPolicy.compile(); rp != nil {
			s.keyPolicy[kc.ID] = rp
		}
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	recs := make([]keys.Record, 0, len(cfg.Keys))
	for _, kc := range cfg.Keys {
		d, _ := keys.ParseDigest(kc.Hash)
		models := make([]string, 0, len(kc.Models))
		for n := range s.canonicalSet(kc.Models) {
			models = append(models, n)
		}
		slices.Sort(models)
		recs = append(recs, keys.Record{
			ID: kc.ID, Name: kc.Name, Team: kc.Team, Models: models,
			Digest: d, Disabled: kc.Disabled, Expires: kc.Expires,
		})
	}
	store, err := keys.NewStore(pepper.Bytes(), recs)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	s.keys = store
	if s.budget, err = compileBudget(cfg, co, ignore); err != nil {
		return nil, err
	}
	if s.guard, err = compileGuardrails(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// compileBudget builds the limits tables; it needs a ledger only when some limit is set.
func compileBudget(cfg Config, co compileOptions, ignore func(string, string, ...any)) (*budgetPolicy, error) {
	loc, err := time.LoadLocation(cfg.Budget.Timezone)
	if err != nil {
		return nil, fmt.Errorf("budget.timezone: %w", err)
	}
	bp := &budgetPolicy{ledger: co.ledger, loc: loc, hold: cfg.Budget.Hold, inject: cfg.Budget.InjectMaxTokens == nil || *cfg.Budget.InjectMaxTokens,
		failOpen: map[budget.Kind]bool{}, keyLimits: map[string]budget.Limits{}, teamLimits: map[string]budget.Limits{},
		newID: co.newID, after: co.after}
	if bp.newID == nil {
		bp.newID = randomID
	}
	if bp.after == nil {
		bp.after = timeAfterFunc
	}
	for _, k := range cfg.Budget.FailOpen {
		if kind, ok := kindByName(k); ok {
			bp.failOpen[kind] = true
		}
	}
	for _, t := range cfg.Teams {
		if l := t.Limits.compile("", ignore); !isZero(l) {
			bp.teamLimits[t.Name], bp.anyLimits = l, true
		}
	}
	for _, k := range cfg.Keys {
		if l := k.Limits.compile("", ignore); !isZero(l) {
			bp.keyLimits[k.ID], bp.anyLimits = l, true
		}
	}
	if bp.anyLimits && bp.ledger == nil {
		return nil, errNoLedger
	}
	return bp, nil
}

// canonicalSet maps public names and aliases to canonical model names; nil for an empty list
// (meaning "no restriction").
func (s *Snapshot) canonicalSet(names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if m, ok := s.models[n]; ok {
			set[m.public] = true
		}
	}
	return set
}

// validHeaderValue refuses control characters (a stray newline in a mounted secret would
// otherwise make Envoy reject every request) and empty values.
func validHeaderValue(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// KeyCount is the number of configured virtual keys.
func (s *Snapshot) KeyCount() int { return s.keys.Len() }

// supports reports whether a provider type serves a client-facing endpoint (Spec.Providers).
func (p *provider) supports(e llm.Endpoint) bool { return e.Serves(p.typ) }
