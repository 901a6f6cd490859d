package keys_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/keys"
)

func TestExtractToken(t *testing.T) {
	const k, other = katToken, katPadded
	tests := []struct {
		name                  string
		authz, xAPIKey, azure string
		want                  string
		wantErr               error
	}{
		{name: "bearer", authz: "Bearer " + k, want: k},
		{name: "bearer lower case", authz: "bearer " + k, want: k},
		{name: "bearer upper case", authz: "BEARER " + k, want: k},
		{name: "bearer extra spaces", authz: "  Bearer   " + k + "  ", want: k},
		{name: "bearer tab", authz: "Bearer\t" + k, want: k},
		{name: "x-api-key", xAPIKey: k, want: k},
		{name: "x-api-key trimmed", xAPIKey: " " + k + " ", want: k},
		{name: "api-key", azure: k, want: k},
		{name: "all three agree", authz: "Bearer " + k, xAPIKey: k, azure: k, want: k},
		{name: "bearer and x-api-key agree", authz: "bearer " + k, xAPIKey: " " + k, want: k},
		{name: "value is not parsed", xAPIKey: "not-a-tollgate-key", want: "not-a-tollgate-key"},
		{name: "none", wantErr: keys.ErrNoCredential},
		{name: "blank values are absent", authz: "  ", xAPIKey: "\t", azure: " ", wantErr: keys.ErrNoCredential},
		{name: "blank authorization, key elsewhere", authz: " ", xAPIKey: k, want: k},
		{name: "basic scheme", authz: "Basic dXNlcjpwYXNz", wantErr: keys.ErrNoCredential},
		{name: "basic scheme with x-api-key", authz: "Basic dXNlcjpwYXNz", xAPIKey: k, wantErr: keys.ErrNoCredential},
		{name: "bare key in authorization", authz: k, wantErr: keys.ErrNoCredential},
		{name: "bearer prefix glued", authz: "Bearer" + k, wantErr: keys.ErrNoCredential},
		{name: "bearer without credential", authz: "Bearer", wantErr: keys.ErrNoCredential},
		{name: "bearer with only spaces", authz: "Bearer    ", wantErr: keys.ErrNoCredential},
		{name: "bearer and x-api-key differ", authz: "Bearer " + k, xAPIKey: other, wantErr: keys.ErrAmbiguousCredential},
		{name: "x-api-key and api-key differ", xAPIKey: k, azure: other, wantErr: keys.ErrAmbiguousCredential},
		{name: "bearer and api-key differ", authz: "Bearer " + k, azure: other, wantErr: keys.ErrAmbiguousCredential},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keys.ExtractToken(tc.authz, tc.xAPIKey, tc.azure)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Empty(t, got)
				for _, v := range []string{k, other, "dXNlcjpwYXNz"} {
					require.NotContains(t, err.Error(), v)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestExtractTokenUnsupportedSchemeText(t *testing.T) {
	_, err := keys.ExtractToken("Basic abc", "", "")
	require.ErrorIs(t, err, keys.ErrNoCredential)
	require.Contains(t, err.Error(), "unsupported authorization scheme")
}
