package keys

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cycleReader yields 0, 1, ..., 255, 0, 1, ... forever.
type cycleReader struct{ next byte }

func (c *cycleReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.next
		c.next++
	}
	return len(p), nil
}

// TestFillBase62Unbiased feeds every byte value equally often: with rejection
// sampling each of the 62 characters must then come out exactly equally often
// (a plain b%62 would favour the first 8 characters).
func TestFillBase62Unbiased(t *testing.T) {
	const cycles = 3
	dst := make([]byte, 248*cycles)
	// 3 cycles need 768 bytes, within maxRandomBytes.
	require.NoError(t, fillBase62(&cycleReader{}, dst))
	counts := make(map[byte]int)
	for _, c := range dst {
		counts[c]++
	}
	require.Len(t, counts, 62)
	for c, n := range counts {
		require.Equal(t, 4*cycles, n, "character %q", c)
	}
}

func TestCRCOfStringMatchesStdlib(t *testing.T) {
	for _, s := range []string{"", "a", "tgk_", "The quick brown fox jumps over the lazy dog"} {
		require.Equal(t, crcOf([]byte(s)), crcOfString(s))
	}
}

func TestEncodeChecksumBounds(t *testing.T) {
	require.Equal(t, "000000", string(func() []byte { b := encodeChecksum(0); return b[:] }()))
	require.Equal(t, "4gfFC3", string(func() []byte { b := encodeChecksum(^uint32(0)); return b[:] }()))
}

// TestMacStateMatchesHash checks the pooled HMAC used by Store.Verify against
// Hash, across reuse and for secrets longer than its 64-byte input buffer.
func TestMacStateMatchesHash(t *testing.T) {
	pepper := []byte("0123456789abcdef0123456789abcdef")
	s, err := NewStore(pepper, nil)
	require.NoError(t, err)
	m := s.macs.Get().(*macState)
	for _, n := range []int{0, 1, SecretLen, 63, 64, 65, 128, 200} {
		secret := strings.Repeat("s", n)
		require.Equal(t, Hash(pepper, secret), m.sum(secret), "length %d", n)
	}
	require.Equal(t, Hash(pepper, "a"), m.sum("a"), "state is reset between uses")
}

// TestVerifyUnknownIDDoesTheSameWork proves the dummy HMAC: an unknown id, a wrong secret for
// a known id and the right secret each compute exactly one HMAC and make exactly one
// constant-time comparison of two full digests, so response time does not reveal which ids
// exist. Dropping the dummy HMAC, or comparing other than through s.equal (hmac.Equal), fails it.
func TestVerifyUnknownIDDoesTheSameWork(t *testing.T) {
	pepper := []byte("0123456789abcdef0123456789abcdef")
	known, err := Generate(&cycleReader{})
	require.NoError(t, err)
	other, err := Generate(&cycleReader{next: 7})
	require.NoError(t, err)
	require.NotEqual(t, known.ID, other.ID)
	require.NotEqual(t, known.Secret, other.Secret)
	s, err := NewStore(pepper, []Record{{ID: known.ID, Team: "t", Digest: Hash(pepper, known.Secret)}})
	require.NoError(t, err)

	var hmacs, compares int
	var comparedLens [][2]int
	s.onHMAC = func() { hmacs++ }
	s.onCompare = func(gotLen, wantLen int) {
		compares++
		comparedLens = append(comparedLens, [2]int{gotLen, wantLen})
	}

	tests := []struct {
		name    string
		tok     Token
		wantErr error
	}{
		{name: "unknown id", tok: Token{ID: other.ID, Secret: other.Secret}, wantErr: ErrUnknownKey},
		{name: "unknown id with a known key's secret", tok: Token{ID: other.ID, Secret: known.Secret}, wantErr: ErrUnknownKey},
		{name: "wrong secret for a known id", tok: Token{ID: known.ID, Secret: other.Secret}, wantErr: ErrUnknownKey},
		{name: "right secret", tok: known},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hmacs, compares, comparedLens = 0, 0, nil
			_, err := s.Verify(time.Now(), tc.tok)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, 1, hmacs, "one HMAC per Verify")
			require.Equal(t, 1, compares, "one constant-time comparison per Verify")
			require.Equal(t, [][2]int{{sha256.Size, sha256.Size}}, comparedLens, "full digests are compared")
		})
	}
}
