package policy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// A Tollgate key anywhere in a request body is refused with 400 before any
// guardrail runs, with and without a guardrail profile, and the error never
// echoes it.
func TestRouteRefusesVirtualKeyInBody(t *testing.T) {
	for _, fx := range map[string]*policytest.Fixture{
		"no guardrails": policytest.New(t),
		"guarded":       policytest.NewWith(t, policytest.Guarded),
	} {
		other := fx.Keys["limited"]
		escaped := `\u0074gk_` + other[4:]
		bodies := map[string]string{
			"user":          `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"user":"` + other + `"}`,
			"metadata":      `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{"k":"` + other + `"}}`,
			"own key":       `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"my key is ` + fx.Keys["valid"] + `"}]}`,
			"escaped":       `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + escaped + `"}]}`,
			"zero-width":    `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + other[:6] + "\u200b" + other[6:] + `"}]}`,
			"messages path": `{"model":"claude-haiku","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"` + other + `"}}`,
		}
		for name, body := range bodies {
			path := "/v1/chat/completions"
			if strings.Contains(body, "claude") {
				path = "/v1/messages"
			}
			a := admit(t, fx, "valid", path)
			f, rep := fx.Snapshot.Route(a, []byte(body))
			require.Nil(t, f, name)
			require.NotNil(t, rep, name)
			require.Equal(t, 400, rep.Status, name)
			require.Equal(t, policy.ReasonVirtualKeyInBody, rep.Reason, name)
			require.True(t, json.Valid(rep.Body))
			require.NotContains(t, string(rep.Body), other[17:], "the error never echoes the key")
			require.NotContains(t, string(rep.Body), fx.Keys["valid"][17:])
			require.NotContains(t, fmt.Sprintf("%+v", rep), other[17:])
		}
		a := admit(t, fx, "valid", "/v1/chat/completions")
		f, rep := fx.Snapshot.Route(a, []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"keys start with tgk_"}],"user":"u1"}`))
		require.Nil(t, rep)
		require.NotNil(t, f)
	}
}
