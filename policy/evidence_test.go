package policy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/guard"
)

// TestGuardEvidenceSaysWhatHappened: the recorded action is what was done, not the rule's
// configuration (issue 15 item 7): a response cannot be blocked once its headers went out,
// so a block rule's match in a response was redacted; under a dry run nothing changed.
func TestGuardEvidenceSaysWhatHappened(t *testing.T) {
	req := []guard.Finding{{RuleID: "email", Action: guard.Redact, Count: 2}, {RuleID: "inj", Action: guard.Audit, Count: 1}}
	resp := []guard.Finding{{RuleID: "aws-key", Action: guard.Block, Count: 1}, {RuleID: "email", Action: guard.Redact, Count: 1},
		{RuleID: "inj", Action: guard.Audit, Count: 3}, {RuleID: "card", Action: guard.Redact, Failed: true}}
	g := &policy.Guard{Profile: "standard", Decision: "redact", Findings: req}
	require.Equal(t, []policy.GuardEvidence{
		{Rule: "email", Action: "redact", Count: 2}, {Rule: "inj", Action: "audit", Count: 1},
		{Rule: "aws-key", Action: "redact_response", Count: 1, Response: true}, {Rule: "email", Action: "redact_response", Count: 1, Response: true},
		{Rule: "inj", Action: "audit_response", Count: 3, Response: true}, {Rule: "card", Action: "scan_failed_response", Response: true},
	}, g.Evidence(resp))

	blocked := &policy.Guard{Profile: "standard", Decision: "block", Findings: []guard.Finding{{RuleID: "aws-key", Action: guard.Block, Count: 1}}}
	require.Equal(t, []policy.GuardEvidence{{Rule: "aws-key", Action: "block", Count: 1}}, blocked.Evidence(nil))

	dry := &policy.Guard{Profile: "shadow", Decision: "allow", DryRun: true, Findings: []guard.Finding{{RuleID: "aws-key", Action: guard.Block, Count: 1}}}
	require.Equal(t, []policy.GuardEvidence{{Rule: "aws-key", Action: "would_block", Count: 1},
		{Rule: "aws-key", Action: "would_redact_response", Count: 1, Response: true}}, dry.Evidence(resp[:1]))

	var none *policy.Guard
	require.Nil(t, none.Evidence(resp))
}
