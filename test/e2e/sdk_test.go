package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

// TestOpenAISDKStreamingLoop runs the official OpenAI Python SDK's plain streaming loop
// (chunk.choices[0].delta.content) through Envoy and Tollgate. Tollgate adds include_usage
// to settle the budget; the usage chunk it brings has no choices and made that loop raise
// IndexError after the answer (issue 15 item 1). Guarded (SSE redactor) and unguarded
// streams both.
func TestOpenAISDKStreamingLoop(t *testing.T) {
	sdks := testutil.PythonSDKs(t)
	s := startStack(t)
	for _, key := range []string{"demo", "raw"} {
		t.Run(key, func(t *testing.T) {
			s.mock.Reset()
			cmd := exec.Command("python3", filepath.Join("testdata", "openai_stream_loop.py"), s.base, s.ca, "fast")
			cmd.Env = append(os.Environ(), "PYTHONPATH="+sdks, "TOLLGATE_KEY="+s.keys[key])
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "the SDK loop failed:\n%s", out)
			require.NotEmpty(t, strings.TrimSpace(string(out)), "the answer was streamed")
			reqs := s.mock.Requests()
			require.Len(t, reqs, 1)
			require.Contains(t, string(reqs[0].Body), `"include_usage":true`, "usage was still asked for, for settlement")
		})
	}
	require.Contains(t, s.logs(), `"settle_rule":"usage"`)
}
