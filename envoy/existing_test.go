package envoy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

// existingDir holds the "existing Envoy" example: before.yaml, and after.yaml with Tollgate.
const existingDir = "../examples/existing-envoy"

// readmeBlock returns the first yaml code block under the README heading.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n"+heading+"\n")
	require.True(t, ok, "README.md has no %q", heading)
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```yaml\n")
	require.True(t, ok, "no yaml block under %q", heading)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok, "unterminated yaml block under %q", heading)
	return block
}

// fragmentHeader starts each fragment of the documented block and names the line of an
// existing bootstrap the fragment goes above, e.g.
// `# ---- (3) In http_filters, above "- name: envoy.filters.http.router" ----`.
var fragmentHeader = regexp.MustCompile(`^# -+ \(\d+\) (?:.*? )?above "([^"]+)"(?: .*)? -+$`)

type fragment struct {
	anchor string
	lines  []string
}

func splitFragments(block string) ([]fragment, error) {
	var out []fragment
	for _, l := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if m := fragmentHeader.FindStringSubmatch(l); m != nil {
			out = append(out, fragment{anchor: m[1]})
		} else if len(out) == 0 {
			return nil, fmt.Errorf("line %q comes before the first fragment header", l)
		}
		out[len(out)-1].lines = append(out[len(out)-1].lines, l)
	}
	return out, nil
}

// applyFragments inserts each fragment, header included, above the one line of cfg whose
// trimmed text is its anchor, indented like that line.
func applyFragments(cfg string, frags []fragment) (string, error) {
	lines := strings.Split(cfg, "\n")
	for _, f := range frags {
		at := -1
		for i, l := range lines {
			if strings.TrimSpace(l) == f.anchor {
				if at >= 0 {
					return "", fmt.Errorf("anchor %q occurs more than once", f.anchor)
				}
				at = i
			}
		}
		if at < 0 {
			return "", fmt.Errorf("anchor %q not found", f.anchor)
		}
		indent := lines[at][:len(lines[at])-len(strings.TrimLeft(lines[at], " "))]
		ins := make([]string, 0, len(f.lines))
		for _, l := range f.lines {
			if strings.TrimSpace(l) != "" {
				l = indent + l
			}
			ins = append(ins, l)
		}
		lines = append(lines[:at], append(ins, lines[at:]...)...)
	}
	return strings.Join(lines, "\n"), nil
}

// TestExistingEnvoyBlock: examples/existing-envoy/after.yaml is before.yaml plus exactly the
// block README.md documents, so the copy-paste instructions cannot drift from the bootstrap
// that test/e2e runs.
func TestExistingEnvoyBlock(t *testing.T) {
	frags, err := splitFragments(readmeBlock(t, "## Adding Tollgate to an existing Envoy"))
	require.NoError(t, err)
	require.Len(t, frags, 4, "HCM settings, virtual host, HTTP filters, clusters")
	before, err := os.ReadFile(filepath.Join(existingDir, "before.yaml"))
	require.NoError(t, err)
	after, err := os.ReadFile(filepath.Join(existingDir, "after.yaml"))
	require.NoError(t, err)
	got, err := applyFragments(string(before), frags)
	require.NoError(t, err)
	require.Equal(t, string(after), got, "after.yaml must be before.yaml plus the README block")
}

func TestApplyFragments(t *testing.T) {
	cfg := "a:\n  b: 1\n  c:\n  - x\n"
	tests := []struct {
		name, block, want, wantErr string
	}{
		{"indented above the anchor", "# -- (1) add above \"- x\" --\n- y\n\n- z\n", "a:\n  b: 1\n  c:\n  # -- (1) add above \"- x\" --\n  - y\n\n  - z\n  - x\n", ""},
		{"two fragments", "# -- (1) above \"b: 1\" --\nd: 2\n# -- (2) above \"- x\" --\n- w\n", "a:\n  # -- (1) above \"b: 1\" --\n  d: 2\n  b: 1\n  c:\n  # -- (2) above \"- x\" --\n  - w\n  - x\n", ""},
		{"anchor missing", "# -- (1) above \"nope\" --\nd: 2\n", "", `anchor "nope" not found`},
		{"anchor twice", "# -- (1) above \"- x\" --\n- x\n# -- (2) above \"- x\" --\n- y\n", "", `anchor "- x" occurs more than once`},
		{"text before a header", "d: 2\n# -- (1) above \"- x\" --\n", "", "comes before the first fragment header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frags, err := splitFragments(tc.block)
			if err == nil {
				var got string
				got, err = applyFragments(cfg, frags)
				if tc.wantErr == "" {
					require.NoError(t, err)
					require.Equal(t, tc.want, got)
					return
				}
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// TestExistingEnvoyValidate runs `envoy --mode validate` on both example bootstraps, with
// their certificate paths pointed at fresh files.
func TestExistingEnvoyValidate(t *testing.T) {
	bin := testutil.EnvoyBinary(t)
	tlsDir := devTLS(t)
	for _, f := range []string{"before.yaml", "after.yaml"} {
		t.Run(f, func(t *testing.T) {
			cfg := testutil.RenderBootstrap(t, filepath.Join(existingDir, f),
				testutil.SocketRewrite("0.0.0.0", 8443, 18443),
				testutil.Rewrite{Old: "/etc/envoy/tls/server.crt", New: filepath.Join(tlsDir, "server.crt")},
				testutil.Rewrite{Old: "/etc/envoy/tls/server.key", New: filepath.Join(tlsDir, "server.key")})
			validate(t, bin, cfg)
		})
	}
}
