package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/keys"
)

// keysEnv is a config with two teams, a model with an alias, a guardrail profile and one key
// file, keys.yaml, that does not exist yet.
type keysEnv struct {
	dir, cfg, keyFile string
}

func newKeysEnv(t *testing.T) keysEnv {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pepper"), []byte(strings.Repeat("p", 40)), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "provider-key"), []byte("sk-mock-123"), 0o600))
	cfg := `security: {pepper: "file:pepper"}
providers:
  - {name: mock, type: openai-compatible, route: mock, credential: "file:provider-key"}
models:
  - {name: gpt-4o-mini, provider: mock, aliases: [fast]}
teams:
  - {name: platform}
  - {name: research}
guardrails:
  profiles:
    - name: standard
      rules: [{id: email, detector: pii.email, action: redact}]
key_files: [keys.yaml]
`
	e := keysEnv{dir: dir, cfg: filepath.Join(dir, "config.yaml"), keyFile: filepath.Join(dir, "keys.yaml")}
	require.NoError(t, os.WriteFile(e.cfg, []byte(cfg), 0o600))
	return e
}

// keysNew runs `tollgate keys new` against the env's config and returns stdout, stderr and the error.
func (e keysEnv) keysNew(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"keys", "new", "--config", e.cfg}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

// loads reads and compiles the env's config as serve does and returns its key count.
func (e keysEnv) loads(t *testing.T) int {
	t.Helper()
	l, err := readConfig(e.cfg)
	require.NoError(t, err)
	s, err := compile(l, time.Now())
	require.NoError(t, err)
	return s.KeyCount()
}

func TestKeysNewAppendCreatesMissingKeyFile(t *testing.T) {
	e := newKeysEnv(t)
	out, _, err := e.keysNew("--team", "platform", "--name", "ci", "--append", e.keyFile)
	require.NoError(t, err)
	require.Contains(t, out, "a running tollgate picks it up")
	tok, err := keys.Parse(keyLine.FindStringSubmatch(out)[1])
	require.NoError(t, err)
	kf, err := os.ReadFile(e.keyFile)
	require.NoError(t, err)
	require.Contains(t, string(kf), "id: "+tok.ID)
	require.NotContains(t, string(kf), tok.Secret)
	fi, err := os.Stat(e.keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a key file holds hashes: owner only")
	require.Equal(t, 1, e.loads(t))
}

func TestKeysNewAppendKeepsKeyFileValid(t *testing.T) {
	e := newKeysEnv(t)
	// One real entry to start layouts from.
	_, _, err := e.keysNew("--team", "platform", "--name", "first", "--append", e.keyFile)
	require.NoError(t, err)
	first, err := os.ReadFile(e.keyFile)
	require.NoError(t, err)
	entry := strings.TrimPrefix(string(first), "keys:\n") // "  - id: ...\n    name: ..."
	unindented := strings.ReplaceAll(entry, "\n  ", "\n")[2:]

	tests := []struct {
		name     string
		content  string
		wantKeys int
	}{
		{name: "empty flow list", content: "keys: []\n", wantKeys: 1},
		{name: "empty flow list with a comment", content: "# all revoked\nkeys: [] # none left\n", wantKeys: 1},
		{name: "empty file", content: "", wantKeys: 1},
		{name: "comments only", content: "# key file\n\n", wantKeys: 1},
		{name: "empty block list", content: "keys:\n", wantKeys: 1},
		{name: "one entry", content: string(first), wantKeys: 2},
		{name: "one entry, no final newline", content: strings.TrimSuffix(string(first), "\n"), wantKeys: 2},
		{name: "entries at column zero", content: "keys:\n" + unindented, wantKeys: 2},
		{name: "trailing comment", content: string(first) + "# end\n", wantKeys: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(e.keyFile, []byte(tc.content), 0o600))
			out, stderr, err := e.keysNew("--team", "research", "--name", "second", "--append", e.keyFile)
			require.NoError(t, err, stderr)
			tok, err := keys.Parse(keyLine.FindStringSubmatch(out)[1])
			require.NoError(t, err)
			require.Equal(t, tc.wantKeys, e.loads(t))
			kf, err := os.ReadFile(e.keyFile)
			require.NoError(t, err)
			require.Contains(t, string(kf), "id: "+tok.ID)
			if strings.HasPrefix(tc.content, "#") {
				require.True(t, strings.HasPrefix(string(kf), "# "), "comments are kept:\n%s", kf)
			}
		})
	}

	t.Run("a layout it cannot extend is refused, the file untouched", func(t *testing.T) {
		l, err := readConfig(e.cfg)
		require.NoError(t, err)
		k := l.cfg.Keys[0]
		flow := "keys: [{id: " + k.ID + ", name: x, team: platform, hash: " + k.Hash + "}]\n"
		require.NoError(t, os.WriteFile(e.keyFile, []byte(flow), 0o600))
		out, _, err := e.keysNew("--team", "platform", "--name", "third", "--append", e.keyFile)
		require.ErrorContains(t, err, "block list")
		require.NotRegexp(t, keys.TokenPattern, out, "no key is shown for an entry that was not stored")
		kf, err := os.ReadFile(e.keyFile)
		require.NoError(t, err)
		require.Equal(t, flow, string(kf))
	})
}

