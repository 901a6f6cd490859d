package policy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// requestPolicyFixture sets a team policy on platform and a tighter key policy on "limited".
func requestPolicyFixture(t *testing.T) *policytest.Fixture {
	t.Helper()
	fx := policytest.New(t)
	cfg := fx.Config
	cfg.Teams[0].RequestPolicy = policy.RequestPolicyConfig{MaxOutputTokens: 1000, OverCap: "refuse", MaxMessages: 3, MaxRequestBytes: 200}
	for i := range cfg.Keys {
		if cfg.Keys[i].Name == "limited" {
			cfg.Keys[i].RequestPolicy = policy.RequestPolicyConfig{MaxOutputTokens: 100, Streaming: "deny"}
		}
	}
	s, err := policy.Compile(cfg, "", policytest.Resolver(), fx.Now)
	require.NoError(t, err)
	fx.Snapshot = s
	return fx
}

func TestRequestPolicy(t *testing.T) {
	fx := requestPolicyFixture(t)
	tests := []struct {
		name, key, body string
		status          int
		reason          policy.Reason
		wantBody        string // the forwarded body, when admitted and rewritten
	}{
		{"within caps", "valid", `{"model":"gpt-4o-mini","max_tokens":500,"messages":[]}`, 0, "", ""},
		{"team cap refuses", "valid", `{"model":"gpt-4o-mini","max_tokens":5000,"messages":[]}`, 400, policy.ReasonMaxTokensExceeded, ""},
		{"key cap clamps", "limited", `{"model":"fast","max_tokens":500,"messages":[]}`, 0, "",
			`{"model":"gpt-4o-mini","max_tokens":100,"messages":[]}`},
		{"both caps exceeded: team refuses", "limited", `{"model":"fast","max_tokens":5000,"messages":[]}`, 400, policy.ReasonMaxTokensExceeded, ""},
		{"cap written in when absent", "limited", `{"model":"fast","messages":[]}`, 0, "",
			`{"model":"gpt-4o-mini","messages":[],"max_completion_tokens":100}`},
		{"streaming denied for the key", "limited", `{"model":"fast","stream":true,"messages":[]}`, 403, policy.ReasonStreamingNotAllowed, ""},
		{"too many messages", "valid", `{"model":"gpt-4o-mini","messages":[{},{},{},{}]}`, 400, policy.ReasonTooManyMessages, ""},
		{"body over the team's size", "valid", `{"model":"gpt-4o-mini","messages":[],"pad":"` + strings.Repeat("a", 200) + `"}`, 413, policy.ReasonBodyTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := admit(t, fx, tc.key, "/v1/chat/completions")
			f, rep := fx.Snapshot.Route(a, []byte(tc.body))
			if tc.status != 0 {
				require.NotNil(t, rep)
				require.Equal(t, tc.status, rep.Status)
				require.Equal(t, tc.reason, rep.Reason)
				return
			}
			require.Nil(t, rep)
			if tc.wantBody != "" {
				require.Equal(t, tc.wantBody, string(f.Body))
			}
		})
	}
}
