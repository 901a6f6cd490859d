package llm

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// editOp is one rewrite, applied to an edit list or, for comparison, to the
// body with the single-rewrite helpers (see chainOps).
type editOp struct {
	kind  byte // 'm' SetModel, 'u' IncludeUsage, 's' SetMaxTokens, 'c' CapMaxTokens
	model string
	field string
	n     int64
}

// applyOps applies ops to an edit list over body and returns the result of
// Apply, nil when an op fails as the gateway would treat it (a refused
// model or cap, a refused stream_options).
func applyOps(t *testing.T, r Request, body []byte, ops []editOp) ([]byte, error) {
	var e Edits
	require.NoError(t, e.Reset(&r, body))
	for _, op := range ops {
		switch op.kind {
		case 'm':
			if !e.SetModel(op.model) {
				return nil, errOpRefused
			}
		case 'u':
			if err := e.IncludeUsage(); err != nil {
				return nil, err
			}
		case 's':
			if !e.SetMaxTokens(op.field, op.n) {
				return nil, errOpRefused
			}
		case 'c':
			if _, ok := e.CapMaxTokens(op.n, op.field); !ok {
				return nil, errOpRefused
			}
		}
	}
	return e.Apply(), nil
}

func TestEdits(t *testing.T) {
	const iu = `"include_usage":true`
	model := func(m string) editOp { return editOp{kind: 'm', model: m} }
	usage := editOp{kind: 'u'}
	set := func(f string, n int64) editOp { return editOp{kind: 's', field: f, n: n} }
	capTo := func(n int64, f string) editOp { return editOp{kind: 'c', field: f, n: n} }
	tests := []struct {
		name string
		body string
		ops  []editOp
		want string // "" means: body itself is returned
	}{
		{name: "none", body: `{"model":"m"}`},
		{name: "same model", body: `{"model":"m"}`, ops: []editOp{model("m")}},
		{name: "unchanged cap", body: `{"model":"m","max_tokens":64}`, ops: []editOp{set(FieldMaxTokens, 64)}},
		{name: "cap below every field", body: `{"model":"m","max_tokens":64}`, ops: []editOp{capTo(100, FieldMaxCompletionTokens)}},
		{name: "include already true", body: `{"model":"m","stream_options":{"include_usage":true}}`, ops: []editOp{usage}},
		{
			name: "every rewrite at once",
			body: `{"model":"fast","stream":true,"max_tokens":500,"messages":[],"max_completion_tokens":300,"max_output_tokens":50}`,
			ops:  []editOp{model("gpt-4o-mini"), usage, capTo(100, FieldMaxCompletionTokens)},
			want: `{"model":"gpt-4o-mini","stream":true,"max_tokens":100,"messages":[],"max_completion_tokens":100,"max_output_tokens":50,"stream_options":{` + iu + `}}`,
		},
		{
			name: "appends keep their order: usage first",
			body: `{"model":"a","stream":true}`,
			ops:  []editOp{model("longer-model"), usage, capTo(7, FieldMaxCompletionTokens)},
			want: `{"model":"longer-model","stream":true,"stream_options":{` + iu + `},"max_completion_tokens":7}`,
		},
		{
			name: "appends keep their order: cap first",
			body: `{"stream":true,"model":"a"}`,
			ops:  []editOp{set(FieldMaxOutputTokens, 9), usage, model("b")},
			want: `{"stream":true,"model":"b","max_output_tokens":9,"stream_options":{` + iu + `}}`,
		},
		{
			name: "null options at the end, then an appended cap",
			body: `{"model":"m","stream_options":null}`,
			ops:  []editOp{usage, set(FieldMaxTokens, 3)},
			want: `{"model":"m","stream_options":{` + iu + `},"max_tokens":3}`,
		},
		{
			name: "edits inside options and beside them",
			body: `{"stream_options":{"include_obfuscation":false},"max_tokens":null,"model":"m"}`,
			ops:  []editOp{set(FieldMaxTokens, 10), usage, model("x\"y")},
			want: `{"stream_options":{"include_obfuscation":false,` + iu + `},"max_tokens":10,"model":"x\"y"}`,
		},
		{
			name: "a later cap overrides an earlier one",
			body: `{"model":"m"}`,
			ops:  []editOp{set(FieldMaxTokens, 1), set(FieldMaxTokens, 2)},
			want: `{"model":"m","max_tokens":2}`,
		},
		{
			name: "a cap writes the field in when none holds a number",
			body: `{"model":"m","max_tokens":null}`,
			ops:  []editOp{capTo(5, FieldMaxCompletionTokens)},
			want: `{"model":"m","max_tokens":null,"max_completion_tokens":5}`,
		},
		{
			name: "a cap sees earlier edits",
			body: `{"model":"m"}`,
			ops:  []editOp{set(FieldMaxTokens, 50), capTo(5, FieldMaxCompletionTokens)},
			want: `{"model":"m","max_tokens":5}`,
		},
		{
			name: "pretty body",
			body: "{\n  \"model\": \"m\",\n  \"stream\": true\n}\n",
			ops:  []editOp{usage, model("n"), capTo(4, FieldMaxTokens)},
			want: "{\n  \"model\": \"n\",\n  \"stream\": true,\"stream_options\":{" + iu + "},\"max_tokens\":4\n}\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			r, err := ParseRequest(body)
			require.NoError(t, err)
			out, err := applyOps(t, r, body, tc.ops)
			require.NoError(t, err)
			require.Equal(t, tc.body, string(body), "input untouched")
			if tc.want == "" {
				require.Same(t, &body[0], &out[0])
				require.Len(t, out, len(body))
				return
			}
			require.Equal(t, tc.want, string(out))
			require.True(t, json.Valid(out))
			chained, err := chainOps(r, body, tc.ops)
			require.NoError(t, err)
			require.Equal(t, string(chained), string(out), "one edit list writes what one rewrite at a time wrote")
		})
	}
}

