package secrets_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/secrets"
)

const fakeSecret = "sk-test-0123456789abcdef"

func TestResolveEnv(t *testing.T) {
	t.Setenv("TOLLGATE_TEST_SET", fakeSecret)
	t.Setenv("TOLLGATE_TEST_EMPTY", "")
	t.Setenv("TOLLGATE_TEST_SPACES", " "+fakeSecret+" \n")

	tests := []struct {
		name    string
		ref     string
		want    string
		wantErr error
	}{
		{name: "set", ref: "env:TOLLGATE_TEST_SET", want: fakeSecret},
		{name: "env values are not trimmed", ref: "env:TOLLGATE_TEST_SPACES", want: " " + fakeSecret + " \n"},
		{name: "empty", ref: "env:TOLLGATE_TEST_EMPTY", wantErr: secrets.ErrUnset},
		{name: "unset", ref: "env:TOLLGATE_TEST_NEVER_SET_9f3a", wantErr: secrets.ErrUnset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := secrets.ParseRef(tc.ref)
			require.NoError(t, err)
			v, err := ref.Resolve(t.TempDir())
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Contains(t, err.Error(), ref.Target, "error names the variable")
				require.Zero(t, v.Len())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, v.Reveal())
		})
	}
}

func TestResolveFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	plain := write("plain", fakeSecret)
	crlf := write("crlf", fakeSecret+"\r\n")
	spaces := write("spaces", "  "+fakeSecret+" \t\n\n")
	write("sub/rel", fakeSecret+"\n")
	empty := write("empty", "")
	blank := write("blank", " \r\n\t\n")
	atLimit := write("at-limit", strings.Repeat("k", secrets.MaxFileSize))
	tooBig := write("too-big", strings.Repeat("k", secrets.MaxFileSize+1))
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name    string
		ref     string
		baseDir string
		want    string
		wantErr error
		wantIn  string // text the error must contain
	}{
		{name: "absolute", ref: "file:" + plain, want: fakeSecret},
		{name: "absolute ignores base dir", ref: "file:" + plain, baseDir: "/nonexistent", want: fakeSecret},
		{name: "trailing crlf trimmed", ref: "file:" + crlf, want: fakeSecret},
		{name: "only trailing whitespace trimmed", ref: "file:" + spaces, want: "  " + fakeSecret},
		{name: "relative joined to base dir", ref: "file:sub/rel", baseDir: dir, want: fakeSecret},
		{name: "at size limit", ref: "file:" + atLimit, want: strings.Repeat("k", secrets.MaxFileSize)},
		{name: "empty", ref: "file:" + empty, wantErr: secrets.ErrEmpty, wantIn: empty},
		{name: "whitespace only", ref: "file:" + blank, wantErr: secrets.ErrEmpty, wantIn: blank},
		{name: "too large", ref: "file:" + tooBig, wantErr: secrets.ErrTooLarge, wantIn: tooBig},
		{name: "missing", ref: "file:" + missing, wantErr: fs.ErrNotExist, wantIn: missing},
		{name: "relative missing", ref: "file:nope", baseDir: dir, wantErr: fs.ErrNotExist, wantIn: filepath.Join(dir, "nope")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := secrets.ParseRef(tc.ref)
			require.NoError(t, err)
			v, err := ref.Resolve(tc.baseDir)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Contains(t, err.Error(), tc.wantIn)
				require.NotContains(t, err.Error(), "kkkk", "error must not carry file contents")
				require.Zero(t, v.Len())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, v.Reveal())
			require.Equal(t, len(tc.want), v.Len())
		})
	}
}

func TestResolveDevZeroIsRefused(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, err := secrets.Ref{Kind: secrets.KindFile, Target: "/dev/zero"}.Resolve("")
	require.ErrorIs(t, err, secrets.ErrTooLarge)
}

func TestResolverInjected(t *testing.T) {
	env := map[string]string{"PROVIDER_KEY": fakeSecret}
	files := map[string]string{"/cfg/pepper": "pepper-bytes\n", "/big": strings.Repeat("x", secrets.MaxFileSize+1)}
	var readPaths []string
	rs := secrets.Resolver{
		LookupEnv: func(name string) (string, bool) {
			v, ok := env[name]
			return v, ok
		},
		ReadFile: func(path string) ([]byte, error) {
			readPaths = append(readPaths, path)
			c, ok := files[path]
			if !ok {
				return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
			}
			return []byte(c), nil
		},
	}

	tests := []struct {
		name    string
		ref     secrets.Ref
		want    string
		wantErr error
	}{
		{name: "env", ref: secrets.Ref{Kind: "env", Target: "PROVIDER_KEY"}, want: fakeSecret},
		{name: "env unset", ref: secrets.Ref{Kind: "env", Target: "OTHER"}, wantErr: secrets.ErrUnset},
		{name: "file relative", ref: secrets.Ref{Kind: "file", Target: "pepper"}, want: "pepper-bytes"},
		{name: "file missing", ref: secrets.Ref{Kind: "file", Target: "/nope"}, wantErr: fs.ErrNotExist},
		{name: "file too large from custom reader", ref: secrets.Ref{Kind: "file", Target: "/big"}, wantErr: secrets.ErrTooLarge},
		{name: "zero ref", ref: secrets.Ref{}, wantErr: secrets.ErrNotReference},
		{name: "unknown kind", ref: secrets.Ref{Kind: "vault", Target: "x"}, wantErr: secrets.ErrNotReference},
		{name: "hand-built env ref with plaintext", ref: secrets.Ref{Kind: "env", Target: "sk-live-abc123"}, wantErr: secrets.ErrNotReference},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := rs.Resolve(tc.ref, "/cfg")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.NotContains(t, err.Error(), "sk-live")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, v.Reveal())
		})
	}
	require.Contains(t, readPaths, "/cfg/pepper")
}

func TestResolveFileErrorNamesPathOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing")
	_, err := secrets.Ref{Kind: "file", Target: p}.Resolve("")
	require.Error(t, err)
	require.Equal(t, 1, strings.Count(err.Error(), p), err.Error())
	var pe *fs.PathError
	require.False(t, errors.As(err, &pe), "path error is unwrapped so the path appears once")
}
