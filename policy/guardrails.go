package policy

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tollgate-ai/tollgate/policy/guard"
)

// GuardrailsConfig holds the guardrail profiles. A key uses its own profile, else its
// team's, else the default; "none" selects no profile.
type GuardrailsConfig struct {
	Profiles []guard.ProfileConfig `mapstructure:"profiles"`
	Default  string                `mapstructure:"default_profile"`
}

// NoProfile explicitly selects no guardrails for a key or team.
const NoProfile = "none"

func (c *Config) validateGuardrails(add func(string, string, ...any)) {
	names := map[string]bool{NoProfile: true, "": true}
	for _, p := range c.Guardrails.Profiles {
		names[p.Name] = true
	}
	if _, err := guard.Compile(c.Guardrails.Profiles...); err != nil {
		// guard reports every problem with a path relative to the list.
		for _, e := range unjoin(err) {
			add("guardrails", "%v", e)
		}
	}
	if !names[c.Guardrails.Default] {
		add("guardrails.default_profile", "unknown profile %q", c.Guardrails.Default)
	}
	for i, t := range c.Teams {
		if !names[t.Guardrails] {
			add(fmt.Sprintf("teams[%d].guardrails", i), "unknown profile %q", t.Guardrails)
		}
	}
	for i, k := range c.Keys {
		if !names[k.Guardrails] {
			add(fmt.Sprintf("keys[%d].guardrails", i), "unknown profile %q", k.Guardrails)
		}
	}
}

// unjoin flattens errors.Join trees so each problem is reported on its own line.
func unjoin(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		out = append(out, e)
	}
	walk(err)
	return out
}

// guardPolicy is the compiled guardrails section.
type guardPolicy struct {
	engine  *guard.Engine
	byKey   map[string]string
	byTeam  map[string]string
	fallbck string
}

func compileGuardrails(cfg Config) (*guardPolicy, error) {
	e, err := guard.Compile(cfg.Guardrails.Profiles...)
	if err != nil {
		return nil, fmt.Errorf("guardrails: %w", err)
	}
	gp := &guardPolicy{engine: e, byKey: map[string]string{}, byTeam: map[string]string{}, fallbck: cfg.Guardrails.Default}
	for _, t := range cfg.Teams {
		if t.Guardrails != "" {
			gp.byTeam[t.Name] = t.Guardrails
		}
	}
	for _, k := range cfg.Keys {
		if k.Guardrails != "" {
			gp.byKey[k.ID] = k.Guardrails
		}
	}
	return gp, nil
}

// profileFor returns the profile a key uses, "" for none.
func (g *guardPolicy) profileFor(keyID, team string) string {
	p, ok := g.byKey[keyID]
	if !ok {
		if p, ok = g.byTeam[team]; !ok {
			p = g.fallbck
		}
	}
	if p == NoProfile {
		return ""
	}
	return p
}

// Guard is what the request scan decided, for the response scan and the audit event.
type Guard struct {
	// Profile is the profile in force ("" when none).
	Profile string
	// Decision is allow, block or redact; DryRun reports a profile that only reports.
	Decision string
	DryRun   bool
	// Findings aggregate matches per rule: ids, actions, counts. Never text.
	Findings []guard.Finding
}

// scanRequest applies the key's guardrail profile to the body. It returns the body to
// forward (redacted or not) or a 403 naming the blocking rule.
// logprobs names the request field asking for log probabilities, "" when none does.
func (s *Snapshot) scanRequest(a *Admission, body []byte, logprobs string) ([]byte, *Guard, *Reply) {
	if guard.ContainsVirtualKey(body) { // whatever the profile: a Tollgate key never reaches a provider
		return nil, nil, a.deny(http.StatusBadRequest, ReasonVirtualKeyInBody,
			"the request body contains a Tollgate API key; send it only in the authorization, x-api-key or api-key header")
	}
	profile := s.guard.profileFor(a.Key.ID, a.Key.Team)
	if profile == "" {
		return body, nil, nil
	}
	res, err := s.guard.engine.ScanRequest(profile, a.Endpoint, body)
	if errors.Is(err, guard.ErrDuplicateKey) {
		return nil, nil, a.deny(http.StatusBadRequest, ReasonInvalidRequest, "request body has duplicate keys")
	}
	if errors.Is(err, guard.ErrUnknownShape) {
		// The error names a schema path and a JSON kind, never body content.
		return nil, nil, a.deny(http.StatusBadRequest, ReasonInvalidRequest, "request body has a shape the API does not define ("+err.Error()+")")
	}
	if err != nil {
		// Fail closed: a body the guardrails cannot read is not forwarded.
		return nil, nil, a.deny(http.StatusBadRequest, ReasonGuardrailUnreadable, "request body could not be checked by the guardrails")
	}
	g := &Guard{Profile: profile, Decision: res.Decision.String(), DryRun: res.DryRun, Findings: res.Totals()}
	if logprobs != "" && !res.DryRun {
		// Log probabilities repeat the completion token by token outside the content the
		// response guardrails rewrite: they would leak what redaction removes. Responses asks
		// for them through include (message.output_text.logprobs) and top_logprobs.
		return nil, g, a.denyParam(http.StatusBadRequest, ReasonInvalidRequest, "logprobs are not available for API keys with response guardrails", logprobs)
	}
	switch res.Decision {
	case guard.DecisionBlock:
		rep := a.deny(http.StatusForbidden, ReasonGuardrailBlocked, "request blocked by guardrail rule "+res.BlockedBy)
		rep.Guard = g
		return nil, g, rep
	case guard.DecisionRedact:
		return res.NewBody, g, nil
	}
	return body, g, nil
}

// ScanResponse applies the request's profile to a complete, non-streamed JSON response. It
// returns the body to release (nil: unchanged) and the findings. A response cannot be
// refused once its headers went out, so a block rule redacts.
func (s *Snapshot) ScanResponse(f *Forward, body []byte) ([]byte, []guard.Finding, error) {
	if f.Guard == nil || f.Guard.Profile == "" {
		return nil, nil, nil
	}
	res, err := s.guard.engine.ScanResponseJSON(f.Guard.Profile, f.Endpoint, body)
	if err != nil {
		return nil, nil, err
	}
	// NewBody is set when something was rewritten: redacted text, or log probabilities removed
	// from an otherwise clean response.
	return res.NewBody, res.Totals(), nil
}

// GuardFailure is the refusal when a response cannot be guarded.
func (s *Snapshot) GuardFailure(a *Admission) *Reply {
	return a.deny(http.StatusBadGateway, ReasonGuardrailUnreadable, "the response could not be checked by the guardrails")
}

// StreamGuard returns a redactor for a streamed response, nil when no profile applies.
func (s *Snapshot) StreamGuard(f *Forward) (*guard.SSERedactor, error) {
	if f.Guard == nil || f.Guard.Profile == "" {
		return nil, nil
	}
	return s.guard.engine.NewSSERedactor(f.Guard.Profile, f.Endpoint)
}
