package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

// Fallback across providers (envoy/fallback-design.md). For a model with fallback targets the
// downstream decision (Route) does not pick a provider: it writes a Plan, routes to the
// fallback-N route and sets no credential. Envoy then makes the attempts, each to the cluster
// of its target; Tollgate's upstream filter on that cluster opens one stream per attempt, and
// Snapshot.NewAttempt checks it against the plan and sets that target's credential, path and
// model. All attempts of a request share one request header map in Envoy, so every attempt
// removes every credential header before setting its own, and the downstream decision sets
// none (it would ride along to every attempt).

// Plan is the ordered targets of one request with fallback, as the downstream decision wrote
// it for the upstream filter (dynamic metadata tollgate.plan). It names clusters, providers
// and models, never a credential. MAC binds it to the request and to this deployment's pepper,
// so a stream that did not come from an admitted request cannot ask for a provider key.
type Plan struct {
	// Model is the public model name the request was admitted for.
	Model string
	// Endpoint is the client's endpoint (llm endpoint name, e.g. chat_completions).
	Endpoint string
	// Path is the client's request path, with the query the endpoint allows.
	Path string
	// AnthropicVersion is the client's anthropic-version header, "" when it sent none: attempt
	// 2 sees attempt 1's headers, not the client's.
	AnthropicVersion string
	// Expires is when attempts stop being accepted, in Unix seconds.
	Expires int64
	// Targets are tried in order: attempt n goes to Targets[n-1].
	Targets []PlanTarget
	// MAC is the hex HMAC-SHA256 of everything above and the request id.
	MAC string
}

// PlanTarget is one target of a Plan.
type PlanTarget struct {
	Cluster  string // the Envoy cluster of its attempt
	Provider string // the provider's configured name
	Model    string // the upstream model name
}

// planTTL bounds how long after the decision an attempt is accepted: the first attempt may
// hang until the route's idle timeout (600 s) before its reset starts the next.
const planTTL = 30 * time.Minute

// compileFallback builds the fallback targets of the model mc compiled into m. Validate has
// checked every reference.
func (s *Snapshot) compileFallback(mc ModelConfig, m *model, catalog map[string]budget.Price) []*model {
	if len(mc.Fallback) == 0 {
		return nil
	}
	ignore := func(string, string, ...any) {}
	out := make([]*model, 0, len(mc.Fallback))
	for _, ft := range mc.Fallback {
		up := upstreamOr(ft.Upstream, mc.Name)
		t := &model{public: m.public, upstream: up, provider: s.providers[ft.Provider], created: m.created, maxOut: m.maxOut, maxIn: m.maxIn}
		t.price, _ = budget.Lookup(catalog, up)
		if ft.Pricing != nil {
			t.price = ft.Pricing.compile("", ignore)
		}
		out = append(out, t)
	}
	return out
}

// derivePlanKey derives the plan MAC key from the pepper (and clears the copy it is given).
func derivePlanKey(pepper []byte) []byte {
	if len(pepper) == 0 {
		return nil
	}
	h := hmac.New(sha256.New, pepper)
	h.Write([]byte("tollgate fallback plan key v1"))
	clear(pepper)
	return h.Sum(nil)
}

// available returns the first of the model's targets whose provider is available, and, for a
// model with fallback targets, every available target in order. An optional provider without
// its credential is left out; a plan of one target is routed as a model without fallback.
func (m *model) available() (*model, []*model) {
	if len(m.fallback) == 0 {
		if m.provider.available {
			return m, nil
		}
		return nil, nil
	}
	var out []*model
	for _, t := range append([]*model{m}, m.fallback...) {
		if t.provider.available {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out[0], out
}

// planForward turns f, decided for targets[0], into the decision for a plan of targets: the
// fallback-N route, no credential (each attempt sets its own), every credential and
// provider-controlled header removed, every client header that any target must not receive
// removed, and one reservation for the dearest target (f's input tokens, priced at each target);
// outPerChoice is the output tokens reserved per choice.
func (s *Snapshot) planForward(a *Admission, f *Forward, targets []*model, choices int64, outPerChoice int64) (*Forward, *Reply) {
	anthVer := ""
	if a.anthropicVer {
		anthVer = a.get("anthropic-version")
		if !validName(anthVer) {
			return nil, a.deny(http.StatusBadRequest, ReasonInvalidRequest, "invalid anthropic-version header")
		}
	}
	for _, t := range targets {
		if n := t.provider.smuggledKey(a.names, a.get); n != "" {
			return nil, a.deny(http.StatusBadRequest, ReasonInvalidRequest,
				"a Tollgate API key may be sent only in the authorization, x-api-key or api-key header, not in "+n)
		}
	}
	plan := &Plan{Model: targets[0].public, Endpoint: a.Endpoint.String(), Path: a.path, AnthropicVersion: anthVer,
		Expires: a.at.Add(planTTL).Unix()}
	for i, t := range targets {
		plan.Targets = append(plan.Targets, PlanTarget{Cluster: t.provider.cluster, Provider: t.provider.name, Model: t.upstream})
		if i == 0 {
			continue
		}
		// One reservation, at the dearest target's price: whichever target serves, its
		// charge fits what was reserved.
		if e := estimate(f.Estimate.InputTokens, satMul(outPerChoice, choices), t.price); e.CostMicros > f.Estimate.CostMicros {
			f.Estimate, f.price = e, t.price
		}
	}
	plan.MAC = s.planMAC(plan, a.RequestID)
	f.Plan, f.targets, f.Route = plan, targets, FallbackRoute(len(targets))
	f.SetHeaders = append(f.SetHeaders,
		Header{Key: RoutingHeader, Value: []byte(f.Route)},
		Header{Key: "accept-encoding", Value: []byte("identity")},
	)
	remove := slices.Clone(credentialHeaders[:])
	for _, n := range providerHeaders {
		if slices.Contains(a.names, n) {
			remove = append(remove, n)
		}
	}
	for _, t := range targets {
		for _, n := range t.provider.removals(a.names, f.SetHeaders) {
			if !slices.Contains(remove, n) {
				remove = append(remove, n)
			}
		}
	}
	f.RemoveHeaders = remove
	return f, nil
}

// providerHeaders are the request headers an attempt sets for its own target (besides the
// credential): the downstream decision of a plan removes a client's copies, and every attempt
// removes what an earlier attempt set.
var providerHeaders = []string{"anthropic-version", "openai-organization", "openai-project"}

// planMAC authenticates p for the request with the given x-request-id.
func (s *Snapshot) planMAC(p *Plan, requestID string) string {
	m := hmac.New(sha256.New, s.planKey)
	var n [4]byte
	w := func(v string) {
		binary.BigEndian.PutUint32(n[:], uint32(len(v)))
		m.Write(n[:])
		m.Write([]byte(v))
	}
	w("tollgate plan v1")
	w(requestID)
	w(p.Model)
	w(p.Endpoint)
	w(p.Path)
	w(p.AnthropicVersion)
	w(strconv.FormatInt(p.Expires, 10))
	w(strconv.Itoa(len(p.Targets)))
	for _, t := range p.Targets {
		w(t.Cluster)
		w(t.Provider)
		w(t.Model)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// endpointByName returns the endpoint called name.
func endpointByName(name string) (llm.Endpoint, bool) {
	for _, e := range llm.Endpoints() {
		if e.String() == name {
			return e, true
		}
	}
	return llm.EndpointUnknown, false
}
