package policy

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/translate"
)

// RoutingHeader is the internal header Envoy routes on. Clients can never set it: Envoy
// strips it before ext_proc, tollgate overwrites it, and it is removed before the upstream.
const RoutingHeader = "x-tollgate-upstream"

// InternalHeaderPrefix marks headers that only tollgate may set.
const InternalHeaderPrefix = "x-tollgate-"

// credentialHeaders are the request headers a client may carry its virtual key in. All of
// them are removed before a request is forwarded.
var credentialHeaders = [...]string{"authorization", "x-api-key", "api-key"}

// RequestHeaders is the request line and headers as Envoy sent them. Names are lower case.
type RequestHeaders struct {
	Method string
	Path   string
	// Get returns the first value of a header, "" when absent.
	Get func(name string) string
	// Names lists the header names present (lower case), used to strip internal headers.
	Names []string
	// EndOfStream is true when the request has no body.
	EndOfStream bool
}

// Header is one header to set. Its Value may be a provider credential (the upstream
// authorization header), so a Header is never logged.
type Header struct {
	Key   string
	Value []byte
}

// Reply is a response tollgate sends itself instead of forwarding: a denial, or a local
// answer such as the model list.
type Reply struct {
	Status  int
	Reason  Reason
	Headers []Header
	Body    []byte
	// Limit names the limit that tripped, for a 429.
	Limit *TrippedLimit
	// Guard holds the guardrail findings of a blocked request.
	Guard *Guard
}

// TrippedLimit identifies a limit by scope ("key" or "team") and kind ("usd_per_day"...).
type TrippedLimit struct {
	Scope string
	Kind  string
}

// Admission is what the headers phase learned about an admitted request.
type Admission struct {
	Endpoint  llm.Endpoint
	Dialect   llm.Dialect
	Key       *keys.Record
	RequestID string

	names        []string            // the client's header names, as Envoy sent them
	get          func(string) string // their values
	anthropicVer bool
	path         string    // the request path as Envoy sent it (a fallback plan replays it)
	at           time.Time // when the headers were decided
}

// Forward is the decision to send a request upstream, with the header and body changes.
type Forward struct {
	Provider      string // the provider's configured name
	ProviderType  string // openai, anthropic, azure-openai or openai-compatible
	Route         string
	Model         string // as requested by the client
	UpstreamModel string
	Stream        bool
	SetHeaders    []Header
	RemoveHeaders []string
	// Body is the rewritten body, nil when the body is forwarded unchanged.
	Body []byte
	// Endpoint is the endpoint the client called, whose shapes the guardrails read in both
	// directions. Upstream is the one the provider receives, whose usage the response is
	// settled from: Endpoint itself, unless the request is translated (translate.Find), when
	// the provider speaks another API than the client.
	Endpoint, Upstream llm.Endpoint
	// Estimate is what the budget reserves for this request.
	Estimate Estimate
	// Guard is the request scan's outcome (nil when no profile applies); the response is
	// scanned with the same profile.
	Guard *Guard
	// DropUsageChunk is set when Tollgate added stream_options.include_usage to the request:
	// the final usage chunk is for settlement, and is removed from the client's stream
	// (llm.UsageChunkFilter), since the client did not ask for it.
	DropUsageChunk bool
	price          budget.Price
	// tr translates the response back to the client's shape (nil: not translated);
	// includeUsage is the client's stream_options.include_usage, which a translated stream
	// honours itself.
	tr           *translate.Translation
	includeUsage bool
	// cred keeps the credential whose bytes SetHeaders shares alive (not zeroed) for as long
	// as this decision is in use, even when its snapshot was swapped out by a reload.
	cred *credential
	// Plan is set for a model with fallback targets (see planForward): no credential is set,
	// and each attempt is decided by Snapshot.NewAttempt. Nil otherwise.
	Plan    *Plan
	targets []*model // the plan's targets, in order
}

