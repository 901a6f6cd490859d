package policy

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

// rewriteCase is what rewrite is called with, built from plain values.
type rewriteCase struct {
	endpoint llm.Endpoint
	typ      string
	upstream string
	maxOut   int64 // the model's reserved output
	inject   bool  // budget.inject_max_tokens
	capOut   int64
}

func (c rewriteCase) run(body []byte, rw func(*Snapshot, *Admission, llm.Endpoint, *provider, *model, llm.Request, []byte, int64) ([]byte, int64, *Reply)) ([]byte, int64, *Reply, error) {
	req, err := llm.ParseRequest(body)
	if err != nil {
		return nil, 0, nil, err
	}
	// A team with a USD limit: the reserved cap is written in when inject is on.
	s := &Snapshot{budget: &budgetPolicy{inject: c.inject, anyLimits: true, teamLimits: map[string]budget.Limits{"t": {USDPerDay: 1}}}}
	a := &Admission{Endpoint: c.endpoint, Dialect: c.endpoint.Dialect(), Key: &keys.Record{Team: "t"}}
	out, maxOut, rep := rw(s, a, c.endpoint, &provider{typ: c.typ}, &model{upstream: c.upstream, maxOut: c.maxOut}, req, body, c.capOut)
	return out, maxOut, rep, nil
}

// TestRewriteOneAllocation: every rewrite of a body (model alias, include_usage, two caps
// clamped) costs one allocation, the new body: the body is not parsed again and no
// intermediate body is built.
func TestRewriteOneAllocation(t *testing.T) {
	body := []byte(`{"model":"fast","stream":true,"max_tokens":500,"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":300}`)
	req, err := llm.ParseRequest(body)
	require.NoError(t, err)
	s := &Snapshot{}
	a := &Admission{Endpoint: llm.ChatCompletions, Dialect: llm.OpenAI}
	p, m := &provider{typ: ProviderOpenAI}, &model{upstream: "gpt-4o-mini"}
	var out []byte
	allocs := testing.AllocsPerRun(50, func() {
		var rep *Reply
		if out, _, rep = s.rewrite(a, llm.ChatCompletions, p, m, req, body, 100); rep != nil {
			t.Fatal(rep.Reason)
		}
	})
	require.Equal(t, `{"model":"gpt-4o-mini","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":100,"stream_options":{"include_usage":true}}`, string(out))
	require.Equal(t, 1.0, allocs)
}

// FuzzRewrite: the edit list writes, for every body, endpoint, provider and cap, exactly the
// bytes the rewrites applied one at a time (re-parsing in between) wrote, with the same
// reserved output and the same refusals; the result is valid JSON.
func FuzzRewrite(f *testing.F) {
	for i, b := range []string{
		`{"model":"fast","stream":true,"max_tokens":500,"messages":[],"max_completion_tokens":300}`,
		`{"model":"m","stream":true,"stream_options":null}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1},"max_output_tokens":null}`,
		`{"model":"m","stream":true,"stream_options":"x"}`,
		`{ "max_tok\u0065ns" : 9 , "model" : "a\"b" }`,
		`{"model":"m","input":"x"}`,
		"{\n  \"model\": \"m\",\n  \"stream\": true\n}\n",
	} {
		f.Add([]byte(b), uint8(i), uint8(i), "gpt-4o-mini", int64(i*50), int64(4096), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, body []byte, ep, typ uint8, upstream string, capOut, maxOut int64, inject bool) {
		types := [...]string{ProviderOpenAI, ProviderAnthropic, ProviderAzureOpenAI, ProviderOpenAICompatible}
		// rewrite runs only for forwarded endpoints (Admit answers the local ones).
		var fwd []llm.Endpoint
		for _, e := range llm.Endpoints() {
			if !e.Spec().Local {
				fwd = append(fwd, e)
			}
		}
		c := rewriteCase{endpoint: fwd[int(ep)%len(fwd)], typ: types[typ%4], upstream: upstream, maxOut: maxOut, inject: inject, capOut: capOut}
		got, gotMax, gotRep, err := c.run(body, (*Snapshot).rewrite)
		if err != nil {
			return
		}
		want, wantMax, wantRep, _ := c.run(body, chainedRewrite)
		if wantRep != nil || gotRep != nil {
			require.NotNil(t, wantRep)
			require.NotNil(t, gotRep)
			require.Equal(t, wantRep.Status, gotRep.Status)
			require.Equal(t, wantRep.Reason, gotRep.Reason)
			return
		}
		require.Equal(t, string(want), string(got))
		require.Equal(t, &want[0] == &body[0], &got[0] == &body[0], "the body itself exactly when nothing changed")
		require.Equal(t, wantMax, gotMax)
		require.True(t, json.Valid(got))
	})
}

// chainedRewrite is rewrite as it was before edit lists: one rewrite at a time, parsing the
// body again after each. FuzzRewrite holds the edit list to its output.
func chainedRewrite(s *Snapshot, a *Admission, ep llm.Endpoint, p *provider, m *model, req llm.Request, body []byte, capOut int64) ([]byte, int64, *Reply) {
	internal := func() *Reply { return a.deny(http.StatusInternalServerError, ReasonInternal, "internal error") }
	out := req.WithModel(body, m.upstream)
	if out == nil {
		return nil, 0, internal()
	}
	reparse := func() bool {
		var err error
		req, err = llm.ParseRequest(out)
		return err == nil
	}
	if len(out) != len(body) && !reparse() {
		return nil, 0, internal()
	}
	if injectsUsage(ep, p.typ, req) {
		var err error
		if out, err = req.WithIncludeUsage(out); errors.Is(err, llm.ErrInvalidField) {
			return nil, 0, a.deny(http.StatusBadRequest, ReasonInvalidRequest, "stream_options must be an object")
		} else if err != nil {
			return nil, 0, internal()
		}
		if !reparse() {
			return nil, 0, internal()
		}
	}
	if ep == llm.Embeddings {
		return out, 0, nil
	}
	field := maxTokensField(ep, p.typ)
	for i := 0; capOut > 0 && i < 3 && (req.MaxTokens > capOut || req.MaxTokensField == "" && field != ""); i++ {
		f := req.MaxTokensField
		if f == "" {
			f = field
		}
		if out = req.WithMaxTokens(out, f, capOut); out == nil || !reparse() {
			return nil, 0, internal()
		}
	}
	maxOut := req.MaxTokens
	if req.MaxTokensField == "" {
		maxOut = m.maxOut
		if s.budget.injects(a.Key) && field != "" {
			if out = req.WithMaxTokens(out, field, maxOut); out == nil {
				return nil, 0, internal()
			}
		}
	}
	return out, maxOut, nil
}
