package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var sdkCache struct {
	sync.Mutex
	dir string
}

// PythonSDKs returns a PYTHONPATH directory holding the official OpenAI and Anthropic
// Python SDKs (pinned in test/tools/python-sdks.sh), for tests that run real client code:
// env TOLLGATE_PYTHON_SDKS, else <repo>/.tools/python-sdks when the script installed it
// there, else the script itself when env TOLLGATE_INSTALL_SDKS=1. When none is found the
// test is skipped, or failed when env CI=true (.ci/run installs them).
func PythonSDKs(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("TOLLGATE_PYTHON_SDKS"); d != "" {
		return d
	}
	sdkCache.Lock()
	defer sdkCache.Unlock()
	if sdkCache.dir != "" {
		return sdkCache.dir
	}
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, ".tools", "python-sdks", ".pins")); err == nil {
		sdkCache.dir = filepath.Join(root, ".tools", "python-sdks")
		return sdkCache.dir
	}
	if os.Getenv("TOLLGATE_INSTALL_SDKS") == "1" {
		out, err := exec.Command(filepath.Join(root, "test", "tools", "python-sdks.sh")).Output()
		if err == nil {
			sdkCache.dir = strings.TrimSpace(string(out))
			return sdkCache.dir
		}
		skipOrFail(t, "testutil: installing the Python SDKs failed: %v", err)
		return ""
	}
	skipOrFail(t, "testutil: no Python SDKs (run test/tools/python-sdks.sh, or set TOLLGATE_INSTALL_SDKS=1)")
	return ""
}
