package keys_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/keys"
)

// HMAC-SHA256(key "0123456789abcdef0123456789abcdef", message "secret"),
// computed independently with:
//
//	printf secret | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef
const (
	katPepper = "0123456789abcdef0123456789abcdef"
	katDigest = "0ad814968caefdecab8a6c0c55414688fdcad02f100ee7ac5def2352aaff36e5"
)

func TestHashKnownAnswer(t *testing.T) {
	d := keys.Hash([]byte(katPepper), "secret")
	require.Equal(t, katDigest, d.String())

	parsed, err := keys.ParseDigest(katDigest)
	require.NoError(t, err)
	require.Equal(t, d, parsed)

	require.NotEqual(t, d, keys.Hash([]byte(katPepper), "secreT"))
	require.NotEqual(t, d, keys.Hash([]byte(strings.ToUpper(katPepper)), "secret"))
}

func TestParseDigest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"lower", katDigest, false},
		{"upper", strings.ToUpper(katDigest), false},
		{"mixed", "0AD814968caefdecab8a6c0c55414688fdcad02f100ee7ac5def2352aaff36E5", false},
		{"empty", "", true},
		{"short", katDigest[:63], true},
		{"long", katDigest + "0", true},
		{"non-hex", "g" + katDigest[1:], true},
		{"prefixed", "0x" + katDigest[2:], true},
		{"space", " " + katDigest[1:], true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := keys.ParseDigest(tc.in)
			if tc.wantErr {
				require.ErrorIs(t, err, keys.ErrBadDigest)
				require.Zero(t, d)
				if tc.in != "" {
					require.NotContains(t, err.Error(), tc.in)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, katDigest, d.String())
		})
	}
}

func TestDigestText(t *testing.T) {
	d := keys.Hash([]byte(katPepper), "secret")
	b, err := json.Marshal(map[string]keys.Digest{"d": d})
	require.NoError(t, err)
	require.JSONEq(t, `{"d":"`+katDigest+`"}`, string(b))

	var back map[string]keys.Digest
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, d, back["d"])

	var bad keys.Digest
	require.ErrorIs(t, bad.UnmarshalText([]byte("zz")), keys.ErrBadDigest)
	require.True(t, bad.IsZero())
	require.False(t, d.IsZero())
}

func TestCheckPepper(t *testing.T) {
	tests := []struct {
		name    string
		pepper  []byte
		wantErr bool
	}{
		{"nil", nil, true},
		{"31 bytes", make([]byte, 31), true},
		{"32 bytes", make([]byte, keys.MinPepperLen), false},
		{"64 bytes", make([]byte, 64), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := keys.CheckPepper(tc.pepper)
			if tc.wantErr {
				require.ErrorIs(t, err, keys.ErrWeakPepper)
				return
			}
			require.NoError(t, err)
		})
	}
}
