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

// TestReadmeSDKSnippetsRun runs the README's Python SDK examples, as written, with the
// official SDKs against a real stack: only the host and port are changed, and the working
// directory holds the .dev files they read.
func TestReadmeSDKSnippetsRun(t *testing.T) {
	sdks := testutil.PythonSDKs(t)
	s := startStack(t)
	readme := readFile(t, filepath.Join(s.root, "README.md"))
	var snippets []string
	for _, block := range strings.Split(readme, "```python\n")[1:] {
		snippets = append(snippets, block[:strings.Index(block, "```")])
	}
	require.Len(t, snippets, 3, "the OpenAI and the Anthropic example, and the OpenAI SDK calling an Anthropic model")
	for _, code := range snippets {
		code = strings.ReplaceAll(code, "https://localhost:8443", s.base)
		cmd := exec.Command("python3", "-c", code)
		cmd.Dir = s.dir // .dev/demo-key and .dev/tls/ca.crt, as after make run
		cmd.Env = append(os.Environ(), "PYTHONPATH="+sdks)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "README snippet failed:\n%s\n%s", code, out)
		require.NotEmpty(t, strings.TrimSpace(string(out)), "it printed the answer")
	}
}