// Admit decides on the request headers: a known endpoint, a valid virtual key, a JSON
// content type and a body within limits. It returns either an Admission or a Reply; a Reply
// with status 200 is a local answer (GET /v1/models).
func (s *Snapshot) Admit(now time.Time, h RequestHeaders) (*Admission, *Reply) {
	reqID := h.Get("x-request-id")
	ep, err := llm.Classify(h.Method, h.Path)
	if err != nil {
		d := llm.GuessDialect(h.Path, h.Get("anthropic-version") != "")
		if errors.Is(err, llm.ErrMethodNotAllowed) {
			return nil, denial(d, reqID, http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "method not allowed on this endpoint")
		}
		return nil, denial(d, reqID, http.StatusNotFound, ReasonUnknownEndpoint, "unknown endpoint: this gateway serves only the documented LLM API paths")
	}
	a := &Admission{Endpoint: ep, Dialect: ep.Dialect(), RequestID: reqID, anthropicVer: h.Get("anthropic-version") != ""}
	if ep.Spec().Local && a.anthropicVer {
		// A local answer (the model list) is served to both dialects on one path.
		a.Dialect = llm.Anthropic
	}

	tok, err := keys.ExtractToken(h.Get("authorization"), h.Get("x-api-key"), h.Get("api-key"))
	switch {
	case errors.Is(err, keys.ErrAmbiguousCredential):
		return nil, a.deny(http.StatusUnauthorized, ReasonAmbiguousCredential, "several different API keys were sent; send exactly one")
	case err != nil:
		return nil, a.deny(http.StatusUnauthorized, ReasonNoCredential, "missing API key: send it as Authorization: Bearer, x-api-key or api-key")
	}
	parsed, err := keys.Parse(tok)
	if err != nil {
		return nil, a.deny(http.StatusUnauthorized, ReasonInvalidKey, "invalid API key")
	}
	rec, err := s.keys.Verify(now, parsed)
	switch {
	case errors.Is(err, keys.ErrDisabled):
		return nil, a.deny(http.StatusUnauthorized, ReasonKeyDisabled, "API key is disabled")
	case errors.Is(err, keys.ErrExpired):
		return nil, a.deny(http.StatusUnauthorized, ReasonKeyExpired, "API key has expired")
	case err != nil:
		return nil, a.deny(http.StatusUnauthorized, ReasonInvalidKey, "invalid API key")
	}
	a.Key = rec
	if t := s.teams[rec.Team]; t == nil || t.disabled {
		return nil, a.deny(http.StatusForbidden, ReasonTeamDisabled, "the team of this API key is disabled")
	}

	if ep.Spec().Local {
		return nil, s.modelList(a)
	}
	if !ep.QueryAllowed(h.Path) {
		return nil, a.deny(http.StatusBadRequest, ReasonInvalidRequest, "query parameters are not supported on this endpoint")
	}
	if h.EndOfStream {
		return nil, a.deny(http.StatusBadRequest, ReasonMissingBody, "request body is required")
	}
	if ce := h.Get("content-encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		// A compressed body cannot be read by policy or guardrails, and forwarding it with its
		// label after a rewrite would corrupt it. Envoy's decompressor filter can inflate
		// request bodies before ext_proc if clients must compress.
		return nil, a.deny(http.StatusUnsupportedMediaType, ReasonUnsupportedMediaType,
			"compressed request bodies (content-encoding) are not supported; send plain JSON")
	}
	if !llm.IsJSONContentType(h.Get("content-type")) {
		return nil, a.deny(http.StatusUnsupportedMediaType, ReasonUnsupportedMediaType, "content-type must be application/json")
	}
	if cl := h.Get("content-length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return nil, a.deny(http.StatusBadRequest, ReasonInvalidRequest, "invalid content-length")
		}
		if n > int64(s.maxBody) {
			return nil, a.tooLarge(s.maxBody)
		}
	}
	a.names, a.get, a.path, a.at = h.Names, h.Get, h.Path, now
	return a, nil
}

