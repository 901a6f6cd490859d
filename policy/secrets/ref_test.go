package secrets_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/secrets"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    secrets.Ref
		wantErr error
	}{
		{name: "env", in: "env:OPENAI_API_KEY", want: secrets.Ref{Kind: "env", Target: "OPENAI_API_KEY"}},
		{name: "env underscore first", in: "env:_K1", want: secrets.Ref{Kind: "env", Target: "_K1"}},
		{name: "env lower case", in: "env:key", want: secrets.Ref{Kind: "env", Target: "key"}},
		{name: "file absolute", in: "file:/run/secrets/openai", want: secrets.Ref{Kind: "file", Target: "/run/secrets/openai"}},
		{name: "file relative", in: "file:secrets/openai.key", want: secrets.Ref{Kind: "file", Target: "secrets/openai.key"}},
		{name: "file colon in path", in: "file:/a:b", want: secrets.Ref{Kind: "file", Target: "/a:b"}},
		{name: "empty", in: "", wantErr: secrets.ErrEmpty},
		{name: "plaintext secret", in: "sk-live-abc123", wantErr: secrets.ErrNotReference},
		{name: "plaintext with colon", in: "user:pa55word", wantErr: secrets.ErrNotReference},
		{name: "env no name", in: "env:", wantErr: secrets.ErrNotReference},
		{name: "env digit first", in: "env:1KEY", wantErr: secrets.ErrNotReference},
		{name: "env dash", in: "env:OPENAI-KEY", wantErr: secrets.ErrNotReference},
		{name: "env space", in: "env: KEY", wantErr: secrets.ErrNotReference},
		{name: "env plaintext", in: "env:sk-live-abc123", wantErr: secrets.ErrNotReference},
		{name: "file no path", in: "file:", wantErr: secrets.ErrNotReference},
		{name: "file nul", in: "file:/a\x00b", wantErr: secrets.ErrNotReference},
		{name: "upper case kind", in: "ENV:KEY", wantErr: secrets.ErrNotReference},
		{name: "leading space", in: " env:KEY", wantErr: secrets.ErrNotReference},
		{name: "unknown kind", in: "vault:kv/openai", wantErr: secrets.ErrNotReference},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := secrets.ParseRef(tc.in)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Equal(t, secrets.Ref{}, got)
				// Inputs of 5 bytes or fewer ("env:", "file:") occur in the
				// fixed error text itself; longer ones must never appear.
				if len(tc.in) > len("file:") {
					require.NotContains(t, err.Error(), tc.in)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.in, got.String())
		})
	}
}

func TestParseRefNeverEchoesPlaintext(t *testing.T) {
	for _, in := range []string{
		"sk-live-abc123",
		"env:sk-live-abc123",
		"sk-ant-api03-abcdefghijklmnop",
		"Bearer sk-live-abc123",
	} {
		_, err := secrets.ParseRef(in)
		require.ErrorIs(t, err, secrets.ErrNotReference)
		require.NotContains(t, err.Error(), "abc123")
		require.NotContains(t, err.Error(), "abcdefghijklmnop")
	}
}

func TestRefStringZero(t *testing.T) {
	require.Empty(t, secrets.Ref{}.String())
}

func TestLooksLikeReference(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"env:KEY", true},
		{"env:bad-name", true},
		{"file:/x", true},
		{"file:", true},
		{"", false},
		{"sk-live-abc123", false},
		{"ENV:KEY", false},
		{"environment:KEY", false},
		{" env:KEY", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			require.Equal(t, tc.want, secrets.LooksLikeReference(tc.in))
		})
	}
}
