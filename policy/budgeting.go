package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

// budgetPolicy is the compiled budget section. The ledger outlives snapshots: it is opened
// once by cmd and handed to every Compile.
type budgetPolicy struct {
	ledger     budget.Ledger
	loc        *time.Location
	hold       time.Duration
	failOpen   map[budget.Kind]bool
	inject     bool
	keyLimits  map[string]budget.Limits // by key id
	teamLimits map[string]budget.Limits // by team name
	newID      func() string
	after      AfterFunc
	anyLimits  bool
}

// injects reports whether the reserved output cap is written into a request of key k that
// sets none: when inject_max_tokens is on (the default) and the reservation bounds the bill
// (bounded), so the reservation, not the provider's own output limit, bounds what the request
// can cost.
func (bp *budgetPolicy) injects(k *keys.Record) bool {
	return bp != nil && bp.inject && bp.bounded(k)
}

// bounded reports whether a token or USD limit applies to key k or its team: then a
// request's reservation must be an upper bound of what it can cost.
func (bp *budgetPolicy) bounded(k *keys.Record) bool {
	if bp == nil || !bp.anyLimits || k == nil {
		return false
	}
	for _, l := range [...]budget.Limits{bp.keyLimits[k.ID], bp.teamLimits[k.Team]} {
		if l.TokensPerMinute > 0 || l.USDPerDay > 0 || l.USDPerMonth > 0 || l.USDLifetime > 0 {
			return true
		}
	}
	return false
}

// standardTiers are the service tiers billed at the catalog's (standard) prices, or below
// them (flex). A request may name one, or none.
var standardTiers = [...]string{"", "auto", "default", "flex", "standard_only"}

// checkServiceTier refuses, when a token or USD limit applies, a request for a service tier
// billed above the catalog's standard prices (OpenAI priority or scale): the ledger would
// record less than the provider bills.
func (s *Snapshot) checkServiceTier(a *Admission, req llm.Request) *Reply {
	for _, t := range standardTiers {
		if req.ServiceTier == t {
			return nil
		}
	}
	if !s.budget.bounded(a.Key) {
		return nil
	}
	return a.denyParam(http.StatusBadRequest, ReasonInvalidRequest,
		"this service_tier is billed above the standard prices this gateway's budgets use; omit it, or use auto, default or flex", "service_tier")
}

// checkHostedTool refuses, when a token or USD limit applies, a request that asks the
// provider to run a tool itself (req.HostedTool: web search, file search, code execution,
// remote MCP): such tools are billed beyond tokens (per call, per session) and may run for
// as many rounds as the model takes, so no reservation bounds what the request costs.
func (s *Snapshot) checkHostedTool(a *Admission, req llm.Request) *Reply {
	if req.HostedTool == "" || !s.budget.bounded(a.Key) {
		return nil
	}
	// The message names a field, never the client's tool type (client text stays out of
	// errors, as everywhere in the gateway).
	param, what := "tools", "a tool in tools"
	switch req.HostedTool {
	case "web_search_options", "mcp_servers", "container":
		param, what = req.HostedTool, req.HostedTool
	}
	return a.denyParam(http.StatusBadRequest, ReasonInvalidRequest, what+
		" runs on the provider, billed beyond tokens and for as many rounds as the model takes, so the budget cannot bound this request; "+
		"use function tools the client runs, or a key without token or USD limits", param)
}

// storedInputFloor is the input to reserve for a request that makes the provider read input
// Tollgate never sees (req.StoredInput: a stored conversation or prompt, a file by id or URL,
// an image or document by URL): the model's max_input_tokens, its context window, which the
// provider never exceeds. Without it such a request is refused when a token or USD limit
// applies, since its body's size does not bound its bill.
func (s *Snapshot) storedInputFloor(a *Admission, m *model, req llm.Request) (int64, *Reply) {
	if req.StoredInput == "" || !s.budget.bounded(a.Key) {
		return 0, nil
	}
	if m.maxIn == 0 {
		return 0, a.denyParam(http.StatusBadRequest, ReasonInvalidRequest, req.StoredInput+
			" makes the provider read input that Tollgate cannot count (a stored conversation or prompt, a file, or an image or document by URL), "+
			"so the budget cannot bound this request; send the content inline, or ask the operator to set max_input_tokens for this model", req.StoredInput)
	}
	return m.maxIn, nil
}

