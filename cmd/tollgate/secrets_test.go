package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

const (
	testKEK1     = "ERERERERERERERERERERERERERERERERERERERERERE="
	testKEK2     = "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="
	sealedSecret = "sk-test-sealed-provider-key-7f3a"
)

// secretsDir is a directory with KEK files kek1 and kek2 and a config listing them.
type secretsDir struct {
	dir, cfg string
}

func newSecretsDir(t *testing.T, keks string) secretsDir {
	t.Helper()
	d := secretsDir{dir: t.TempDir()}
	d.cfg = filepath.Join(d.dir, "tollgate.yaml")
	require.NoError(t, os.WriteFile(filepath.Join(d.dir, "kek1"), []byte(testKEK1+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(d.dir, "kek2"), []byte(testKEK2+"\n"), 0o600))
	require.NoError(t, os.WriteFile(d.cfg, []byte("security:\n  keks:\n"+keks), 0o600))
	return d
}

// secretsCmd runs `tollgate secrets ...` with stdin.
func secretsCmd(stdin string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := runSecrets(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

// opens returns the plaintext of sealed under the KEKs of the given files (id = file name).
func opens(t *testing.T, dir, sealed string, ids ...string) (string, error) {
	t.Helper()
	var keks []policy.KEKConfig
	for _, id := range ids {
		keks = append(keks, policy.KEKConfig{ID: id, Key: "file:" + strings.Replace(id, "k", "kek", 1)})
	}
	r, err := policy.LoadKeyring(keks, dir, secrets.Resolver{})
	require.NoError(t, err)
	v, err := r.Open(sealed)
	return v.Reveal(), err
}

func TestSecretsSealReadsStdin(t *testing.T) {
	d := newSecretsDir(t, "    - {id: k1, key: file:kek1}\n    - {id: k2, key: file:kek2}\n")
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		kek   string
	}{
		{"from the config, trailing newline trimmed", sealedSecret + "\n", []string{"--kek-id", "k2", "--config", d.cfg}, "k2"},
		{"from --kek", sealedSecret + "\r\n", []string{"--kek-id", "k1", "--kek", "file:" + filepath.Join(d.dir, "kek1")}, "k1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := secretsCmd(tc.stdin, append([]string{"seal"}, tc.args...)...)
			require.NoError(t, err, errOut)
			sealed := strings.TrimSpace(out)
			require.True(t, strings.HasPrefix(sealed, "sealed:v1."+tc.kek+"."), out)
			require.NotContains(t, out+errOut, sealedSecret)
			got, err := opens(t, d.dir, sealed, tc.kek)
			require.NoError(t, err)
			require.Equal(t, sealedSecret, got)
		})
	}
}

func TestSecretsSealRefusals(t *testing.T) {
	d := newSecretsDir(t, "    - {id: k1, key: file:kek1}\n    - {id: k9, key: file:missing}\n")
	tests := []struct {
		name, stdin string
		args        []string
		errHas      string
	}{
		{"secret on the command line", "", []string{"--kek-id", "k1", "--config", d.cfg, sealedSecret}, "read from stdin, never from the command line"},
		{"empty stdin", "\n", []string{"--kek-id", "k1", "--config", d.cfg}, "stdin is empty"},
		{"line break inside", "sk-a\nsk-b", []string{"--kek-id", "k1", "--config", d.cfg}, "control characters or line breaks"},
		{"too large", strings.Repeat("a", secrets.MaxSealedPlaintext+1), []string{"--kek-id", "k1", "--config", d.cfg}, "too large"},
		{"KEK not in the config", sealedSecret, []string{"--kek-id", "k2", "--config", d.cfg}, `lists no KEK "k2"`},
		{"KEK file missing", sealedSecret, []string{"--kek-id", "k9", "--config", d.cfg}, "security.keks[0] (k9)"},
		{"no KEK id", sealedSecret, []string{"--config", d.cfg}, "--kek-id is required"},
		{"both sources", sealedSecret, []string{"--kek-id", "k1", "--config", d.cfg, "--kek", "env:X"}, "not both"},
		{"KEK given as a value", sealedSecret, []string{"--kek-id", "k1", "--kek", testKEK1}, "not a secret reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := secretsCmd(tc.stdin, append([]string{"seal"}, tc.args...)...)
			require.ErrorContains(t, err, tc.errHas)
			require.Empty(t, out, "nothing sealed")
			all := err.Error() + out + errOut
			require.NotContains(t, all, sealedSecret)
			require.NotContains(t, all, testKEK1)
		})
	}
}

