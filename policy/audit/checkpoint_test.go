package audit_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

func TestCheckpointKeys(t *testing.T) {
	t.Parallel()
	priv, pubPEM, err := audit.GenerateCheckpointKey()
	require.NoError(t, err)
	want := priv.Public().(ed25519.PublicKey)

	block, _ := pem.Decode(pubPEM)
	require.Equal(t, "PUBLIC KEY", block.Type)
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	require.NoError(t, err)
	require.Equal(t, want, k)

	privPEM, err := audit.MarshalCheckpointPrivateKey(priv)
	require.NoError(t, err)
	for _, tc := range []struct {
		name      string
		pub, priv []byte
	}{
		{"pem", pubPEM, privPEM},
		{"base64", []byte(base64.StdEncoding.EncodeToString(want) + "\n"), []byte(base64.StdEncoding.EncodeToString(priv.Seed()))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pub, err := audit.ParseCheckpointPublicKey(tc.pub)
			require.NoError(t, err)
			require.Equal(t, want, pub)
			p, err := audit.ParseCheckpointPrivateKey(tc.priv)
			require.NoError(t, err)
			require.True(t, p.Equal(priv))
		})
	}

	for _, bad := range [][]byte{nil, []byte("not a key"), privPEM, []byte(base64.StdEncoding.EncodeToString([]byte("short")))} {
		_, err := audit.ParseCheckpointPublicKey(bad)
		require.ErrorIs(t, err, audit.ErrBadCheckpointKey)
	}
	_, err = audit.ParseCheckpointPrivateKey(pubPEM)
	require.ErrorIs(t, err, audit.ErrBadCheckpointKey)
	_, err = audit.MarshalCheckpointPrivateKey(ed25519.PrivateKey{1, 2})
	require.ErrorIs(t, err, audit.ErrBadCheckpointKey)
}
