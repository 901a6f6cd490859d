package budget

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Limits are the ceilings configured for one virtual key or one team. Zero means no limit.
// USD fields are micro-dollars.
type Limits struct {
	RequestsPerMinute int64
	TokensPerMinute   int64
	USDPerDay         int64
	USDPerMonth       int64
	USDLifetime       int64
}

// Get returns the limit of kind k (0 for an unknown kind).
func (l Limits) Get(k Kind) int64 {
	switch k {
	case KindRequestsPerMinute:
		return l.RequestsPerMinute
	case KindTokensPerMinute:
		return l.TokensPerMinute
	case KindUSDPerDay:
		return l.USDPerDay
	case KindUSDPerMonth:
		return l.USDPerMonth
	case KindUSDLifetime:
		return l.USDLifetime
	}
	return 0
}

// Validate reports every negative limit, each named by its Kind.
func (l Limits) Validate() error {
	var errs []error
	for k := range NumKinds {
		if l.Get(k) < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", k))
		}
	}
	return errors.Join(errs...)
}

// Kind is one of the five limits. Its values run from 0 to NumKinds-1, in the order a
// reservation's items are planned.
type Kind int

// The limit kinds.
const (
	KindRequestsPerMinute Kind = iota
	KindTokensPerMinute
	KindUSDPerDay
	KindUSDPerMonth
	KindUSDLifetime
	// NumKinds is the number of kinds; iterate with "for k := range NumKinds".
	NumKinds
)

var kindInfo = [NumKinds]struct{ name, unit, short string }{
	KindRequestsPerMinute: {"requests_per_minute", "requests", "req"},
	KindTokensPerMinute:   {"tokens_per_minute", "tokens", "tok"},
	KindUSDPerDay:         {"usd_per_day", "usd", "usd"},
	KindUSDPerMonth:       {"usd_per_month", "usd", "usd"},
	KindUSDLifetime:       {"usd_lifetime", "usd", "usd"},
}

// String is the kind's stable name, as used in config, metrics and client error bodies:
// "requests_per_minute", "tokens_per_minute", "usd_per_day", "usd_per_month",
// "usd_lifetime". An out-of-range kind is "unknown".
func (k Kind) String() string {
	if k < 0 || k >= NumKinds {
		return "unknown"
	}
	return kindInfo[k].name
}

// Unit is what the kind counts: "requests", "tokens" or "usd" (in micro-dollars).
func (k Kind) Unit() string {
	if k < 0 || k >= NumKinds {
		return "unknown"
	}
	return kindInfo[k].unit
}

