package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fixtureSeeds returns the recorded streams and bodies in testdata/usage.
func fixtureSeeds(f *testing.F) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "usage", "*"))
	require.NoError(f, err)
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(f, err)
		out = append(out, b)
	}
	return out
}

func FuzzSSEParser(f *testing.F) {
	for _, b := range fixtureSeeds(f) {
		f.Add(b, uint64(1))
	}
	f.Add([]byte("\uFEFFevent: a\r\ndata: 1\r\rdata\n:c\ndata:  2\r\n\r\nid: x\ndata: end"), uint64(2))
	f.Add([]byte("\r\n\r\r\n\n\rdata:\r"), uint64(3))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		want := refSSE(stream)
		whole, p := feedSSE(stream)
		require.Equal(t, want, whole)
		require.Zero(t, p.Dropped())
		r := rand.New(rand.NewPCG(seed, seed>>7))
		split, _ := feedSSE(randomChunks(r, stream, 1+int(seed%64))...)
		require.Equal(t, want, split, "split")
	})
}

func FuzzUsageParser(f *testing.F) {
	for _, b := range fixtureSeeds(f) {
		for _, e := range []Endpoint{ChatCompletions, Responses, Messages} {
			f.Add(b, uint8(e), true, uint64(5))
			f.Add(b, uint8(e), false, uint64(6))
		}
	}
	f.Add([]byte("data: {\"usage\":{\"prompt_tokens\":-1}}\n\ndata: {\"usage\":{\"prompt_tokens\":1e999}}\n\n"), uint8(ChatCompletions), true, uint64(0))
	f.Fuzz(func(t *testing.T, body []byte, endpoint uint8, streaming bool, seed uint64) {
		e := Endpoint(endpoint % 8)
		u := runUsage(e, streaming, body)
		got, seen := u.Usage()
		for _, n := range []int64{got.InputTokens, got.OutputTokens, got.CachedInputTokens, got.CacheWriteTokens} {
			require.True(t, validCount(n), "count %d", n)
		}
		if !seen {
			require.Equal(t, Usage{}, got)
		}
		require.LessOrEqual(t, len(u.Model()), maxModelLen)

		// Chunk boundaries never change the result.
		r := rand.New(rand.NewPCG(seed, 3))
		u2 := runUsage(e, streaming, randomChunks(r, body, 1+int(seed%97))...)
		got2, seen2 := u2.Usage()
		require.Equal(t, seen, seen2)
		require.Equal(t, got, got2)
		require.Equal(t, u.Model(), u2.Model())
	})
}

// rewriteSeeds are request bodies for the rewrite fuzzers.
var rewriteSeeds = []string{
	`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","stream_options":null}`,
	`{"model":"m","stream_options":{}}`,
	`{ "model" : "m" , "stream_options" : { "include_obfuscation" : false } }`,
	`{"model":"m","stream_options":{"include_usage":false,"x":[{}]}}`,
	`{"model":"m","stream_options":{"include_\u0075sage":null}}`,
	`{"model":"m","stream_options":{"include_usage":true}}`,
	`{"model":"m","stream_options":"x"}`,
	`{"model":"m","max_tokens":10,"max_completion_tokens":null,"max_output_tokens":7}`,
	`{"max_tok\u0065ns":1,"model":"m"}`,
	"{\n  \"model\": \"m\"\n}\n",
}

// topMembers decodes a valid JSON object into its raw top-level members.
func topMembers(t *testing.T, b []byte) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// requireSameExcept asserts that a and b have the same members with
// byte-identical values, apart from key.
func requireSameExcept(t *testing.T, a, b map[string]json.RawMessage, key string) {
	delete(a, key)
	delete(b, key)
	require.Equal(t, a, b)
}

