// Package deploy tests what operators deploy besides the source: the container image's
// Dockerfile (linted, and its binary built exactly as the Dockerfile builds it), the Grafana
// dashboard and the Prometheus alert rules (every metric they name is one a live `tollgate
// serve` exports; the rules pass promtool). There is no Docker engine here, so the image
// itself is never built: its inputs are.
package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), rel))
	require.NoError(t, err)
	return string(b)
}

func dockerStages(t *testing.T) []stage {
	t.Helper()
	stages, err := parseDockerfile(readRepoFile(t, dockerfilePath))
	require.NoError(t, err)
	return stages
}

const (
	// dockerfilePath is the Dockerfile, built with the repository root as its context (whose
	// .dockerignore applies).
	dockerfilePath = "examples/container/Dockerfile"
	// binaryPath and statePath are the build stage's outputs, the only files the image gets.
	binaryPath = "/out/tollgate"
	statePath  = "/out/state"
	// imageBinary is where the image keeps the binary; imageState is the writable state
	// directory (a volume).
	imageBinary = "/usr/local/bin/tollgate"
	imageState  = "/var/lib/tollgate"
	// nonrootUID is distroless' nonroot user.
	nonrootUID = "65532"
)

var (
	digestRE = regexp.MustCompile(`^[a-z0-9./:_-]+@sha256:[0-9a-f]{64}$`)
	// secretNameRE flags ENV and ARG names that would carry a secret into the image or its
	// build history (docker history shows both).
	secretNameRE = regexp.MustCompile(`(?i)(key|token|secret|passw|pepper|credential|auth)`)
)

