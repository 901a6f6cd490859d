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

// estimate is deliberately conservative: one input token per three body bytes (English
// averages about four characters per token, and JSON framing counts as bytes), and the
// whole output cap.
func estimate(bodyLen int, maxOut int64, p budget.Price) Estimate {
	in := int64(bodyLen+2) / 3
	e := Estimate{InputTokens: in, OutputTokens: maxOut, Tokens: in + maxOut}
	e.CostMicros = p.Cost(llm.Usage{InputTokens: in, OutputTokens: maxOut})
	return e
}

// Hold is a reservation in force for one request. Settle it exactly once when the stream ends:
// until then the reservation is renewed in the background (see renewal), however long the
// stream runs.
type Hold struct {
	bp       *budgetPolicy
	id       string
	planned  []budget.Planned
	items    []budget.Item
	price    budget.Price
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
	// Rule names how the charge was decided: "usage" (provider-reported), "full_reservation"
	// (no usage arrived: client abort, upstream reset, or a provider that reported none),
	// "upstream_error" (an error status without usage costs nothing but the request).
	Rule string
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
	h := &Hold{bp: bp, id: bp.newID(), planned: planned, price: f.price, Estimate: f.Estimate}
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
		return nil, s.limitReply(ctx, a, planned[denied], now)
	}
	h.renew = bp.startRenewal(h.id, h.items)
	return h, nil
}

// Settle charges the request: provider-reported usage when seen, otherwise per the rule
// documented on Settlement. It runs on a context detached from the stream.
func (h *Hold) Settle(ctx context.Context, u llm.Usage, seen bool, status int) (Settlement, error) {
	h.renew.stop()
	var st Settlement
	switch {
	case seen:
		st = Settlement{Tokens: u.Total(), CostMicros: h.price.Cost(u), Rule: "usage"}
	case status >= 400:
		st = Settlement{Rule: "upstream_error"}
	default:
		st = Settlement{Tokens: h.Estimate.Tokens, CostMicros: h.Estimate.CostMicros, Rule: "full_reservation"}
	}
	if h.FailedOpen {
		return st, nil
	}
	err := h.bp.ledger.Settle(ctx, h.id, h.items, budget.Actuals(h.planned, st.Tokens, st.CostMicros))
	return st, err
}

// limitReply is the 429 for a tripped limit: a provider-shaped body naming the limit, a
// retry-after, and x-ratelimit-* headers in OpenAI's style.
func (s *Snapshot) limitReply(ctx context.Context, a *Admission, p budget.Planned, now time.Time) *Reply {
	msg := "rate limit reached: " + p.Scope + " limit " + p.Kind.String() + " exceeded"
	rep := a.deny(http.StatusTooManyRequests, ReasonLimitExceeded, msg)
	rep.Limit = &TrippedLimit{Scope: p.Scope, Kind: p.Kind.String()}
	unit := p.Kind.Unit()
	rep.Headers = append(rep.Headers, Header{Key: "x-ratelimit-limit-" + unit, Value: []byte(strconv.FormatInt(p.Item.Limit, 10))})
	if bal, err := s.budget.ledger.Balances(ctx, []string{p.Item.Key}); err == nil && len(bal) == 1 {
		rem := max(p.Item.Limit-bal[0].Used-bal[0].Reserved, 0)
		rep.Headers = append(rep.Headers, Header{Key: "x-ratelimit-remaining-" + unit, Value: []byte(strconv.FormatInt(rem, 10))})
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
