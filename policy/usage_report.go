package policy

import (
	"context"
	"slices"
	"time"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

// UsageEntry is the state of one configured limit in its current window.
type UsageEntry struct {
	Scope     string     `json:"scope"` // "key" or "team"
	ID        string     `json:"id"`    // key id or team name
	Team      string     `json:"team"`
	Limit     string     `json:"limit"` // e.g. "usd_per_day"
	Unit      string     `json:"unit"`  // "requests", "tokens" or "usd_micros"
	Max       int64      `json:"max"`
	Used      int64      `json:"used"`
	Reserved  int64      `json:"reserved"`
	Remaining int64      `json:"remaining"`
	WindowEnd *time.Time `json:"window_end,omitempty"`
}

// UsageReport reads every configured limit's counter for the current windows. Keys and teams
// without limits have no counters and are not listed.
func (s *Snapshot) UsageReport(ctx context.Context, now time.Time) ([]UsageEntry, error) {
	bp := s.budget
	if bp == nil || !bp.anyLimits {
		return []UsageEntry{}, nil
	}
	var planned []budget.Planned
	var owner []string // key id or team, per planned item
	var teams []string
	for name := range bp.teamLimits {
		teams = append(teams, name)
	}
	slices.Sort(teams)
	for _, name := range teams {
		for _, p := range budget.Plan(name, "", budget.Limits{}, bp.teamLimits[name], budget.Estimate{}, now, bp.loc) {
			planned, owner = append(planned, p), append(owner, name)
		}
	}
	for _, rec := range s.keys.Records() {
		l, ok := bp.keyLimits[rec.ID]
		if !ok {
			continue
		}
		for _, p := range budget.Plan(rec.Team, rec.ID, l, budget.Limits{}, budget.Estimate{}, now, bp.loc) {
			planned, owner = append(planned, p), append(owner, rec.ID)
		}
	}
	ks := make([]string, len(planned))
	for i, p := range planned {
		ks[i] = p.Item.Key
	}
	bals, err := bp.ledger.Balances(ctx, ks)
	if err != nil {
		return nil, err
	}
	out := make([]UsageEntry, len(planned))
	for i, p := range planned {
		unit := p.Kind.Unit()
		if unit == "usd" {
			unit = "usd_micros"
		}
		e := UsageEntry{Scope: p.Scope, ID: owner[i], Limit: p.Kind.String(), Unit: unit, Max: p.Item.Limit,
			Used: bals[i].Used, Reserved: bals[i].Reserved}
		e.Team = owner[i]
		if r := s.keys.Lookup(owner[i]); p.Scope == "key" && r != nil {
			e.Team = r.Team
		}
		e.Remaining = max(e.Max-e.Used-e.Reserved, 0)
		if !p.WindowEnd.IsZero() {
			end := p.WindowEnd
			e.WindowEnd = &end
		}
		out[i] = e
	}
	return out, nil
}