// TestDockerfile lints the Dockerfile: a pinned builder and a pinned shell-less runtime, a
// static reproducible build, only the binary (and an empty state directory) in the image,
// a numeric non-root user, exec-form entry point, the documented ports, and no secrets.
func TestDockerfile(t *testing.T) {
	stages := dockerStages(t)
	require.Len(t, stages, 2, "a build stage and the runtime stage")
	build, final := stages[0], stages[1]

	t.Run("every base image is pinned by digest", func(t *testing.T) {
		for _, s := range stages {
			require.Regexp(t, digestRE, s.image, "line %d: FROM %s: pin the image by @sha256 digest", s.from.line, s.image)
		}
	})
	t.Run("no unpinned frontend image", func(t *testing.T) {
		m := regexp.MustCompile(`(?im)^#\s*syntax\s*=\s*(\S+)`).FindStringSubmatch(readRepoFile(t, dockerfilePath))
		if m != nil {
			require.Regexp(t, digestRE, m[1], "a # syntax= frontend is an image too: pin it by digest")
		}
	})
	t.Run("the runtime is distroless static nonroot: no shell, no libc", func(t *testing.T) {
		require.True(t, strings.HasPrefix(final.image, "gcr.io/distroless/static-debian12:nonroot@sha256:"), final.image)
		require.Empty(t, final.name, "the runtime stage is the last, unnamed stage")
	})
	t.Run("the build is static and reproducible", func(t *testing.T) {
		require.Equal(t, "build", build.name)
		env := stageEnv(t, build)
		require.Equal(t, "0", env["CGO_ENABLED"], "a static binary")
		require.Equal(t, "local", env["GOTOOLCHAIN"], "build with the pinned image's Go, never a downloaded one")
		argv := goBuildArgs(t, build)
		require.Contains(t, argv, "-trimpath")
		require.Contains(t, argv, "-buildvcs=false")
		require.Equal(t, []string{"-o", binaryPath, "./cmd/tollgate"}, argv[len(argv)-3:])
		// The builder's Go satisfies go.mod.
		m := regexp.MustCompile(`^golang:(\d+)\.(\d+)\.(\d+)-`).FindStringSubmatch(build.image)
		require.NotNil(t, m, "the builder is an official golang image with a full version: %s", build.image)
		goMod := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)(?:\.(\d+))?$`).FindStringSubmatch(readRepoFile(t, "go.mod"))
		require.NotNil(t, goMod)
		require.False(t, versionLess(m[1:4], goMod[1:4]), "builder Go %s.%s.%s is older than go.mod's %s", m[1], m[2], m[3], goMod[0])
	})
	t.Run("the runtime stage runs nothing and copies only the binary and an empty state directory", func(t *testing.T) {
		var copies []string
		for _, in := range final.body {
			require.NotContains(t, []string{"RUN", "ADD", "ONBUILD", "SHELL", "VOLUME"}, in.cmd, "line %d: %s in the runtime stage", in.line, in.cmd)
			if in.cmd != "COPY" {
				continue
			}
			f := strings.Fields(in.args)
			require.Len(t, f, 3+strings.Count(in.args, "--chown"), "line %d: COPY [--from=build] [--chown=...] SRC DST", in.line)
			require.Equal(t, "--from=build", f[0], "line %d: the runtime stage copies from the build stage only", in.line)
			copies = append(copies, f[len(f)-2]+" "+f[len(f)-1])
			if f[len(f)-2] == statePath {
				require.Contains(t, in.args, "--chown="+nonrootUID+":"+nonrootUID, "the state directory is the user's")
			} else {
				require.NotContains(t, in.args, "--chown", "line %d: the binary stays root-owned (the user cannot replace it)", in.line)
			}
		}
		require.Equal(t, []string{binaryPath + " " + imageBinary, statePath + " " + imageState}, copies)
		// The state directory is made empty in the same RUN that builds the binary.
		require.True(t, strings.HasSuffix(goBuildRun(t, build).args, "&& mkdir "+statePath), goBuildRun(t, build).args)
	})
	t.Run("the user is numeric and not root", func(t *testing.T) {
		var user string
		for _, in := range final.body {
			if in.cmd == "USER" {
				user = in.args
			}
		}
		require.Equal(t, nonrootUID+":"+nonrootUID, user, "a numeric uid:gid, so Kubernetes' runAsNonRoot can check it")
	})
	t.Run("entry point and command are exec form", func(t *testing.T) {
		var entry, cmd []string
		for _, in := range final.body {
			switch in.cmd {
			case "ENTRYPOINT", "CMD":
				argv, ok := in.exec()
				require.True(t, ok, "line %d: %s must be exec form (a JSON array): there is no shell", in.line, in.cmd)
				if in.cmd == "ENTRYPOINT" {
					entry = argv
				} else {
					cmd = argv
				}
			}
		}
		require.Equal(t, []string{imageBinary}, entry)
		require.Equal(t, []string{"serve", "--config", "/etc/tollgate/config.yaml"}, cmd)
	})
	t.Run("the documented ports are exposed", func(t *testing.T) {
		var ports []string
		for _, in := range final.body {
			if in.cmd == "EXPOSE" {
				ports = append(ports, strings.Fields(in.args)...)
			}
		}
		cfg := readRepoFile(t, "examples/config.yaml")
		for _, want := range []string{"extproc: 127.0.0.1:50051", "admin: 127.0.0.1:9090"} {
			require.Contains(t, cfg, want, "the example config's listener ports")
		}
		require.Equal(t, []string{"50051", "9090"}, ports)
		readme := readmeSection(t, "## Container image")
		for _, p := range ports {
			require.Contains(t, readme, p, "README's container section documents port %s", p)
		}
	})
	t.Run("the documented run is read-only, with config and state volumes", func(t *testing.T) {
		sec := readmeSection(t, "## Container image")
		require.Contains(t, sec, "docker build -f "+dockerfilePath+" ", "the documented build names the Dockerfile, from the root")
		for _, want := range []string{"docker run", "--read-only", "--cap-drop=ALL", ":/etc/tollgate:ro", ":" + imageState + " "} {
			require.Contains(t, sec, want)
		}
	})
	t.Run("no health check: documented instead", func(t *testing.T) {
		for _, s := range stages {
			for _, in := range s.body {
				require.NotEqual(t, "HEALTHCHECK", in.cmd, "line %d: the image has no shell or HTTP client to run a health check", in.line)
			}
		}
		require.Contains(t, readmeSection(t, "## Container image"), "/readyz")
	})
	t.Run("no secrets in ENV, ARG or LABEL", func(t *testing.T) {
		for _, s := range stages {
			for _, in := range s.body {
				switch in.cmd {
				case "ENV", "ARG", "LABEL":
					kv, err := keyValues(in.args)
					require.NoError(t, err, "line %d", in.line)
					for k, v := range kv {
						require.NotRegexp(t, secretNameRE, k, "line %d: %s %s: secrets are mounted at run time, never baked in", in.line, in.cmd, k)
						require.NotRegexp(t, secretValueRE, v, "line %d", in.line)
					}
				case "RUN":
					require.NotContains(t, in.args, "--mount=type=secret", "line %d: the build needs no secret", in.line)
				}
			}
		}
		require.NotRegexp(t, secretValueRE, readRepoFile(t, dockerfilePath))
	})
}

// secretValueRE matches what a key or credential value looks like (Tollgate virtual keys,
// provider keys, PEM private keys), wherever it appears.
var secretValueRE = regexp.MustCompile(`tgk_[A-Za-z0-9]|sk-[A-Za-z0-9-]{8,}|-----BEGIN [A-Z ]*PRIVATE KEY`)

// TestDockerignore keeps local state and secrets out of the build context (`COPY . .`).
func TestDockerignore(t *testing.T) {
	lines := map[string]bool{}
	for _, l := range strings.Split(readRepoFile(t, ".dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines[l] = true
		}
	}
	for _, want := range []string{".git", "**/.dev", ".tools", "bin", "**/*.pem", "**/*.key"} {
		require.True(t, lines[want], ".dockerignore must exclude %s", want)
	}
	for l := range lines {
		require.False(t, strings.HasPrefix(l, "!"), ".dockerignore re-includes %s", l)
	}
}

// stageEnv is a stage's ENV settings.
func stageEnv(t *testing.T, s stage) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range s.body {
		if in.cmd == "ENV" {
			kv, err := keyValues(in.args)
			require.NoError(t, err, "line %d", in.line)
			for k, v := range kv {
				env[k] = v
			}
		}
	}
	return env
}

// goBuildRun is the build stage's RUN that runs `go build`.
func goBuildRun(t *testing.T, s stage) instruction {
	t.Helper()
	var found []instruction
	for _, in := range s.body {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			found = append(found, in)
		}
	}
	require.Len(t, found, 1, "one RUN builds the binary")
	return found[0]
}

// goBuildArgs is the `go build` command line of the build stage, with its environment
// assignments (GOOS=... GOARCH=...) and anything after `&&` removed.
func goBuildArgs(t *testing.T, s stage) []string {
	t.Helper()
	cmd, _, _ := strings.Cut(goBuildRun(t, s).args, "&&")
	words, err := shellWords(cmd)
	require.NoError(t, err)
	for len(words) > 0 && regexp.MustCompile(`^[A-Z_]+=`).MatchString(words[0]) {
		words = words[1:]
	}
	require.GreaterOrEqual(t, len(words), 2)
	require.Equal(t, []string{"go", "build"}, words[:2])
	return words[2:]
}

// goBuildEnv is the environment assignments in front of `go build` (GOOS, GOARCH).
func goBuildEnv(t *testing.T, s stage) map[string]string {
	t.Helper()
	cmd, _, _ := strings.Cut(goBuildRun(t, s).args, "&&")
	words, err := shellWords(cmd)
	require.NoError(t, err)
	env := map[string]string{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || !regexp.MustCompile(`^[A-Z_]+$`).MatchString(k) {
			break
		}
		env[k] = v
	}
	return env
}

// readmeSection is README.md from a heading to the next heading of the same level.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	readme := readRepoFile(t, "README.md")
	i := strings.Index(readme, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "README.md has a %q section", heading)
	rest := readme[i+1+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
