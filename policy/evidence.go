package policy

import "github.com/tollgate-ai/tollgate/policy/guard"

// GuardEvidence is one guardrail finding as the request log line and the audit event record
// it: the rule, what happened, and how often. Never text.
type GuardEvidence struct {
	Rule   string
	Action string
	Count  int
	// Response reports a finding in the response (its Action ends in "_response").
	Response bool
}

// Evidence lists what the guardrails did on this request, request findings first, then the
// response's (from the stream redactor or the JSON scan). Actions come from one closed set,
// so the log line and the audit event say the same thing and say what happened:
//   - request: "block" (refused), "redact" (forwarded redacted), "audit" (counted only);
//   - response: "redact_response" (a block rule redacts too: a response cannot be refused
//     once its headers went out) or "audit_response";
//   - "scan_failed" / "scan_failed_response": the text could not be scanned for the rule,
//     and its fail mode decided;
//   - under a dry run nothing changed: the action that would have been taken, prefixed with
//     "would_" ("would_block", "would_redact_response", ...).
//
// A nil Guard (no profile) has no evidence.
func (g *Guard) Evidence(response []guard.Finding) []GuardEvidence {
	if g == nil {
		return nil
	}
	out := make([]GuardEvidence, 0, len(g.Findings)+len(response))
	for _, f := range g.Findings {
		out = append(out, GuardEvidence{Rule: f.RuleID, Action: g.action(f, false), Count: f.Count})
	}
	for _, f := range response {
		out = append(out, GuardEvidence{Rule: f.RuleID, Action: g.action(f, true), Count: f.Count, Response: true})
	}
	return out
}

func (g *Guard) action(f guard.Finding, response bool) string {
	a := f.Action.String()
	switch {
	case f.Failed:
		a = "scan_failed"
	case response && f.Action == guard.Block:
		a = guard.Redact.String()
	}
	if response {
		a += "_response"
	}
	if g.DryRun {
		a = "would_" + a
	}
	return a
}
