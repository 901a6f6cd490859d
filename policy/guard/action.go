package guard

import "fmt"

// Action is what a rule does when its detector matches.
type Action int

// Actions, from the strongest to the weakest. The zero value is not an
// action, so a rule that forgot to set one is refused by Compile.
const (
	// Block refuses the request (403 naming the rule id, never the text).
	// On a streamed response, where the status is already sent, Block acts
	// as Redact and the finding records Redact.
	Block Action = iota + 1
	// Redact replaces each match with a typed placeholder such as [EMAIL_1].
	Redact
	// Audit records the finding and changes nothing.
	Audit
)

// String returns "block", "redact" or "audit" ("unknown" otherwise), stable
// for config, logs and audit events.
func (a Action) String() string {
	switch a {
	case Block:
		return "block"
	case Redact:
		return "redact"
	case Audit:
		return "audit"
	default:
		return "unknown"
	}
}

// ParseAction maps "block", "redact" or "audit" to an Action.
func ParseAction(s string) (Action, error) {
	switch s {
	case "block":
		return Block, nil
	case "redact":
		return Redact, nil
	case "audit":
		return Audit, nil
	default:
		return 0, fmt.Errorf("unknown action (want block, redact or audit)")
	}
}

// MarshalText returns String, so an Action encodes as its name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses a name with ParseAction.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Decision is the outcome of a scan.
type Decision int

// Decisions. The zero value is DecisionAllow.
const (
	// DecisionAllow forwards the body unchanged (audit findings may exist).
	DecisionAllow Decision = iota
	// DecisionBlock refuses the request; Result.BlockedBy names the rule.
	DecisionBlock
	// DecisionRedact forwards Result.NewBody instead of the original body.
	DecisionRedact
)

// String returns "allow", "block" or "redact", stable for logs and metrics
// labels.
func (d Decision) String() string {
	switch d {
	case DecisionBlock:
		return "block"
	case DecisionRedact:
		return "redact"
	default:
		return "allow"
	}
}