// WindowEnd is when the window holding now ends, for kind k:
//
//   - requests and tokens per minute: the next clock minute (minutes are UTC minutes, so a
//     repeated local hour at a DST change never merges two real minutes into one window);
//   - USD per day: the next midnight in loc (a calendar day may be 23 or 25 hours long);
//   - USD per month: midnight on the first of the next month in loc;
//   - lifetime: the zero time (the window never ends).
//
// A nil loc is UTC. In the rare zones whose clocks skip midnight, the day ends where
// time.Date normalizes the missing midnight to.
func WindowEnd(k Kind, now time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	switch k {
	case KindRequestsPerMinute, KindTokensPerMinute:
		return now.UTC().Truncate(time.Minute).Add(time.Minute)
	case KindUSDPerDay:
		y, m, d := now.In(loc).Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case KindUSDPerMonth:
		y, m, _ := now.In(loc).Date()
		return time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return time.Time{}
}

// windowID names the window holding now: "m202611271205" (UTC minute), "d20261127" (day
// in loc), "mo202611" (month in loc) or "life".
func windowID(k Kind, now time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	switch k {
	case KindRequestsPerMinute, KindTokensPerMinute:
		return now.UTC().Format("m200601021504")
	case KindUSDPerDay:
		return now.In(loc).Format("d20060102")
	case KindUSDPerMonth:
		return now.In(loc).Format("mo200601")
	}
	return "life"
}

// CounterSlack is how long a counter outlives its window before it may be forgotten: long
// enough for late settlements of requests that started in the window.
const CounterSlack = time.Hour

// Estimate is what a request is expected to consume at most, before it is sent. A request
// always counts as one request.
type Estimate struct {
	Tokens     int64
	CostMicros int64
}

// Scopes of a planned item.
const (
	ScopeKey  = "key"
	ScopeTeam = "team"
)

// Planned is one counter a request draws on, with what the caller needs to explain a denial.
type Planned struct {
	Item Item
	// Scope is ScopeKey or ScopeTeam.
	Scope string
	Kind  Kind
	// WindowEnd is when the counter's window ends (zero for lifetime).
	WindowEnd time.Time
}

// Plan lists the counters a request of key keyID in team draws on: one per non-zero limit,
// the key's limits first, then the team's, each in Kind order. Amounts come from est (1 for
// requests; negative estimates count as 0). Keys have the form
//
//	tg:{t:<team>}:k:<keyID>:<unit>:<window>   (key scope)
//	tg:{t:<team>}:team:<unit>:<window>        (team scope)
//
// with unit "req", "tok" or "usd" and a window id from "m202611271205" (UTC minute),
// "d20261127", "mo202611" (day and month in loc) or "life". The "{t:<team>}" hash tag puts
// every key of one reservation in one Redis Cluster slot. Team and key id are escaped
// (bytes outside [A-Za-z0-9._-] become %XX) so "{", "}" and ":" never appear in them and
// distinct inputs never share a key. Item.Expires is WindowEnd plus CounterSlack (zero for
// lifetime).
func Plan(team, keyID string, keyLimits, teamLimits Limits, est Estimate, now time.Time, loc *time.Location) []Planned {
	n := 0
	for k := range NumKinds {
		if keyLimits.Get(k) != 0 {
			n++
		}
		if teamLimits.Get(k) != 0 {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]Planned, 0, n)
	base := "tg:{t:" + escape(team) + "}:"
	keyBase := base + "k:" + escape(keyID) + ":"
	teamBase := base + "team:"
	for _, sc := range [2]struct {
		scope, base string
		limits      Limits
	}{{ScopeKey, keyBase, keyLimits}, {ScopeTeam, teamBase, teamLimits}} {
		for k := range NumKinds {
			limit := sc.limits.Get(k)
			if limit == 0 {
				continue
			}
			end := WindowEnd(k, now, loc)
			var exp time.Time
			if !end.IsZero() {
				exp = end.Add(CounterSlack)
			}
			out = append(out, Planned{
				Item: Item{
					Key:     sc.base + kindInfo[k].short + ":" + windowID(k, now, loc),
					Limit:   limit,
					Amount:  amount(k, 1, est.Tokens, est.CostMicros),
					Expires: exp,
				},
				Scope:     sc.scope,
				Kind:      k,
				WindowEnd: end,
			})
		}
	}
	return out
}

// amount picks the quantity kind k counts; negatives count as 0.
func amount(k Kind, requests, tokens, costMicros int64) int64 {
	var v int64
	switch k {
	case KindRequestsPerMinute:
		v = requests
	case KindTokensPerMinute:
		v = tokens
	default:
		v = costMicros
	}
	return max(v, 0)
}

// Items returns the ledger items of a plan, in order.
func Items(p []Planned) []Item {
	items := make([]Item, len(p))
	for i := range p {
		items[i] = p[i].Item
	}
	return items
}

// Actuals is what a finished request settles on each planned counter: 1 for requests,
// tokens for tokens and costMicros for USD (negatives count as 0).
func Actuals(p []Planned, tokens, costMicros int64) []int64 {
	out := make([]int64, len(p))
	for i := range p {
		out[i] = amount(p[i].Kind, 1, tokens, costMicros)
	}
	return out
}

// Retry is how long a request denied by p should wait before trying again: the time until
// p's window ends, but at least one second (so a retry-after header is never 0). It is 0 for
// lifetime limits, meaning waiting does not help.
func Retry(p Planned, now time.Time) time.Duration {
	if p.WindowEnd.IsZero() {
		return 0
	}
	return max(p.WindowEnd.Sub(now), time.Second)
}

// escape percent-encodes every byte outside [A-Za-z0-9._-], including '%' itself, so the
// result never holds a key delimiter and distinct inputs stay distinct.
func escape(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		clean = keySafe(s[i])
	}
	if clean {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keySafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func keySafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}