// rewrapConfig is a config with comments, a flow mapping, quoted and plain sealed values,
// and a provider in rotation (credentials.next).
func rewrapConfig(t *testing.T, d secretsDir, a, b, c string) string {
	t.Helper()
	return `# Production config: do not edit by hand on Fridays.
security:
  pepper: file:pepper   # 32+ bytes
  keks:
    - {id: k1, key: file:kek1}
    - {id: k2, key: file:kek2}   # added for the rotation
providers:
  - name: openai
    type: openai
    route: openai
    credential: ` + a + `   # sealed, k1
  - name: anthropic
    type: anthropic
    route: anthropic
    credentials:
      primary: "` + b + `"
      next: '` + c + `'
# trailing comment
`
}

// flipAt replaces the base64url character at i with another one.
func flipAt(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func sealUnder(t *testing.T, d secretsDir, id, secret string) string {
	t.Helper()
	out, errOut, err := secretsCmd(secret, "seal", "--kek-id", id, "--config", d.cfg)
	require.NoError(t, err, errOut)
	return strings.TrimSpace(out)
}

func TestSecretsRewrap(t *testing.T) {
	d := newSecretsDir(t, "    - {id: k1, key: file:kek1}\n    - {id: k2, key: file:kek2}\n")
	a, b := sealUnder(t, d, "k1", "sk-test-openai-a"), sealUnder(t, d, "k1", "sk-ant-test-b")
	c := sealUnder(t, d, "k2", "sk-ant-test-c")
	orig := rewrapConfig(t, d, a, b, c)
	require.NoError(t, os.WriteFile(d.cfg, []byte(orig), 0o640))
	require.NoError(t, os.Chmod(d.cfg, 0o640))
	before, err := os.Stat(d.cfg)
	require.NoError(t, err)

	var out, errb bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"secrets", "rewrap", "--config", d.cfg, "--to", "k2"}, &out, &errb), errb.String())
	require.Contains(t, out.String(), "rewrapped 2 sealed values under KEK k2")
	require.Contains(t, out.String(), "1 were already under it")

	after, err := os.Stat(d.cfg)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), after.Mode().Perm(), "the original mode is kept")
	require.False(t, os.SameFile(before, after), "written to a new file and renamed over the old one")
	entries, err := os.ReadDir(d.dir)
	require.NoError(t, err)
	require.Len(t, entries, 3, "no temporary file is left behind")

	raw, err := os.ReadFile(d.cfg)
	require.NoError(t, err)
	text := string(raw)
	require.NotContains(t, text, a)
	require.NotContains(t, text, b)
	require.Contains(t, text, c, "a value already under k2 is left as it is")
	_, found, err := sealedValues(raw)
	require.NoError(t, err)
	require.Len(t, found, 3)
	want := map[string]string{"providers[0].credential": "sk-test-openai-a",
		"providers[1].credentials.primary": "sk-ant-test-b", "providers[1].credentials.next": "sk-ant-test-c"}
	now := map[string]string{}
	for _, f := range found {
		require.True(t, strings.HasPrefix(f.value, "sealed:v1.k2."), f.path)
		got, err := opens(t, d.dir, f.value, "k2") // k1 can go now
		require.NoError(t, err, f.path)
		require.Equal(t, want[f.path], got, f.path)
		now[f.path] = f.value
	}
	// Everything but the sealed values is as it was: comments, quoting, layout.
	require.Equal(t, strings.NewReplacer(a, now["providers[0].credential"], b, now["providers[1].credentials.primary"]).Replace(orig), text)

	// Again: nothing to do, nothing written.
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"secrets", "rewrap", "--config", d.cfg, "--to", "k2"}, &out, &errb))
	require.Contains(t, out.String(), "nothing to rewrap")
	again, err := os.Stat(d.cfg)
	require.NoError(t, err)
	require.True(t, os.SameFile(after, again))
	require.NotContains(t, out.String()+errb.String(), "sk-")
}