func FuzzWithIncludeUsage(f *testing.F) {
	for _, b := range append(rewriteSeeds, fuzzBodies...) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body)
		if err != nil {
			return
		}
		// The gateway's rewrites at once, as one edit list.
		requireEditsMatchChain(t, r, body, []editOp{{kind: 'm', model: "upstream-model"}, {kind: 'u'},
			{kind: 'c', n: 100, field: FieldMaxCompletionTokens}})
		requireEditsMatchChain(t, r, body, []editOp{{kind: 'u'}})
		in := bytes.Clone(body)
		out, err := r.WithIncludeUsage(body)
		require.Equal(t, in, body, "input untouched")
		before := topMembers(t, body)
		opts, hasOpts := before["stream_options"]
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidField)
			require.Nil(t, out)
			require.True(t, hasOpts)
			require.NotContains(t, []byte{'{', 'n'}, opts[0], "an object or null is never refused")
			return
		}
		if r.IncludeUsage {
			require.Same(t, &body[0], &out[0])
			return
		}
		require.True(t, json.Valid(out))
		r2, err := ParseRequest(out)
		require.NoError(t, err)
		require.True(t, r2.IncludeUsage)
		require.Equal(t, r.Model, r2.Model)
		require.Equal(t, r.Stream, r2.Stream)
		require.Equal(t, r.MaxTokens, r2.MaxTokens)
		require.Equal(t, r.MaxTokensField, r2.MaxTokensField)

		after := topMembers(t, out)
		newOpts := after["stream_options"]
		requireSameExcept(t, before, after, "stream_options")
		if hasOpts && opts[0] == '{' {
			optsBefore, optsAfter := topMembers(t, opts), topMembers(t, newOpts)
			require.Equal(t, json.RawMessage("true"), optsAfter["include_usage"])
			requireSameExcept(t, optsBefore, optsAfter, "include_usage")
		} else {
			require.JSONEq(t, `{"include_usage":true}`, string(newOpts))
		}
	})
}

// maxFieldsJSON returns the largest max token field of a valid body as
// encoding/json reads it, and whether any is a number.
func maxFieldsJSON(t *testing.T, m map[string]json.RawMessage) (int64, bool) {
	best, found := int64(0), false
	for _, f := range maxFields {
		raw, ok := m[f]
		if !ok || string(raw) == "null" {
			continue
		}
		var n int64
		require.NoError(t, json.Unmarshal(raw, &n), "field %s = %s", f, raw)
		if !found || n > best {
			best, found = n, true
		}
	}
	return best, found
}

func FuzzWithMaxTokens(f *testing.F) {
	for i, b := range append(rewriteSeeds, fuzzBodies...) {
		f.Add([]byte(b), uint8(i), int64(i*100), []byte{byte(i), byte(i * 7), byte(i * 13)}, "gpt-4o")
	}
	f.Add([]byte(`{"model":"m"}`), uint8(1), int64(-1), []byte{}, "")
	f.Add([]byte(`{"model":"m","stream":true,"max_tokens":500,"max_output_tokens":null}`), uint8(2), int64(100), []byte{0, 1, 3, 2, 7, 11}, "upstream")
	f.Fuzz(func(t *testing.T, body []byte, field uint8, n int64, ops []byte, model string) {
		r, err := ParseRequest(body)
		if err != nil {
			return
		}
		requireEditsMatchChain(t, r, body, decodeOps(ops, model, n))
		before := topMembers(t, body)
		want, found := maxFieldsJSON(t, before)
		require.Equal(t, want, r.MaxTokens)
		require.Equal(t, found, r.MaxTokensField != "")

		name := maxFields[int(field)%len(maxFields)]
		out := r.WithMaxTokens(body, name, n)
		if n < 0 {
			require.Nil(t, out)
			return
		}
		require.True(t, json.Valid(out))
		r2, err := ParseRequest(out)
		require.NoError(t, err)
		require.Equal(t, r.Model, r2.Model)
		require.Equal(t, r.Stream, r2.Stream)
		require.Equal(t, r.IncludeUsage, r2.IncludeUsage)
		after := topMembers(t, out)
		var got int64
		require.NoError(t, json.Unmarshal(after[name], &got))
		require.Equal(t, n, got)
		want2, _ := maxFieldsJSON(t, after)
		require.Equal(t, want2, r2.MaxTokens)
		requireSameExcept(t, before, after, name)
	})
}

