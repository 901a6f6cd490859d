package policy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/translate"
)

// Exchange is one request's passage through the gateway, from its headers to the end of its
// response: it makes every decision on the way (admit, route and reserve, whether and how the
// response is guarded, what leaves in place of each response chunk, what is charged) and
// keeps what the request log line, the metrics and the audit event report. The protocol layer
// only translates: it calls these methods in the order the HTTP exchange happens and turns
// their results into its own messages.
//
// An Exchange is used by one goroutine. Create one per request with Snapshot.NewExchange; it
// decides with that snapshot to the end, whatever reloads happen meanwhile.
type Exchange struct {
	snap  *Snapshot
	ctx   context.Context
	opts  ExchangeOptions
	start time.Time
	phase exchangePhase

	method, path string // the path without its query string
	endpoint     llm.Endpoint
	requestID    string // sanitized x-request-id
	client       string // the client's address, as Envoy reports it

	// bodiesHidden: the proxy does not send response bodies (ResponseBodiesHidden).
	bodiesHidden bool

	adm   *Admission
	fwd   *Forward
	hold  *Hold
	guard *Guard        // findings of a request a guardrail refused
	limit *TrippedLimit // the limit of a 429

	reason  Reason
	status  int // HTTP status sent to the client (ours, Envoy's or the upstream's)
	decided bool

	reqBytes                int
	respBytes               int64
	respEOS                 bool
	firstByte               time.Duration
	forwardedAt, upstreamAt time.Time

	usage  *llm.UsageParser
	chunks *llm.UsageChunkFilter // removes the usage chunk Tollgate asked for; nil when none
	rg     *responseGuard        // nil when the response is not guarded
	tr     translate.Response    // translates the response to the client's API; nil when none

	hdrSet    []Header // response header changes (ResponseHeaderEdits)
	hdrRemove []string

	// prompt and completion are kept only when the audit content policy needs them.
	prompt, completion []byte

	ended   bool
	used    llm.Usage
	seen    bool
	settled Settlement

	attempts attemptsSeen // a fallback plan's attempts, as their upstream filters reported them
}

// ExchangeOptions adjust an Exchange.
type ExchangeOptions struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// CaptureContent keeps the prompt and the completion (up to MaxContentCapture) for an
	// audit content policy that hashes or seals them.
	CaptureContent bool
	// AuditUnavailable reports that the audit trail cannot take events while the config asks
	// to fail closed: requests are then refused (nil: never).
	AuditUnavailable func() bool
}

// MaxContentCapture bounds what is kept of a completion for hashed or sealed audit content.
const MaxContentCapture = 16 << 20

// exchangePhase is where an exchange is. A BUFFERED request body comes in one message, then
// the response headers and the streamed chunks.
type exchangePhase int

const (
	phaseStart        exchangePhase = iota // expecting request headers
	phaseRequestBody                       // admitted, expecting the buffered body
	phaseForwarded                         // routed upstream, expecting response headers
	phaseResponseBody                      // streaming the response
	phaseReplied                           // Tollgate answered itself
	phaseLocalReply                        // passing through a reply Envoy made itself
)

var phaseNames = [...]string{"start", "request body", "forwarded", "response body", "replied", "local reply"}

func (p exchangePhase) String() string { return phaseNames[p] }

// ErrProtocol means the proxy sent something the exchange cannot accept in its state: the
// exchange is no longer what was decided on, and the request must fail (closed).
var ErrProtocol = errors.New("protocol fault")

func protocolFault(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, a...))
}

// NewExchange starts the exchange of one request.
func (s *Snapshot) NewExchange(ctx context.Context, o ExchangeOptions) *Exchange {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Exchange{snap: s, ctx: ctx, opts: o, start: o.Now()}
}

// SetClient records the client's address (Envoy's source.address attribute), which the audit
// event keeps truncated to its network.
func (x *Exchange) SetClient(addr string) {
	if x.client == "" {
		x.client = addr
	}
}

// RequestID is the request's sanitized x-request-id ("" before the headers, or none sent).
func (x *Exchange) RequestID() string { return x.requestID }

// Admission is what the headers phase learned (nil until a key was verified).
func (x *Exchange) Admission() *Admission { return x.adm }