func TestKeysNewGuardrails(t *testing.T) {
	e := newKeysEnv(t)
	for _, profile := range []string{"standard", "none"} {
		_, stderr, err := e.keysNew("--team", "platform", "--name", "g-"+profile, "--guardrails", profile, "--append", e.keyFile)
		require.NoError(t, err, stderr)
	}
	l, err := readConfig(e.cfg)
	require.NoError(t, err)
	require.Len(t, l.cfg.Keys, 2)
	require.Equal(t, "standard", l.cfg.Keys[0].Guardrails)
	require.Equal(t, "none", l.cfg.Keys[1].Guardrails)
	require.Equal(t, 2, e.loads(t))

	// Printed, not appended: the stanza carries it too.
	out, _, err := e.keysNew("--team", "platform", "--name", "p", "--guardrails", "standard")
	require.NoError(t, err)
	require.Contains(t, out, `    guardrails: "standard"`)
}

// TestKeysNewRefusesWhatTheConfigWouldRefuse: a typo in --team, --models or --guardrails
// used to be written, reported live, and then freeze every reload of the key file.
func TestKeysNewRefusesWhatTheConfigWouldRefuse(t *testing.T) {
	e := newKeysEnv(t)
	_, _, err := e.keysNew("--team", "platform", "--name", "ok", "--append", e.keyFile)
	require.NoError(t, err)
	before, err := os.ReadFile(e.keyFile)
	require.NoError(t, err)

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "unknown team", args: []string{"--team", "platfrom"},
			want: []string{`--team: unknown team "platfrom"`, "platform, research"}},
		{name: "unknown model", args: []string{"--team", "platform", "--models", "gpt-4o-mini,gpt-4o-mni"},
			want: []string{`--models: unknown model "gpt-4o-mni"`, "gpt-4o-mini"}},
		{name: "unknown guardrails profile", args: []string{"--team", "platform", "--guardrails", "strict"},
			want: []string{`--guardrails: unknown profile "strict"`, "none, standard"}},
		{name: "several at once", args: []string{"--team", "nope", "--models", "nope", "--guardrails", "nope"},
			want: []string{"--team", "--models", "--guardrails"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, appendArgs := range [][]string{{"--append", e.keyFile}, nil} {
				args := append(append([]string{"--name", "typo"}, tc.args...), appendArgs...)
				out, _, err := e.keysNew(args...)
				require.Error(t, err, "exit status is non-zero")
				for _, w := range tc.want {
					require.ErrorContains(t, err, w)
				}
				require.ErrorContains(t, err, "nothing written")
				require.NotRegexp(t, keys.TokenPattern, out, "no key is shown")
				require.NotContains(t, out, "hash:")
				kf, err := os.ReadFile(e.keyFile)
				require.NoError(t, err)
				require.Equal(t, string(before), string(kf), "the key file is untouched")
			}
		})
	}

	t.Run("--append needs --config", func(t *testing.T) {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"keys", "new", "--pepper", "file:" + filepath.Join(e.dir, "pepper"),
			"--team", "platform", "--name", "x", "--append", e.keyFile}, &out, &errb)
		require.ErrorContains(t, err, "--append needs --config")
		require.Empty(t, out.String())
	})

	t.Run("a config that would not load with the key is named", func(t *testing.T) {
		cfg, err := os.ReadFile(e.cfg)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(e.cfg, append(cfg, "limits: {max_request_bytes: -1}\n"...), 0o600))
		defer func() { require.NoError(t, os.WriteFile(e.cfg, cfg, 0o600)) }()
		_, _, err = e.keysNew("--team", "platform", "--name", "x", "--append", e.keyFile)
		require.ErrorContains(t, err, "would not load")
		require.ErrorContains(t, err, "limits.max_request_bytes")
	})
}