// errOpRefused stands for a rewrite the single-rewrite helpers refuse (they
// return nil).
var errOpRefused = errors.New("rewrite refused")

// chainOps applies ops the way the gateway did before edit lists: one
// rewrite at a time with the single-rewrite helpers, parsing the result again
// before the next. A cap ('c') is the gateway's loop: set the largest cap
// field to n until none is above it, or write field in when none holds a
// number.
func chainOps(r Request, body []byte, ops []editOp) ([]byte, error) {
	out := body
	for _, op := range ops {
		switch op.kind {
		case 'm':
			if out = r.WithModel(out, op.model); out == nil {
				return nil, errOpRefused
			}
		case 'u':
			var err error
			if out, err = r.WithIncludeUsage(out); err != nil {
				return nil, err
			}
		case 's':
			if out = r.WithMaxTokens(out, op.field, op.n); out == nil {
				return nil, errOpRefused
			}
		case 'c':
			if op.n <= 0 || op.field != "" && maxFieldIndex(op.field) < 0 {
				return nil, errOpRefused
			}
			for i := 0; i < 3 && (r.MaxTokens > op.n || r.MaxTokensField == "" && op.field != ""); i++ {
				f := r.MaxTokensField
				if f == "" {
					f = op.field
				}
				if out = r.WithMaxTokens(out, f, op.n); out == nil {
					return nil, errOpRefused
				}
				var err error
				if r, err = ParseRequest(out); err != nil {
					return nil, err
				}
			}
		}
		var err error
		if r, err = ParseRequest(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeOps turns fuzz bytes into a sequence of rewrites: at most one model
// (the gateway rewrites it once), the others in any number and order.
func decodeOps(b []byte, model string, n int64) []editOp {
	var ops []editOp
	haveModel := false
	for _, c := range b {
		field := maxFields[int(c>>2)%len(maxFields)]
		v := [...]int64{n, int64(c >> 4), n / 3, -int64(c >> 7)}[(c>>4)%4]
		switch c % 4 {
		case 0:
			if !haveModel {
				ops = append(ops, editOp{kind: 'm', model: model})
				haveModel = true
			}
		case 1:
			ops = append(ops, editOp{kind: 'u'})
		case 2:
			ops = append(ops, editOp{kind: 's', field: field, n: v})
		case 3:
			if c&0x40 != 0 {
				field = ""
			}
			ops = append(ops, editOp{kind: 'c', field: field, n: v})
		}
	}
	return ops
}

// requireEditsMatchChain checks that one edit list writes exactly the bytes
// the rewrites applied one at a time wrote, refuses what they refused,
// returns the body itself exactly when they did, and writes valid JSON that
// ParseRequest accepts.
func requireEditsMatchChain(t *testing.T, r Request, body []byte, ops []editOp) {
	in := bytes.Clone(body)
	want, wantErr := chainOps(r, body, ops)
	got, gotErr := applyOps(t, r, body, ops)
	require.Equal(t, in, body, "input untouched")
	if wantErr != nil || gotErr != nil {
		require.Error(t, wantErr, "ops %+v", ops)
		require.Error(t, gotErr, "ops %+v", ops)
		if errors.Is(wantErr, ErrInvalidField) {
			require.ErrorIs(t, gotErr, ErrInvalidField)
		}
		return
	}
	require.Equal(t, string(want), string(got), "ops %+v", ops)
	require.Equal(t, &want[0] == &body[0], &got[0] == &body[0], "the body itself exactly when nothing changed")
	require.True(t, json.Valid(got))
	_, err := ParseRequest(got)
	require.NoError(t, err)
}
