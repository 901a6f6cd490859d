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
		// n and best_of: the output cap bounds all choices together (issue 8 item 2).
		{"key cap shared by n choices", "limited", `{"model":"fast","max_tokens":50,"n":4,"messages":[]}`, 0, "",
			`{"model":"gpt-4o-mini","max_tokens":25,"n":4,"messages":[]}`},
		{"team cap refuses n times max_tokens", "valid", `{"model":"gpt-4o-mini","max_tokens":300,"n":4,"messages":[]}`, 400, policy.ReasonMaxTokensExceeded, ""},
		{"per-choice cap written in", "valid", `{"model":"gpt-4o-mini","n":4,"messages":[]}`, 0, "",
			`{"model":"gpt-4o-mini","n":4,"messages":[],"max_completion_tokens":250}`},
		{"more choices than tokens allowed", "limited", `{"model":"fast","n":128,"messages":[]}`, 400, policy.ReasonMaxTokensExceeded, ""},
		{"n of the wrong type", "valid", `{"model":"gpt-4o-mini","n":2.0,"messages":[]}`, 400, policy.ReasonInvalidRequest, ""},
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

func TestRequestPolicyMaxChoices(t *testing.T) {
	fx := policytest.NewWith(t, func(c *policy.Config) {
		c.Teams[0].RequestPolicy = policy.RequestPolicyConfig{MaxChoices: 1}
	})
	a := admit(t, fx, "valid", "/v1/completions")
	_, rep := fx.Snapshot.Route(a, []byte(`{"model":"gpt-4o-mini","prompt":"hi","n":1}`))
	require.Nil(t, rep)
	for _, body := range []string{`{"model":"gpt-4o-mini","prompt":"hi","n":2}`, `{"model":"gpt-4o-mini","prompt":"hi","best_of":3}`} {
		_, rep = fx.Snapshot.Route(a, []byte(body))
		require.NotNil(t, rep, body)
		require.Equal(t, 400, rep.Status)
		require.Equal(t, policy.ReasonTooManyChoices, rep.Reason)
		require.Contains(t, string(rep.Body), `"param":"n"`)
	}
}