// CompileOption adjusts Compile.
type CompileOption func(*compileOptions)

type compileOptions struct {
	ledger budget.Ledger
	newID  func() string
	after  AfterFunc
}

// WithLedger sets the ledger that budgets reserve against.
func WithLedger(l budget.Ledger) CompileOption { return func(o *compileOptions) { o.ledger = l } }

// WithIDs injects the reservation id source (tests).
func WithIDs(f func() string) CompileOption { return func(o *compileOptions) { o.newID = f } }

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Estimate is what a request reserves before it is forwarded.
type Estimate struct {
	InputTokens  int64
	OutputTokens int64
	Tokens       int64
	CostMicros   int64
}

// inputBound is the input tokens reserved for a forwarded body of bodyLen bytes: one token
// per byte, since tokenizers that fall back to bytes (OpenAI's among them) never make more
// tokens than bytes, and text in scripts or symbols they rarely saw (emoji, many non-Latin
// scripts) comes close to that. English averages about four bytes per token, so this
// reserves about four times what plain English costs; settlement charges the real usage.
// It is capped at the model's context window (maxIn, when set: the provider refuses anything
// longer), and raised to floor (storedInputFloor) for input the body does not carry.
func inputBound(bodyLen int, maxIn, floor int64) int64 {
	in := int64(bodyLen)
	if maxIn > 0 {
		in = min(in, maxIn)
	}
	return max(in, floor)
}

// Anthropic adds prompt tokens of its own to a Messages request that lists tools, which the
// body's bytes do not show: a tool-use system prompt (up to about 530 tokens, by model and
// tool_choice) and, for each tool it defines (bash, text editor, computer, memory), that
// tool's expanded definition and prompt (up to about 1,250 tokens for the computer tool).
const (
	toolPromptTokens  = 1024
	definedToolTokens = 1536
)

// toolAllowance is the input, in tokens, that the provider adds to req (sent to ep) for its
// tools.
func toolAllowance(ep llm.Endpoint, req llm.Request) int {
	if ep.Dialect() != llm.Anthropic || req.Tools == 0 {
		return 0
	}
	return toolPromptTokens + req.DefinedTools*definedToolTokens
}

// estimate is the reservation of a request with in input tokens (inputBound) and maxOut
// output tokens (the whole output cap of every choice), priced at the dearest input rate (a
// prompt-cache write costs more than plain input).
func estimate(in, maxOut int64, p budget.Price) Estimate {
	e := Estimate{InputTokens: in, OutputTokens: maxOut, Tokens: in + maxOut}
	e.CostMicros = p.MaxCost(in, maxOut)
	return e
}

// Hold is a reservation in force for one request. Forward.Settle settles it exactly once,
// when the stream ends: until then the reservation is renewed in the background (see
// renewal), however long the stream runs.
type Hold struct {
	bp       *budgetPolicy
	id       string
	planned  []budget.Planned
	items    []budget.Item
	Estimate Estimate
	// FailedOpen is true when the ledger could not answer and every limit involved allows
	// fail-open: nothing was reserved.
	FailedOpen bool
	renew      *renewal // keeps the reservation alive until Settle; nil when none
}

// Limits names the limits the reservation was checked against ("usd_per_day", ...).
func (h *Hold) Limits() []string {
	out := make([]string, len(h.planned))
	for i, p := range h.planned {
		out[i] = p.Scope + ":" + p.Kind.String()
	}
	return out
}

// Settlement is what a request was finally charged.
type Settlement struct {
	Tokens     int64
	CostMicros int64
	// Rule names how the charge was decided: one of the Settle* constants.
	Rule string
}

