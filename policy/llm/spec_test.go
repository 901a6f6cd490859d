package llm

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestEndpointsGolden pins every built-in descriptor, part by part: a change to what an
// endpoint is (its path, usage, guard shape, caps, providers, Azure path) shows in review as a
// change to testdata/endpoints.golden. Run with -update after adding an endpoint.
func TestEndpointsGolden(t *testing.T) {
	var b strings.Builder
	// No test of this package registers an endpoint (TestRegisterRefusesIncompleteSpec's are
	// all refused), so Endpoints lists the built-ins, in registration order.
	for _, e := range Endpoints() {
		sp := e.Spec()
		query := make([]string, 0, len(sp.Query))
		for k, v := range sp.Query {
			query = append(query, k+"="+strings.Join(v, "|"))
		}
		slices.Sort(query)
		fmt.Fprintf(&b, "%s\n  %s %s dialect=%s operation=%q local=%t\n  usage=%s guard=%s max_tokens=%q compat_max_tokens=%q stream_usage=%t\n  query=%v providers=%v azure_operation=%q azure_path=%q\n",
			sp.Name, sp.Method, sp.Path, sp.Dialect, sp.Operation, sp.Local, sp.Usage, sp.Guard, sp.MaxTokens, sp.CompatMaxTokens, sp.StreamUsage,
			query, sp.Providers, sp.AzureOperation, sp.AzurePath)
	}
	path := filepath.Join("testdata", "endpoints.golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), b.String())
}

// TestRegisterRefusesIncompleteSpec: a descriptor that leaves out a part every endpoint must
// declare is refused, naming the part, and nothing is registered.
func TestRegisterRefusesIncompleteSpec(t *testing.T) {
	complete := func() Spec {
		return Spec{Name: "t_generate", Method: "POST", Path: "/v1/t/generate", Operation: "chat", Usage: UsageChat, Guard: ShapeChat,
			MaxTokens: FieldMaxTokens, Providers: []string{"openai-compatible"}}
	}
	require.NoError(t, complete().validate(), "the base case is complete")
	tests := []struct {
		name   string
		change func(*Spec)
		part   string
	}{
		{"no name", func(s *Spec) { s.Name = "" }, "name"},
		{"no method", func(s *Spec) { s.Method = "" }, "method"},
		{"method HEAD", func(s *Spec) { s.Method = "HEAD" }, "method"},
		{"no path", func(s *Spec) { s.Path = "" }, "path"},
		{"relative path", func(s *Spec) { s.Path = "v1/t" }, "path"},
		{"path with a query", func(s *Spec) { s.Path = "/v1/t?x=1" }, "path"},
		{"no providers", func(s *Spec) { s.Providers = nil }, "providers"},
		{"forwarded GET", func(s *Spec) { s.Method = "GET" }, "POST body"},
		{"no operation", func(s *Spec) { s.Operation = "" }, "gen_ai operation"},
		{"no guard shape", func(s *Spec) { s.Guard = ShapeNone }, "guard shape"},
		{"guard shape out of range", func(s *Spec) { s.Guard = shapeCount }, "guard shape"},
		{"no usage", func(s *Spec) { s.Usage = UsageNone }, "usage kind"},
		{"stream usage without chat usage", func(s *Spec) { s.Usage, s.StreamUsage = UsageMessages, true }, "stream usage"},
		{"unknown cap field", func(s *Spec) { s.MaxTokens = "max_new_tokens" }, "max-tokens"},
		{"compat cap without a cap", func(s *Spec) { s.MaxTokens, s.CompatMaxTokens = "", FieldMaxTokens }, "max-tokens"},
		{"two azure paths", func(s *Spec) { s.AzureOperation, s.AzurePath = "t", "/openai/v1/t" }, "azure"},
	}
	before := len(Endpoints())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := complete()
			tc.change(&s)
			e, err := Register(s)
			require.ErrorIs(t, err, ErrIncompleteSpec)
			require.Contains(t, err.Error(), tc.part)
			require.Equal(t, EndpointUnknown, e)
		})
	}
	require.Len(t, Endpoints(), before, "nothing registered")

	t.Run("a built-in path or name again", func(t *testing.T) {
		s := complete()
		s.Path = ChatCompletions.Spec().Path
		_, err := Register(s)
		require.ErrorIs(t, err, ErrIncompleteSpec)
		s = complete()
		s.Name = Messages.String()
		_, err = Register(s)
		require.ErrorIs(t, err, ErrIncompleteSpec)
		require.Len(t, Endpoints(), before)
	})
	t.Run("a local endpoint needs no body parts", func(t *testing.T) {
		require.NoError(t, Spec{Name: "t_list", Method: "GET", Path: "/v1/t", Local: true}.validate())
	})
}

// TestEveryBuiltinSpecComplete: each built-in descriptor passes the checks Register makes,
// and its parts agree with what the rest of this package reads.
func TestEveryBuiltinSpecComplete(t *testing.T) {
	for _, e := range []Endpoint{ChatCompletions, Completions, Embeddings, Responses, Models, Messages} {
		sp := e.Spec()
		t.Run(sp.Name, func(t *testing.T) {
			require.NoError(t, sp.validate())
			got, err := Classify(sp.Method, sp.Path)
			require.NoError(t, err)
			require.Equal(t, e, got)
			if sp.Local {
				return
			}
			for _, p := range sp.Providers {
				require.Contains(t, []string{"openai", "anthropic", "azure-openai", "openai-compatible"}, p)
			}
			_, err = AzurePath(e, "dep", "2024-10-21")
			require.Equal(t, e.Serves("azure-openai"), err == nil, "Azure serves exactly the endpoints with an Azure path")
			if err != nil {
				require.True(t, errors.Is(err, ErrUnsupportedEndpoint))
			}
		})
	}
}