// Forward is the decision to send the request upstream (nil until then).
func (x *Exchange) Forward() *Forward { return x.fwd }

// Hold is the request's budget reservation (nil when no limit applies).
func (x *Exchange) Hold() *Hold { return x.hold }

// RequestHeaders decides on the request headers. A nil Reply means: wait for the body. A
// Reply is the answer to send instead of forwarding (a refusal, or the model list).
func (x *Exchange) RequestHeaders(h RequestHeaders) (*Reply, error) {
	if x.phase != phaseStart {
		return nil, protocolFault("request headers in phase %s", x.phase)
	}
	x.method, x.path = h.Method, stripQuery(h.Path)
	x.endpoint, _ = llm.Classify(h.Method, h.Path)
	x.requestID = SanitizeRequestID(h.Get("x-request-id"))
	if x.opts.AuditUnavailable != nil && x.opts.AuditUnavailable() {
		return x.reply(x.snap.AuditUnavailable(x.requestID)), nil
	}
	adm, rep := x.snap.Admit(x.opts.Now(), h)
	x.adm = adm
	if rep != nil {
		return x.reply(rep), nil
	}
	x.phase = phaseRequestBody
	return nil, nil
}

// RequestBody decides on the buffered request body: route, guardrails and budget. It returns
// the Forward to apply, or the Reply to send instead.
func (x *Exchange) RequestBody(body []byte, endOfStream bool) (*Forward, *Reply, error) {
	if x.phase != phaseRequestBody {
		return nil, nil, protocolFault("request body in phase %s", x.phase)
	}
	if !endOfStream {
		// Only BUFFERED sends the body in one message; anything else would reach the
		// upstream before the decision.
		return nil, nil, protocolFault("request body arrived in parts; the filter must use BUFFERED mode")
	}
	x.reqBytes = len(body)
	if x.opts.CaptureContent {
		x.prompt = body
	}
	fwd, rep := x.snap.Route(x.adm, body)
	if rep != nil {
		return nil, x.reply(rep), nil
	}
	if x.bodiesHidden {
		if rep := x.needsResponseBody(fwd); rep != nil {
			return nil, x.reply(rep), nil
		}
	}
	hold, rep := x.snap.Reserve(x.ctx, x.adm, fwd, x.opts.Now())
	if rep != nil {
		return nil, x.reply(rep), nil
	}
	x.fwd, x.hold = fwd, hold
	x.forwardedAt = x.opts.Now()
	x.reason, x.decided = ReasonOK, true
	x.phase = phaseForwarded
	return fwd, nil, nil
}

// ResponseBodiesHidden tells the exchange that the proxy will not send it the response body
// (an Envoy filter whose response_body_mode is NONE). A request whose response must be read
// before the client gets it, guarded or translated, is then refused instead of answered
// unguarded or untranslated; others go on, and settle at their reservation since no usage
// can be seen.
func (x *Exchange) ResponseBodiesHidden() { x.bodiesHidden = true }

// needsResponseBody refuses a request whose response Tollgate must read (nil when none).
func (x *Exchange) needsResponseBody(f *Forward) *Reply {
	switch {
	case f.Guard != nil && f.Guard.Profile != "":
		return x.adm.deny(http.StatusServiceUnavailable, ReasonGuardrailUnreadable,
			"the gateway cannot apply its guardrails to responses right now")
	case f.tr != nil:
		return x.adm.deny(http.StatusServiceUnavailable, ReasonInternal,
			"the gateway cannot translate responses right now")
	}
	return nil
}

// reply records that Tollgate answered the request itself.
func (x *Exchange) reply(rep *Reply) *Reply {
	x.reason, x.decided = rep.Reason, true
	x.limit, x.guard = rep.Limit, rep.Guard
	x.status = rep.Status
	x.phase = phaseReplied
	return rep
}

// SanitizeRequestID keeps a request id only if it looks like one (at most 128 bytes of
// [A-Za-z0-9._-]), else "invalid": it lands in logs and the audit trail.
func SanitizeRequestID(id string) string {
	if len(id) > 128 {
		return "invalid"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "invalid"
		}
	}
	return id
}

// stripQuery drops the query string, which may carry tokens, before a path is logged.
func stripQuery(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}