// Settlement rules, in the audit event's settle_rule and the request log line.
const (
	// SettleUsage: the response reached its provider-defined end and reported usage, which
	// is charged as priced.
	SettleUsage = "usage"
	// SettleIncomplete: the response did not reach its end (client abort, upstream reset)
	// but reported some usage on the way. Usage seen before the end is a lower bound, not a
	// bill (Anthropic's message_start counts about one output token however long the stream
	// then runs), so the charge is the larger of that usage and the reservation.
	SettleIncomplete = "incomplete"
	// SettleFullReservation: no usage arrived (client abort, upstream reset, or a provider
	// that reports none): the whole reservation is charged.
	SettleFullReservation = "full_reservation"
	// SettleUpstreamError: an error status without usage costs nothing but the request.
	SettleUpstreamError = "upstream_error"
)

// Outcome is what a forwarded request's response showed by the time its stream ended.
type Outcome struct {
	// Usage is the usage the provider reported, valid when UsageSeen.
	Usage     llm.Usage
	UsageSeen bool
	// Ended reports that the response reached its provider-defined end (llm.UsageParser
	// Ended): [DONE], message_stop, response.completed, or a complete JSON body.
	Ended bool
	// Status is the upstream's HTTP status, 0 when no response headers arrived.
	Status int
	// price prices the usage instead of the Forward's own price: the serving target's, for a
	// request with a fallback plan.
	price *budget.Price
}

// charge is the settlement rule, for every dialect: usage when the response ended and
// reported it; otherwise never less than the reservation, so a client that aborts a stream
// cannot spend past a budget by cutting it before the provider's final usage.
func charge(est Estimate, p budget.Price, o Outcome) Settlement {
	switch {
	case o.UsageSeen && o.Ended:
		return Settlement{Tokens: o.Usage.Total(), CostMicros: p.Cost(o.Usage), Rule: SettleUsage}
	case o.UsageSeen:
		return Settlement{Tokens: max(o.Usage.Total(), est.Tokens), CostMicros: max(p.Cost(o.Usage), est.CostMicros),
			Rule: SettleIncomplete}
	case o.Status >= 400:
		return Settlement{Rule: SettleUpstreamError}
	default:
		return Settlement{Tokens: est.Tokens, CostMicros: est.CostMicros, Rule: SettleFullReservation}
	}
}

// Settle decides what the request is charged from its response's outcome and, when it
// holds a reservation (h non-nil), settles the reservation to that charge. It runs once, at
// the end of the stream, on a context detached from the stream (already cancelled when the
// client went away). The charge is returned even when the ledger write fails.
func (f *Forward) Settle(ctx context.Context, h *Hold, o Outcome) (Settlement, error) {
	price := f.price
	if o.price != nil {
		price = *o.price
	}
	st := charge(f.Estimate, price, o)
	if h == nil {
		return st, nil
	}
	h.renew.stop()
	if h.FailedOpen {
		return st, nil
	}
	return st, h.bp.ledger.Settle(ctx, h.id, h.items, budget.Actuals(h.planned, st.Tokens, st.CostMicros))
}

