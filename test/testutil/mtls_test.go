package testutil_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

// TestReadmeShowsTheTestedTransportSocket keeps README.md's Envoy block for ext_proc over
// mutual TLS identical to the one the end-to-end tests run (paths aside).
func TestReadmeShowsTheTestedTransportSocket(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "README.md"))
	require.NoError(t, err)
	want := "```yaml\n" + testutil.ExtProcTransportSocket(testutil.ExtProcTLS{
		CertFile: "/etc/envoy/tls/tollgate-client.crt", KeyFile: "/etc/envoy/tls/tollgate-client.key",
		CAFile: "/etc/tollgate-ca.crt", ServerName: "tollgate.internal",
	}) + "```\n"
	require.Equal(t, 1, strings.Count(string(raw), want), "README.md must show exactly:\n%s", want)
}
