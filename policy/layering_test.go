package policy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// goList returns the packages matching pattern with their (non-test) imports and Go files.
func goList(t *testing.T, pattern string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", pattern)
	cmd.Dir = filepath.Join("..")
	out, err := cmd.Output()
	require.NoError(t, err, "go list %s", pattern)
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []listedPackage
	for dec.More() {
		var p listedPackage
		require.NoError(t, dec.Decode(&p))
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

type listedPackage struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
}

// TestLayering enforces the architecture: policy makes every decision and knows nothing of
// Envoy, gRPC or a global logger; extproc speaks the protocol and reaches policy only through
// its top-level API (Snapshot, Exchange), never the packages behind it.
func TestLayering(t *testing.T) {
	for _, p := range goList(t, "./policy/...") {
		for _, imp := range p.Imports {
			require.False(t, strings.HasPrefix(imp, "google.golang.org/grpc"), "%s imports %s", p.ImportPath, imp)
			require.False(t, strings.HasPrefix(imp, "github.com/envoyproxy/"), "%s imports %s", p.ImportPath, imp)
			require.False(t, strings.HasPrefix(imp, "github.com/tollgate-ai/tollgate/extproc"), "%s imports %s", p.ImportPath, imp)
			require.False(t, strings.HasPrefix(imp, "github.com/tollgate-ai/tollgate/cmd"), "%s imports %s", p.ImportPath, imp)
		}
		for _, f := range p.GoFiles {
			src := readSource(t, filepath.Join(p.Dir, f))
			for _, global := range []string{"zap.L()", "zap.S()", "zap.ReplaceGlobals"} {
				require.NotContains(t, src, global, "%s/%s uses zap's global logger", p.ImportPath, f)
			}
		}
	}
	for _, p := range goList(t, "./extproc/...") {
		for _, imp := range p.Imports {
			for _, inner := range []string{"policy/guard", "policy/llm", "policy/budget", "policy/keys", "policy/secrets", "policy/translate"} {
				require.False(t, strings.HasPrefix(imp, "github.com/tollgate-ai/tollgate/"+inner),
					"%s imports %s: extproc reaches policy only through its top-level API", p.ImportPath, imp)
			}
		}
	}
}

func readSource(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
