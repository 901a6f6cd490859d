package deploy

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

// testVersion is the VERSION build argument the tests pass.
const testVersion = "v9.9.9-deploytest"

// tmpRoot holds what the package's tests share (the built binaries); TestMain removes it.
var tmpRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tollgate-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	// The binary built here runs as another user in TestImageRunsReadOnly.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// imageBuild is the binary built as the Dockerfile builds it, from a copy of the build
// context, once per test binary.
var imageBuild struct {
	once sync.Once
	bin  string
	ctx  string // the build context copy it was built in
	err  error
}

// buildImageBinary returns the binary built exactly as the Dockerfile's build stage builds it:
// from a copy of the build context (the tree as .dockerignore filters it), with the stage's
// ENV and the RUN's command line, for the test machine's architecture.
func buildImageBinary(t *testing.T) (bin, ctxDir string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux; building it elsewhere proves nothing about it")
	}
	stages := dockerStages(t)
	root := testutil.RepoRoot(t)
	imageBuild.once.Do(func() {
		ctxDir := filepath.Join(tmpRoot, "context")
		if imageBuild.err = copyContext(root, ctxDir); imageBuild.err != nil {
			return
		}
		imageBuild.ctx = ctxDir
		imageBuild.bin = filepath.Join(tmpRoot, "out", "tollgate")
		imageBuild.err = dockerGoBuild(t, stages[0], ctxDir, imageBuild.bin)
	})
	require.NoError(t, imageBuild.err)
	return imageBuild.bin, imageBuild.ctx
}

// dockerGoBuild runs the build stage's `go build` in dir, writing out.
func dockerGoBuild(t *testing.T, build stage, dir, out string) error {
	t.Helper()
	vars := map[string]string{"VERSION": testVersion, "TARGETOS": "linux", "TARGETARCH": runtime.GOARCH}
	var argv []string
	for _, a := range goBuildArgs(t, build) {
		a, err := expand(a, vars)
		if err != nil {
			return err
		}
		if a == binaryPath {
			a = out
		}
		argv = append(argv, a)
	}
	env := map[string]string{}
	for k, v := range stageEnv(t, build) {
		env[k] = v
	}
	for k, v := range goBuildEnv(t, build) {
		v, err := expand(v, vars)
		if err != nil {
			return err
		}
		env[k] = v
	}
	cmd := exec.Command("go", append([]string{"build"}, argv...)...)
	cmd.Dir = dir
	cmd.Env = buildEnviron(env)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(argv, " "), err, b)
	}
	return nil
}

// buildEnviron is this process's environment without the variables that change what Go
// builds (the golang image sets none of them), plus env. GOFLAGS from `go env -w` is
// overridden by the variable, so a developer's defaults do not leak in either.
func buildEnviron(env map[string]string) []string {
	drop := map[string]bool{"GOFLAGS": true, "GOOS": true, "GOARCH": true, "GOAMD64": true, "GOARM": true, "GOARM64": true,
		"GO386": true, "GOEXPERIMENT": true, "GOTOOLCHAIN": true, "GOWORK": true, "CGO_ENABLED": true, "GODEBUG": true}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] && !strings.HasPrefix(k, "CGO_") {
			out = append(out, kv)
		}
	}
	if _, ok := env["GOFLAGS"]; !ok {
		env["GOFLAGS"] = "" // a `go env -w GOFLAGS=...` default would otherwise apply
	}
	env["GOWORK"] = "off" // the context has no go.work
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// dockerignored reports whether rel (slash-separated, relative to the context root) is
// excluded by one of patterns, as Docker matches them: a pattern matches the path or one of
// its parent directories; `**/` matches any number of directories.
func dockerignored(rel string, patterns []string) bool {
	for _, p := range patterns {
		for dir := rel; dir != "."; dir = filepath.ToSlash(filepath.Dir(dir)) {
			if ok, _ := filepath.Match(p, dir); ok {
				return true
			}
			if sub, ok := strings.CutPrefix(p, "**/"); ok {
				parts := strings.Split(dir, "/")
				for i := range parts {
					if ok, _ := filepath.Match(sub, strings.Join(parts[i:], "/")); ok {
						return true
					}
				}
			}
		}
	}
	return false
}

// copyContext copies the repository as .dockerignore lets it into the build context.
func copyContext(root, dst string) error {
	raw, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return err
	}
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		if dockerignored(filepath.ToSlash(rel), patterns) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case !d.Type().IsRegular():
			return nil // symlinks, sockets: Go sources are regular files
		}
		return copyFile(path, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestImageBinary builds the binary as the Dockerfile does and checks what the image relies
// on: it is statically linked (no interpreter, no shared libraries: it runs on distroless
// static, which has no libc), carries no build-machine path or VCS stamp, is byte-for-byte
// the same when built from another directory, and runs.
func TestImageBinary(t *testing.T) {
	bin, ctxDir := buildImageBinary(t)
	root := testutil.RepoRoot(t)

	t.Run("no dynamic linking", func(t *testing.T) {
		f, err := elf.Open(bin)
		require.NoError(t, err)
		defer f.Close()
		for _, p := range f.Progs {
			require.NotEqual(t, elf.PT_INTERP, p.Type, "a program interpreter (ld.so) means dynamic linking")
			require.NotEqual(t, elf.PT_DYNAMIC, p.Type, "a dynamic section means shared libraries")
		}
		libs, err := f.ImportedLibraries()
		require.NoError(t, err)
		require.Empty(t, libs, "DT_NEEDED entries")
		if ldd, err := exec.LookPath("ldd"); err == nil {
			out, _ := exec.Command(ldd, bin).CombinedOutput() // exit status 1 for a static binary
			require.Contains(t, string(out), "not a dynamic executable")
		}
	})
	t.Run("build settings", func(t *testing.T) {
		info, err := buildinfo.ReadFile(bin)
		require.NoError(t, err)
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
			require.False(t, strings.HasPrefix(s.Key, "vcs."), "VCS stamp %s=%s: the bytes would depend on the checkout", s.Key, s.Value)
		}
		require.Equal(t, "0", settings["CGO_ENABLED"])
		require.Equal(t, "true", settings["-trimpath"])
		require.Equal(t, "linux", settings["GOOS"])
		require.Equal(t, "github.com/tollgate-ai/tollgate/cmd/tollgate", info.Path)
		raw, err := os.ReadFile(bin)
		require.NoError(t, err)
		for _, dir := range []string{root, ctxDir, tmpRoot} {
			require.False(t, bytes.Contains(raw, []byte(dir)), "the binary names the build directory %s", dir)
		}
	})
	t.Run("reproducible from another directory", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "tollgate")
		require.NoError(t, dockerGoBuild(t, dockerStages(t)[0], root, other))
		require.Equal(t, fileSHA256(t, bin), fileSHA256(t, other),
			"the same source built in %s and in %s differs", ctxDir, root)
	})
	t.Run("runs", func(t *testing.T) {
		out, err := exec.Command(bin, "version").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Equal(t, "tollgate "+testVersion+"\n", string(out))
	})
}

func TestDockerignored(t *testing.T) {
	patterns := []string{".git", "**/.dev", "bin", "**/*.pem", "tollgate"}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{".git", true},
		{".git/config", true},
		{".dev/pepper", true},
		{"examples/.dev/keys.yaml", true},
		{"bin/tollgate", true},
		{"a/b/c.pem", true},
		{"c.pem", true},
		{"tollgate", true},
		{"cmd/tollgate/main.go", false},
		{"examples/config.yaml", false},
		{"binary.go", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			require.Equal(t, tc.want, dockerignored(tc.path, patterns))
		})
	}
}