// Route decides on the buffered request body: model lookup and allow-lists, then the
// provider, credential and body rewrite.
func (s *Snapshot) Route(a *Admission, body []byte) (*Forward, *Reply) {
	if len(body) == 0 {
		return nil, a.deny(http.StatusBadRequest, ReasonMissingBody, "request body is required")
	}
	if len(body) > s.maxBody {
		return nil, a.tooLarge(s.maxBody)
	}
	req, err := llm.ParseRequest(body)
	switch {
	case errors.Is(err, llm.ErrMissingModel):
		return nil, a.denyParam(http.StatusBadRequest, ReasonMissingModel, "you must provide a model parameter", "model")
	case errors.Is(err, llm.ErrDuplicateKey):
		return nil, a.deny(http.StatusBadRequest, ReasonInvalidRequest, "request body has duplicate keys")
	case errors.Is(err, llm.ErrInvalidField):
		return nil, a.deny(http.StatusBadRequest, ReasonInvalidRequest, "request body has a field of the wrong type (model must be a string, stream a boolean)")
	case errors.Is(err, llm.ErrTooDeep):
		return nil, a.deny(http.StatusBadRequest, ReasonInvalidJSON,
			"request body nests JSON objects and arrays more than "+strconv.Itoa(llm.MaxDepth)+" levels deep")
	case err != nil && looksCompressed(body):
		return nil, a.deny(http.StatusUnsupportedMediaType, ReasonUnsupportedMediaType,
			"request body appears to be compressed; send plain JSON (compressed request bodies are not supported)")
	case err != nil:
		return nil, a.deny(http.StatusBadRequest, ReasonInvalidJSON, "request body is not valid JSON (a JSON object is expected)")
	}
	m := s.models[req.Model]
	if m == nil {
		return nil, a.denyParam(http.StatusNotFound, ReasonUnknownModel, "the model does not exist or you do not have access to it", "model")
	}
	if !s.allowed(a.Key, m) {
		return nil, a.denyParam(http.StatusForbidden, ReasonModelNotAllowed, "this API key is not allowed to use the requested model", "model")
	}
	p := m.provider
	tr := translate.Find(a.Endpoint, p.typ)
	if !p.supports(a.Endpoint) && tr == nil {
		return nil, a.denyParam(http.StatusBadRequest, ReasonWrongAPI, "the requested model is not served on this endpoint", "model")
	}
	m, targets := m.available()
	if m == nil {
		return nil, a.deny(http.StatusServiceUnavailable, ReasonProviderUnavailable, "the provider for this model is not configured")
	}
	p = m.provider

	capOut, rep := s.checkShape(a, req, len(body))
	if rep != nil {
		return nil, rep
	}
	orig := body
	body, g, rep := s.scanRequest(a, body, req.LogprobsField)
	if rep != nil {
		return nil, rep
	}
	if len(body) != len(orig) || &body[0] != &orig[0] {
		if req, err = llm.ParseRequest(body); err != nil {
			return nil, a.deny(http.StatusInternalServerError, ReasonInternal, "internal error")
		}
	}
	up, includeUsage := a.Endpoint, false
	if tr != nil {
		// The guardrails scanned (and maybe redacted) the client's body; the provider gets its
		// translation, which the rewrite below, the reservation and the response read.
		t, err := tr.Request(body, translate.RequestOptions{MaxTokens: m.maxOut})
		if err != nil {
			return nil, a.untranslatable(err)
		}
		if req, err = llm.ParseRequest(t.Body); err != nil {
			return nil, a.deny(http.StatusInternalServerError, ReasonInternal, "internal error")
		}
		body, up, includeUsage = t.Body, tr.Upstream, t.IncludeUsage
	}
	f := &Forward{Provider: p.name, ProviderType: p.typ, Route: p.route, Model: req.Model, UpstreamModel: m.upstream, Stream: req.Stream,
		Endpoint: a.Endpoint, Upstream: up, price: m.price, Guard: g, DropUsageChunk: injectsUsage(up, p.typ, req),
		tr: tr, includeUsage: includeUsage}
	out, maxOut, rep := s.rewrite(a, up, p, m, req, body, capOut)
	if rep != nil {
		return nil, rep
	}
	if rep := s.checkHostedTool(a, req); rep != nil {
		return nil, rep
	}
	if rep := s.checkServiceTier(a, req); rep != nil {
		return nil, rep
	}
	minIn, rep := s.storedInputFloor(a, m, req)
	if rep != nil {
		return nil, rep
	}
	// Every choice (n, best_of) may produce maxOut tokens, and the provider bills them all.
	f.Estimate = estimate(inputBound(len(out)+toolAllowance(up, req), m.maxIn, minIn), satMul(maxOut, req.Choices), m.price)
	if len(out) != len(orig) || &out[0] != &orig[0] {
		f.Body = out
		f.SetHeaders = append(f.SetHeaders, Header{Key: "content-length", Value: strconv.AppendInt(nil, int64(len(out)), 10)})
	}
	if len(targets) > 1 {
		return s.planForward(a, f, targets, req.Choices, maxOut)
	}
	f.SetHeaders = append(f.SetHeaders,
		Header{Key: RoutingHeader, Value: []byte(p.route)},
		Header{Key: "accept-encoding", Value: []byte("identity")},
	)
	if p.cred != nil {
		f.SetHeaders = append(f.SetHeaders, Header{Key: p.authHeader, Value: p.cred.value})
		f.cred = p.cred
	}
	if p.typ == ProviderAnthropic && (!a.anthropicVer || tr != nil) {
		// A translation is written for the configured version, whatever a client sent.
		f.SetHeaders = append(f.SetHeaders, Header{Key: "anthropic-version", Value: []byte(p.anthVer)})
	}
	if tr != nil {
		// Envoy's mutation rules allow :path (not a routing header); the routes match on the
		// routing header, not the path.
		f.SetHeaders = append(f.SetHeaders, Header{Key: ":path", Value: []byte(up.Spec().Path)})
	}
	if p.typ == ProviderAzureOpenAI {
		path, err := llm.AzurePath(up, m.upstream, p.apiVersion)
		if err != nil {
			return nil, a.deny(http.StatusBadRequest, ReasonWrongAPI, "the requested model is not served on this endpoint")
		}
		f.SetHeaders = append(f.SetHeaders, Header{Key: ":path", Value: []byte(path)})
	}
	f.SetHeaders = append(f.SetHeaders, p.fixed...)
	if n := p.smuggledKey(a.names, a.get); n != "" {
		// A virtual key travels only in a credential header, which is removed; one in a header
		// the provider receives (user-agent, accept, a forward_headers entry) would reach it.
		return nil, a.deny(http.StatusBadRequest, ReasonInvalidRequest,
			"a Tollgate API key may be sent only in the authorization, x-api-key or api-key header, not in "+n)
	}
	// Remove every header that can carry the virtual key (except the one the provider's own
	// key is set in: a set overwrites it), client copies of internal headers, and every
	// client header not on the provider's allow-list.
	f.RemoveHeaders = p.removals(a.names, f.SetHeaders)
	return f, nil
}

