package keys

import (
	"strings"
	"testing"

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