func TestCapMaxTokens(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		n     int64
		field string
		want  int64
	}{
		{"no cap, field written", `{"model":"m"}`, 10, FieldMaxTokens, 10},
		{"no cap, no field", `{"model":"m"}`, 10, "", 0},
		{"largest clamped", `{"model":"m","max_tokens":50,"max_output_tokens":20}`, 30, FieldMaxTokens, 30},
		{"all below", `{"model":"m","max_tokens":5,"max_output_tokens":20}`, 30, FieldMaxTokens, 20},
		{"zero cap field", `{"model":"m","max_tokens":0}`, 30, FieldMaxCompletionTokens, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			r, err := ParseRequest(body)
			require.NoError(t, err)
			var e Edits
			require.NoError(t, e.Reset(&r, body))
			got, ok := e.CapMaxTokens(tc.n, tc.field)
			require.True(t, ok)
			require.Equal(t, tc.want, got)
			r2, err := ParseRequest(e.Apply())
			require.NoError(t, err)
			require.Equal(t, tc.want, r2.MaxTokens, "the cap reported is the body's")
		})
	}
}

func TestEditsRefused(t *testing.T) {
	body := []byte(`{"model":"m","stream_options":"x","max_tokens":9}`)
	r, err := ParseRequest(body)
	require.NoError(t, err)

	var e Edits
	require.ErrorIs(t, e.Reset(&r, body[:10]), ErrBodyMismatch)
	require.ErrorIs(t, e.Reset(&Request{}, body), ErrBodyMismatch)
	require.False(t, e.SetModel("x"), "an edit list that was not reset")
	require.False(t, e.SetMaxTokens(FieldMaxTokens, 1))
	require.ErrorIs(t, e.IncludeUsage(), ErrBodyMismatch)
	require.Nil(t, e.Apply())

	require.NoError(t, e.Reset(&r, body))
	require.False(t, e.SetModel(""), "empty model")
	require.True(t, e.SetModel("other"))
	require.False(t, e.SetModel("third"), "second model")
	require.False(t, e.SetMaxTokens("temperature", 1), "unknown field")
	require.False(t, e.SetMaxTokens(FieldMaxTokens, -1), "negative")
	_, ok := e.CapMaxTokens(0, FieldMaxTokens)
	require.False(t, ok, "zero cap")
	_, ok = e.CapMaxTokens(5, "temperature")
	require.False(t, ok, "unknown field")
	require.ErrorIs(t, e.IncludeUsage(), ErrInvalidField)
	require.Equal(t, `{"model":"other","stream_options":"x","max_tokens":9}`, string(e.Apply()), "refused edits change nothing")
}

// TestEditsOneAllocation: the whole rewrite of a body costs one allocation,
// the new body, however many edits it holds.
func TestEditsOneAllocation(t *testing.T) {
	body := []byte(`{"model":"fast","stream":true,"max_tokens":500,"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":300}`)
	r, err := ParseRequest(body)
	require.NoError(t, err)
	var out []byte
	allocs := testing.AllocsPerRun(50, func() {
		var e Edits
		if e.Reset(&r, body) != nil || !e.SetModel("gpt-4o-mini") || e.IncludeUsage() != nil {
			t.Fatal("edit refused")
		}
		if _, ok := e.CapMaxTokens(100, FieldMaxCompletionTokens); !ok || !e.SetMaxTokens(FieldMaxOutputTokens, 5) {
			t.Fatal("cap refused")
		}
		out = e.Apply()
	})
	require.Equal(t, 1.0, allocs)
	require.True(t, bytes.HasPrefix(out, []byte(`{"model":"gpt-4o-mini","stream":true,"max_tokens":100,`)))
}

// TestEditsAfterApply: Apply leaves the list as it was, so edits made after it, and a second
// Apply, see every earlier edit.
func TestEditsAfterApply(t *testing.T) {
	body := []byte(`{"model":"m","max_output_tokens":40,"max_tokens":70}`)
	r, err := ParseRequest(body)
	require.NoError(t, err)
	var e Edits
	require.NoError(t, e.Reset(&r, body))
	require.True(t, e.SetMaxTokens(FieldMaxTokens, 1))
	require.True(t, e.SetMaxTokens(FieldMaxOutputTokens, 2))
	require.Equal(t, `{"model":"m","max_output_tokens":2,"max_tokens":1}`, string(e.Apply()))
	require.True(t, e.SetMaxTokens(FieldMaxTokens, 3))
	require.Equal(t, `{"model":"m","max_output_tokens":2,"max_tokens":3}`, string(e.Apply()))
}