// rewrite applies the body changes as one edit list on the body req was parsed from, so the
// body is not parsed again: the upstream model name, stream_options.include_usage on
// streamed OpenAI-style requests (so usage can be settled), the request policy's output cap
// (capOut, clamped or written in), and, when configured, the output cap that was reserved.
// ep is the endpoint the provider receives, whose fields are edited. It returns the body and
// the output tokens to reserve per choice.
func (s *Snapshot) rewrite(a *Admission, ep llm.Endpoint, p *provider, m *model, req llm.Request, body []byte, capOut int64) ([]byte, int64, *Reply) {
	internal := func() *Reply { return a.deny(http.StatusInternalServerError, ReasonInternal, "internal error") }
	var ed llm.Edits
	if ed.Reset(&req, body) != nil || !ed.SetModel(m.upstream) {
		// The body does not fit req, or the upstream model is empty: never forward a body
		// whose model was not rewritten.
		return nil, 0, internal()
	}
	if injectsUsage(ep, p.typ, req) {
		if err := ed.IncludeUsage(); errors.Is(err, llm.ErrInvalidField) {
			return nil, 0, a.deny(http.StatusBadRequest, ReasonInvalidRequest, "stream_options must be an object")
		} else if err != nil {
			return nil, 0, internal()
		}
	}
	field := maxTokensField(ep, p.typ)
	if field == "" {
		return ed.Apply(), 0, nil // no output tokens (embeddings)
	}
	maxOut, capped := req.MaxTokens, req.MaxTokensField != ""
	if capOut > 0 && (capped || field != "") {
		// Clamp every cap field above the policy's cap (a body may carry several), or write the
		// cap in when the request has none.
		var ok bool
		if maxOut, ok = ed.CapMaxTokens(capOut, field); !ok {
			return nil, 0, internal()
		}
		capped = true
	}
	if !capped {
		maxOut = m.maxOut
		if s.budget.injects(a.Key) && field != "" && !ed.SetMaxTokens(field, maxOut) {
			return nil, 0, internal()
		}
	}
	return ed.Apply(), maxOut, nil
}

// isCredentialHeader reports whether name is one of the headers a virtual key is sent in.
func isCredentialHeader(name string) bool {
	for _, c := range credentialHeaders {
		if name == c {
			return true
		}
	}
	return false
}

// hasVirtualKey reports whether a header value holds what looks like a Tollgate key: the
// "tgk_" prefix in any letter case, or percent-encoded.
func hasVirtualKey(v string) bool {
	for i := 0; i+4 <= len(v); i++ {
		if (v[i]|0x20) != 't' || (v[i+1]|0x20) != 'g' || (v[i+2]|0x20) != 'k' {
			continue
		}
		if v[i+3] == '_' || strings.HasPrefix(v[i+3:], "%5f") || strings.HasPrefix(v[i+3:], "%5F") {
			return true
		}
	}
	return false
}

// looksCompressed reports whether a body that is not JSON starts like a gzip, zlib (deflate)
// or zstd stream, so the client hears why (brotli has no magic bytes).
func looksCompressed(b []byte) bool {
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b: // gzip
		return true
	case len(b) >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd: // zstd
		return true
	case len(b) >= 2 && b[0] == 0x78 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0: // zlib
		return true
	}
	return false
}

