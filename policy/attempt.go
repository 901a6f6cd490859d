package policy

import (
	"crypto/hmac"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// AttemptInput is what Envoy tells Tollgate's upstream filter about one attempt of a request
// with a fallback plan: the plan the downstream decision wrote, the attempt's number and the
// cluster Envoy chose for it.
type AttemptInput struct {
	// Plan is tollgate.plan as the upstream filter received it; nil when absent or malformed.
	Plan *Plan
	// N is the ext_proc attribute upstream.request_attempt_count: 1, 2, ...
	N int
	// Cluster is the ext_proc attribute xds.cluster_name: the attempt's cluster.
	Cluster string
	// RequestID is the attempt's x-request-id header (the request's, which the plan is bound to).
	RequestID string
}

// Attempt states, as the upstream filter reports them in tollgate.attempts: the attempt was
// sent (no answer yet; a reset leaves it here), its response headers arrived, its response
// ended, or Tollgate refused to send it.
const (
	AttemptSent     = "sent"
	AttemptAnswered = "answered"
	AttemptComplete = "complete"
	AttemptRefused  = "refused"
)

// AttemptReport is one attempt as its upstream filter reports it to the downstream exchange
// (dynamic metadata tollgate.attempts.<n>). Usage is the provider's own, read from this
// attempt's response before anything translated it. It never holds a credential or content.
type AttemptReport struct {
	N       int
	Cluster string
	State   string
	// Status is the attempt's response status, 0 before its headers.
	Status int
	// UsageSeen reports that the response carried usage; Ended that it reached its
	// provider-defined end (llm.UsageParser Ended).
	UsageSeen, Ended bool

	InputTokens, OutputTokens, CachedInputTokens, CacheWriteTokens int64
}

// HeaderChanges are the request header changes of one attempt.
type HeaderChanges struct {
	Set    []Header
	Remove []string
}

// attemptTranslator is the seam for cross-dialect targets (issue 13, item 1): it would turn
// the replayed body into the target's request (and path) and this attempt's response back
// into the client's dialect, chunk by chunk, while the provider's own usage is read before
// translation. Nil while client and target share a dialect, the only case Validate admits.
type attemptTranslator interface {
	Request(body []byte, upstreamModel string) (out []byte, path string, err error)
	Chunk(b []byte, endOfStream bool) ([]byte, error)
}

// Attempt is one attempt of a request with a fallback plan, on its own upstream ext_proc
// stream: it checks the attempt against the plan and the config, and rewrites the shared
// request for its target. It decides with the snapshot current when its stream opened; a
// plan that snapshot does not back (a reload removed the target) is refused. Used by one
// goroutine.
type Attempt struct {
	snap     *Snapshot
	n        int
	cluster  string
	target   *model
	endpoint llm.Endpoint
	dialect  llm.Dialect
	path     string
	anthVer  string
	bodyFrom string // the model the replayed body carries: the plan's first target's
	tr       attemptTranslator
	cred     *credential // keeps the credential's bytes alive while SetHeaders shares them

	phase  attemptPhase
	state  string
	status int
	usage  *llm.UsageParser
}

type attemptPhase int

const (
	attemptHeaders attemptPhase = iota
	attemptBody
	attemptSentPhase
	attemptResponse
	attemptDone
)

// NewAttempt checks one attempt against its plan: the plan is authentic (its MAC, made with
// this deployment's pepper for this request id) and unexpired; the attempt's number and
// cluster are the plan's target for that number; and this snapshot still has that target,
// with its credential. Any mismatch is refused with a 502 Reply (the attempt is not sent and
// not retried); the returned Attempt then only reports the refusal.
func (s *Snapshot) NewAttempt(now time.Time, in AttemptInput) (*Attempt, *Reply) {
	at := &Attempt{snap: s, n: in.N, cluster: in.Cluster, state: AttemptRefused, phase: attemptDone}
	p := in.Plan
	if p != nil {
		if e, ok := endpointByName(p.Endpoint); ok {
			at.endpoint, at.dialect = e, e.Dialect()
		}
	}
	refuse := func() (*Attempt, *Reply) {
		return at, denial(at.dialect, in.RequestID, http.StatusBadGateway, ReasonAttemptRefused,
			"the gateway refused to send this attempt: it is not part of the request's fallback plan")
	}
	switch {
	case p == nil || s.planKey == nil:
		return refuse()
	case !hmac.Equal([]byte(s.planMAC(p, in.RequestID)), []byte(p.MAC)):
		return refuse()
	case now.Unix() > p.Expires:
		return refuse()
	case at.endpoint == llm.EndpointUnknown || len(p.Targets) < 2 || len(p.Targets) > MaxPlanTargets:
		return refuse()
	case in.N < 1 || in.N > len(p.Targets) || p.Targets[in.N-1].Cluster != in.Cluster:
		return refuse()
	}
	if e, err := llm.Classify(http.MethodPost, p.Path); err != nil || e != at.endpoint || !e.QueryAllowed(p.Path) {
		return refuse()
	}
	t := s.planTarget(p, in.N)
	if t == nil || !t.provider.available || !(at.endpoint.Serves(t.provider.typ) || translatable(at.endpoint, t.provider.typ)) {
		return refuse()
	}
	at.target, at.path, at.anthVer, at.bodyFrom = t, p.Path, p.AnthropicVersion, p.Targets[0].Model
	at.state, at.phase = AttemptSent, attemptHeaders
	return at, nil
}

// planTarget returns this snapshot's target for attempt n of p: the model p names, with the
// provider, upstream model and cluster p names for n. Nil when the config has no such target.
func (s *Snapshot) planTarget(p *Plan, n int) *model {
	m := s.models[p.Model]
	if m == nil || m.public != p.Model {
		return nil
	}
	pt := p.Targets[n-1]
	for _, c := range append([]*model{m}, m.fallback...) {
		if c.provider.name == pt.Provider && c.upstream == pt.Model && c.provider.cluster == pt.Cluster {
			return c
		}
	}
	return nil
}

// Refused reports whether NewAttempt refused the attempt.
func (at *Attempt) Refused() bool { return at.target == nil }

// Provider is the attempt's provider name ("" when refused).
func (at *Attempt) Provider() string {
	if at.target == nil {
		return ""
	}
	return at.target.provider.name
}

// RequestHeaders decides the attempt's request headers. The header map is the one every
// attempt of the request shares: it may hold an earlier attempt's credential, path and
// dialect headers, so every credential and provider-controlled header is removed, then this
// target's are set.
func (at *Attempt) RequestHeaders(endOfStream bool) (*HeaderChanges, error) {
	if at.phase != attemptHeaders {
		return nil, protocolFault("attempt request headers in phase %d", at.phase)
	}
	if endOfStream {
		return nil, protocolFault("a fallback attempt without a request body")
	}
	p := at.target.provider
	hc := &HeaderChanges{}
	path := at.path
	if p.typ == ProviderAzureOpenAI {
		var err error
		if path, err = llm.AzurePath(at.endpoint, at.target.upstream, p.apiVersion); err != nil {
			return nil, protocolFault("no azure path for %s", at.endpoint)
		}
	}
	hc.Set = append(hc.Set, Header{Key: ":path", Value: []byte(path)})
	if p.cred != nil {
		hc.Set = append(hc.Set, Header{Key: p.authHeader, Value: p.cred.value})
		at.cred = p.cred
	}
	if p.typ == ProviderAnthropic {
		v := at.anthVer
		if v == "" {
			v = p.anthVer
		}
		hc.Set = append(hc.Set, Header{Key: "anthropic-version", Value: []byte(v)})
	}
	hc.Set = append(hc.Set, p.fixed...)
	for _, n := range append(credentialHeaders[:], providerHeaders...) {
		if !isSet(hc.Set, n) {
			hc.Remove = append(hc.Remove, n)
		}
	}
	at.phase = attemptBody
	return hc, nil
}

// RequestBody decides the attempt's body: the replayed body (as the downstream decision left
// it: redacted, capped, with the first target's model) gets this target's model and, when the
// request caps its output, the cap in the field this target reads. out is nil when the body
// goes unchanged; set always holds its content-length, since the shared header map may carry
// an earlier attempt's. A body that is not the one the plan was decided on is refused.
func (at *Attempt) RequestBody(body []byte, endOfStream bool) (out []byte, set []Header, rep *Reply, err error) {
	if at.phase != attemptBody {
		return nil, nil, nil, protocolFault("attempt request body in phase %d", at.phase)
	}
	if !endOfStream {
		return nil, nil, nil, protocolFault("attempt request body arrived in parts; the upstream filter must use BUFFERED mode")
	}
	refuse := func() ([]byte, []Header, *Reply, error) {
		at.state, at.phase = AttemptRefused, attemptDone
		return nil, nil, denial(at.dialect, "", http.StatusBadGateway, ReasonAttemptRefused,
			"the gateway refused to send this attempt: its body is not the one the request was admitted with"), nil
	}
	req, perr := llm.ParseRequest(body)
	if perr != nil || req.Model != at.bodyFrom {
		return refuse()
	}
	out = body
	if at.tr != nil {
		if out, _, err = at.tr.Request(body, at.target.upstream); err != nil {
			return refuse()
		}
	} else {
		var ed llm.Edits
		if ed.Reset(&req, body) != nil || !ed.SetModel(at.target.upstream) {
			return refuse()
		}
		if f := maxTokensField(at.endpoint, at.target.provider.typ); f != "" && req.MaxTokensField != "" && !ed.HasMaxTokens(f) {
			ed.SetMaxTokens(f, req.MaxTokens)
		}
		out = ed.Apply()
	}
	set = []Header{{Key: "content-length", Value: strconv.AppendInt(nil, int64(len(out)), 10)}}
	at.phase = attemptSentPhase
	if len(out) == len(body) && (len(out) == 0 || &out[0] == &body[0]) {
		return nil, set, nil, nil
	}
	return out, set, nil, nil
}

// ResponseHeaders records the attempt's response status. The provider's usage is read from
// its response (before any translation), for settlement.
func (at *Attempt) ResponseHeaders(status int, contentType string, endOfStream bool) error {
	if at.phase != attemptSentPhase {
		return protocolFault("attempt response headers in phase %d", at.phase)
	}
	at.status, at.state, at.phase = status, AttemptAnswered, attemptResponse
	at.usage = llm.NewUsageParser(at.endpoint, strings.HasPrefix(strings.ToLower(contentType), "text/event-stream"))
	if endOfStream {
		at.finish()
	}
	return nil
}

// ResponseChunk accounts one chunk of the attempt's response, O(len(chunk)). It never
// changes the chunk while client and target share a dialect.
func (at *Attempt) ResponseChunk(chunk []byte, endOfStream bool) error {
	if at.phase != attemptResponse {
		return protocolFault("attempt response body in phase %d", at.phase)
	}
	at.usage.Feed(chunk)
	if endOfStream {
		at.finish()
	}
	return nil
}

func (at *Attempt) finish() {
	at.usage.Finish()
	at.state, at.phase = AttemptComplete, attemptDone
}

// Report is the attempt's tollgate.attempts entry so far. A refusal is reported only for an
// attempt number a plan can have.
func (at *Attempt) Report() (AttemptReport, bool) {
	if at.n < 1 || at.n > MaxPlanTargets {
		return AttemptReport{}, false
	}
	r := AttemptReport{N: at.n, Cluster: at.cluster, State: at.state, Status: at.status}
	if at.usage != nil && at.state == AttemptComplete {
		u, seen := at.usage.Usage()
		r.UsageSeen, r.Ended = seen, at.usage.Ended()
		r.InputTokens, r.OutputTokens, r.CachedInputTokens, r.CacheWriteTokens = u.InputTokens, u.OutputTokens, u.CachedInputTokens, u.CacheWriteTokens
	}
	return r, true
}