// Reserve holds the request's estimate against every applicable limit, atomically. It
// returns a nil Hold and nil Reply when no limit applies.
func (s *Snapshot) Reserve(ctx context.Context, a *Admission, f *Forward, now time.Time) (*Hold, *Reply) {
	bp := s.budget
	if bp == nil || !bp.anyLimits {
		return nil, nil
	}
	key, team := bp.keyLimits[a.Key.ID], bp.teamLimits[a.Key.Team]
	if isZero(key) && isZero(team) {
		return nil, nil
	}
	est := budget.Estimate{Tokens: f.Estimate.Tokens, CostMicros: f.Estimate.CostMicros}
	planned := budget.Plan(a.Key.Team, a.Key.ID, key, team, est, now, bp.loc)
	h := &Hold{bp: bp, id: bp.newID(), planned: planned, Estimate: f.Estimate}
	h.items = make([]budget.Item, len(planned))
	for i, p := range planned {
		h.items[i] = p.Item
	}
	denied, err := bp.ledger.Reserve(ctx, h.id, h.items, bp.hold)
	if err != nil {
		for _, p := range planned {
			if !bp.failOpen[p.Kind] {
				return nil, a.deny(http.StatusServiceUnavailable, ReasonLedgerUnavailable, "the budget service is unavailable; try again shortly")
			}
		}
		h.FailedOpen = true
		return h, nil
	}
	if denied >= 0 {
		return nil, s.limitReply(ctx, a, f, planned[denied], now)
	}
	h.renew = bp.startRenewal(h.id, h.items)
	return h, nil
}

// limitReply is the 429 for a tripped limit: a provider-shaped body naming the limit and,
// when this request's own reservation is what does not fit, saying so with what is left and
// how to ask for less; a retry-after; and x-ratelimit-* headers in OpenAI's style. USD
// amounts are in dollars (decimal strings), never micro-dollars.
func (s *Snapshot) limitReply(ctx context.Context, a *Admission, f *Forward, p budget.Planned, now time.Time) *Reply {
	unit := p.Kind.Unit()
	amount := func(n int64) string {
		if unit == "usd" {
			return "$" + budget.FormatUSD(n)
		}
		return strconv.FormatInt(n, 10) + " " + unit
	}
	header := func(n int64) []byte {
		if unit == "usd" {
			return []byte(budget.FormatUSD(n))
		}
		return strconv.AppendInt(nil, n, 10)
	}
	msg := "rate limit reached: " + p.Scope + " limit " + p.Kind.String() + " (" + amount(p.Item.Limit) + ") exceeded"
	rem, known := int64(0), false
	if bal, err := s.budget.ledger.Balances(ctx, []string{p.Item.Key}); err == nil && len(bal) == 1 {
		rem, known = max(p.Item.Limit-bal[0].Used-bal[0].Reserved, 0), true
	}
	if unit != "requests" {
		switch {
		case p.Item.Amount > p.Item.Limit:
			msg = "this request reserves " + amount(p.Item.Amount) + ", more than the whole " + p.Scope + " limit " +
				p.Kind.String() + " (" + amount(p.Item.Limit) + ")"
		case known && p.Item.Amount > rem:
			msg = "this request reserves " + amount(p.Item.Amount) + ", more than the " + amount(rem) + " left of the " +
				p.Scope + " limit " + p.Kind.String() + " (" + amount(p.Item.Limit) + ")"
		}
		if p.Item.Amount > rem && f.Estimate.OutputTokens > 0 {
			msg += "; the reservation assumes up to " + strconv.FormatInt(f.Estimate.OutputTokens, 10) +
				" output tokens: set a lower max_tokens to ask for less"
		}
	}
	rep := a.deny(http.StatusTooManyRequests, ReasonLimitExceeded, msg)
	rep.Limit = &TrippedLimit{Scope: p.Scope, Kind: p.Kind.String()}
	rep.Headers = append(rep.Headers, Header{Key: "x-ratelimit-limit-" + unit, Value: header(p.Item.Limit)})
	if known {
		rep.Headers = append(rep.Headers, Header{Key: "x-ratelimit-remaining-" + unit, Value: header(rem)})
	}
	if retry := budget.Retry(p, now); retry > 0 {
		secs := int64((retry + time.Second - 1) / time.Second)
		rep.Headers = append(rep.Headers,
			Header{Key: "retry-after", Value: []byte(strconv.FormatInt(secs, 10))},
			Header{Key: "x-ratelimit-reset-" + unit, Value: []byte(retry.Round(time.Second).String())},
		)
	}
	return rep
}

// errNoLedger is returned by Compile when limits are configured without a ledger.
var errNoLedger = errors.New("budget: limits are configured but no ledger is available")