// injectsUsage reports whether a request gets stream_options.include_usage added: a streamed
// request to an endpoint whose streams report usage only when asked (Spec.StreamUsage), that
// did not ask, and whose stream would otherwise carry none to settle from.
func injectsUsage(e llm.Endpoint, typ string, req llm.Request) bool {
	return req.Stream && !req.IncludeUsage && typ != ProviderAnthropic && e.Spec().StreamUsage
}

// maxTokensField is the request field that caps output for an endpoint and provider ("" when
// the endpoint produces no output tokens).
func maxTokensField(e llm.Endpoint, typ string) string {
	sp := e.Spec()
	if typ == ProviderOpenAICompatible && sp.CompatMaxTokens != "" {
		return sp.CompatMaxTokens
	}
	return sp.MaxTokens
}

// AuditUnavailable is the refusal while the audit trail cannot be written (fail closed).
func (s *Snapshot) AuditUnavailable(reqID string) *Reply {
	return denial(llm.OpenAI, reqID, http.StatusServiceUnavailable, ReasonAuditUnavailable, "the audit trail is unavailable; try again shortly")
}

// allowed applies the key's and the team's model allow-lists (both must admit the model).
func (s *Snapshot) allowed(k *keys.Record, m *model) bool {
	if len(k.Models) > 0 && !containsString(k.Models, m.public) {
		return false
	}
	t := s.teams[k.Team]
	return t != nil && (t.models == nil || t.models[m.public])
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// modelList answers GET /v1/models locally with the models this key may use.
func (s *Snapshot) modelList(a *Admission) *Reply {
	infos := make([]llm.ModelInfo, 0, len(s.ordered))
	for _, m := range s.ordered {
		if first, _ := m.available(); first != nil && s.allowed(a.Key, m) {
			infos = append(infos, llm.ModelInfo{ID: m.public, OwnedBy: m.provider.name, Created: m.created})
		}
	}
	return &Reply{Status: http.StatusOK, Reason: ReasonOK, Headers: jsonHeaders(a.RequestID), Body: llm.ModelsBody(a.Dialect, infos)}
}

func (a *Admission) deny(status int, r Reason, msg string) *Reply {
	return denial(a.Dialect, a.RequestID, status, r, msg)
}

func (a *Admission) denyParam(status int, r Reason, msg, param string) *Reply {
	rep := denialWith(a.Dialect, a.RequestID, llm.APIError{Status: status, Code: string(r), Message: msg, Param: param})
	rep.Reason = r
	return rep
}

// untranslatable refuses a request the translation to the provider's API refused: a 400
// naming the field (param), whose text comes from translate and holds only field names.
func (a *Admission) untranslatable(err error) *Reply {
	var fe *translate.FieldError
	switch {
	case errors.As(err, &fe) && errors.Is(err, translate.ErrUntranslatable):
		return a.denyParam(http.StatusBadRequest, ReasonInvalidRequest,
			fe.Field+" cannot be sent to this model, whose provider speaks another API: "+fe.Reason, fe.Field)
	case errors.As(err, &fe):
		return a.denyParam(http.StatusBadRequest, ReasonInvalidRequest, fe.Field+": "+fe.Reason, fe.Field)
	case errors.Is(err, translate.ErrDuplicateKey):
		return a.deny(http.StatusBadRequest, ReasonInvalidRequest, "request body has duplicate keys")
	default:
		return a.deny(http.StatusBadRequest, ReasonInvalidJSON, "request body is not valid JSON (a JSON object is expected)")
	}
}

func (a *Admission) tooLarge(limit int) *Reply {
	return a.deny(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "request body is larger than "+strconv.Itoa(limit)+" bytes")
}

func denial(d llm.Dialect, reqID string, status int, r Reason, msg string) *Reply {
	rep := denialWith(d, reqID, llm.APIError{Status: status, Code: string(r), Message: msg})
	rep.Reason = r
	return rep
}

func denialWith(d llm.Dialect, reqID string, e llm.APIError) *Reply {
	if e.Type == "" {
		e.Type = llm.DefaultType(d, e.Status)
	}
	return &Reply{Status: e.Status, Headers: jsonHeaders(reqID), Body: llm.ErrorBody(d, e, reqID)}
}

func jsonHeaders(reqID string) []Header {
	h := []Header{{Key: "content-type", Value: []byte("application/json")}}
	if reqID != "" {
		h = append(h, Header{Key: "x-request-id", Value: []byte(reqID)})
	}
	return h
}