func TestSecretsRewrapRefusesAndLeavesTheFileUntouched(t *testing.T) {
	d := newSecretsDir(t, "    - {id: k1, key: file:kek1}\n    - {id: k2, key: file:kek2}\n")
	a, b, c := sealUnder(t, d, "k1", "sk-test-openai-a"), sealUnder(t, d, "k1", "sk-ant-test-b"), sealUnder(t, d, "k1", "sk-ant-test-c")
	tampered := flipAt(b, len("sealed:v1.k1.")+5)
	foreign := strings.Replace(c, "sealed:v1.k1.", "sealed:v1.k0.", 1)
	tests := []struct {
		name   string
		cfg    string
		to     string
		errHas []string
	}{
		{"a value does not open", rewrapConfig(t, d, a, tampered, foreign), "k2",
			[]string{"providers[1].credentials.primary", "failed authentication", "providers[1].credentials.next", `KEK "k0"`}},
		{"target KEK not listed", rewrapConfig(t, d, a, b, c), "k3", []string{`lists no KEK "k3"`}},
		{"a KEK does not load", strings.Replace(rewrapConfig(t, d, a, b, c), "file:kek2", "file:gone", 1), "k1",
			[]string{"security.keks[1] (k2)"}},
		{"a truncated value", rewrapConfig(t, d, a[:len(a)-3], b, c), "k2", []string{"providers[0].credential", "truncated"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(d.cfg, []byte(tc.cfg), 0o600))
			before, err := os.Stat(d.cfg)
			require.NoError(t, err)
			out, errOut, err := secretsCmd("", "rewrap", "--config", d.cfg, "--to", tc.to)
			require.Error(t, err)
			require.Contains(t, err.Error(), "nothing written")
			for _, s := range tc.errHas {
				require.ErrorContains(t, err, s)
			}
			after, statErr := os.Stat(d.cfg)
			require.NoError(t, statErr)
			require.True(t, os.SameFile(before, after), "the file is not replaced")
			raw, _ := os.ReadFile(d.cfg)
			require.Equal(t, tc.cfg, string(raw))
			all := err.Error() + out + errOut
			for _, s := range []string{"sk-test-openai-a", "sk-ant-test-b", testKEK1, testKEK2, a[20:60], b[20:60]} {
				require.NotContains(t, all, s)
			}
		})
	}
}

func TestSecretsRewrapKeepsASymlinkedConfig(t *testing.T) {
	d := newSecretsDir(t, "    - {id: k1, key: file:kek1}\n    - {id: k2, key: file:kek2}\n")
	a := sealUnder(t, d, "k1", "sk-test-openai-a")
	b, c := sealUnder(t, d, "k1", "sk-ant-test-b"), sealUnder(t, d, "k2", "sk-ant-test-c")
	real := filepath.Join(d.dir, "real.yaml")
	require.NoError(t, os.WriteFile(real, []byte(rewrapConfig(t, d, a, b, c)), 0o600))
	require.NoError(t, os.Remove(d.cfg))
	require.NoError(t, os.Symlink("real.yaml", d.cfg))
	_, errOut, err := secretsCmd("", "rewrap", "--config", d.cfg, "--to", "k2")
	require.NoError(t, err, errOut)
	fi, err := os.Lstat(d.cfg)
	require.NoError(t, err)
	require.Equal(t, os.ModeSymlink, fi.Mode()&os.ModeSymlink, "the link stays a link")
	raw, err := os.ReadFile(real)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "sealed:v1.k1.")
}

func TestSecretsNewKEK(t *testing.T) {
	var out, errb bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"secrets", "new-kek"}, &out, &errb))
	_, err := secrets.ParseKEK("k1", out.Bytes())
	require.NoError(t, err)

	p := filepath.Join(t.TempDir(), "kek")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"secrets", "new-kek", "--out", p}, &out, &errb))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	_, err = secrets.ParseKEK("k1", raw)
	require.NoError(t, err)
	require.NotContains(t, out.String(), strings.TrimSpace(string(raw)), "the KEK is not printed when written to a file")
	err = run(context.Background(), []string{"secrets", "new-kek", "--out", p}, &out, &errb)
	require.ErrorContains(t, err, "never overwritten")

	err = run(context.Background(), []string{"secrets"}, &out, &errb)
	require.True(t, errors.Is(err, flag.ErrHelp))
}
