package keys_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/keys"
)

// Known-answer tokens. The checksums were computed independently with Python:
// zlib.crc32(body) written in base62 (0-9A-Za-z), left-padded to 6 with '0'.
const (
	// crc32 = 0x6c254ee4 -> "1ymyFo".
	katToken = "tgk_0123456789ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq1ymyFo"
	// crc32 = 0x1a8cbb7b -> "0U8yrL" (exercises the left padding).
	katPadded = "tgk_000000000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa30U8yrL"
)

var tokenRE = regexp.MustCompile(`^` + keys.TokenPattern + `$`)

// seeded returns a deterministic random source.
func seeded(seed byte) *mrand.ChaCha8 {
	return mrand.NewChaCha8([32]byte{seed})
}

func TestChecksumKnownAnswer(t *testing.T) {
	tests := []struct {
		name, token, id, secret string
		crc                     uint32
	}{
		{"fixed", katToken, "0123456789ab", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", 0x6c254ee4},
		{"left padded", katPadded, "000000000000", strings.Repeat("a", 42) + "3", 0x1a8cbb7b},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Len(t, tc.token, keys.TokenLen)
			// Cross-check the hard-coded CRC against the standard library.
			require.Equal(t, tc.crc, crc32.ChecksumIEEE([]byte(tc.token[:60])))

			tok, err := keys.Parse(tc.token)
			require.NoError(t, err)
			require.Equal(t, keys.Token{ID: tc.id, Secret: tc.secret}, tok)
			require.Equal(t, tc.token, keys.Token{ID: tc.id, Secret: tc.secret}.Reveal())
		})
	}
}

func TestGenerateParseRoundTrip(t *testing.T) {
	for _, src := range []struct {
		name string
		r    func() interface{ Read([]byte) (int, error) }
	}{
		{"crypto/rand", func() interface{ Read([]byte) (int, error) } { return rand.Reader }},
		{"seeded", func() interface{ Read([]byte) (int, error) } { return seeded(1) }},
	} {
		t.Run(src.name, func(t *testing.T) {
			r := src.r()
			seen := make(map[string]bool, 1000)
			ids := make(map[string]bool, 1000)
			for range 1000 {
				tok, err := keys.Generate(r)
				require.NoError(t, err)
				s := tok.Reveal()
				require.Len(t, s, keys.TokenLen)
				require.Regexp(t, tokenRE, s)
				require.False(t, seen[s], "duplicate token")
				require.False(t, ids[tok.ID], "duplicate id")
				seen[s], ids[tok.ID] = true, true

				got, err := keys.Parse(s)
				require.NoError(t, err)
				require.Equal(t, tok, got)
			}
		})
	}
}

func TestGenerateIsDeterministicForSeed(t *testing.T) {
	a, err := keys.Generate(seeded(7))
	require.NoError(t, err)
	b, err := keys.Generate(seeded(7))
	require.NoError(t, err)
	require.Equal(t, a, b)
}

type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("entropy pool on fire") }

func TestGenerateBadSource(t *testing.T) {
	tests := []struct {
		name string
		r    interface{ Read([]byte) (int, error) }
	}{
		{"read error", errReader{}},
		{"short source", strings.NewReader("abc")},
		{"only rejected bytes", constReader(0xff)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := keys.Generate(tc.r)
			require.ErrorIs(t, err, keys.ErrEntropy)
			require.Zero(t, tok)
		})
	}
}

func TestParseRejects(t *testing.T) {
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"wrong prefix", "tgx_" + katToken[4:]},
		{"upper case prefix", "TGK_" + katToken[4:]},
		{"too short", katToken[:keys.TokenLen-1]},
		{"too long", katToken + "0"},
		{"surrounding space", " " + katToken[1:]},
		{"trailing newline", katToken[:keys.TokenLen-1] + "\n"},
		{"bad char in id", katToken[:5] + "-" + katToken[6:]},
		{"bad char in secret", katToken[:20] + "+" + katToken[21:]},
		{"bad char in checksum", katToken[:keys.TokenLen-1] + "/"},
		{"non-ascii", katToken[:20] + "é" + katToken[22:]},
		{"nul byte", katToken[:30] + "\x00" + katToken[31:]},
		{"separator moved", katToken[:16] + "A" + katToken[17:]},
		{"flipped checksum char", flip(katToken, keys.TokenLen-1)},
		{"flipped first checksum char", flip(katToken, 60)},
		{"flipped secret char", flip(katToken, 40)},
		{"flipped id char", flip(katToken, 5)},
		{"swapped adjacent chars", katToken[:20] + katToken[21:22] + katToken[20:21] + katToken[22:]},
		{"checksum shifted by one", "tgk_000000000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3U8yrL0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := keys.Parse(tc.in)
			require.ErrorIs(t, err, keys.ErrMalformed)
			require.Zero(t, tok)
			if len(tc.in) > 0 {
				require.NotContains(t, err.Error(), tc.in)
				require.NotContains(t, err.Error(), "tgk_")
			}
		})
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	for _, s := range []string{katToken, katToken[:10], "tgk_" + katToken[4:65] + "0"} {
		allocs := testing.AllocsPerRun(100, func() { _, _ = keys.Parse(s) })
		require.Zero(t, allocs)
	}
}

func TestTokenNeverPrintsSecret(t *testing.T) {
	tok, err := keys.Parse(katToken)
	require.NoError(t, err)
	want := "tgk_0123456789ab_[REDACTED]"
	require.Equal(t, want, tok.String())

	type holder struct {
		Tok  keys.Token
		Name string
	}
	h := holder{Tok: tok, Name: "x"}
	js, err := json.Marshal(map[string]any{"tok": tok, "ptr": &tok, "h": h})
	require.NoError(t, err)
	out := fmt.Sprintf("%v %+v %#v %s %q %x %v %+v %+v %#v", tok, tok, tok, tok, tok, tok, &tok, []keys.Token{tok}, h, h) + string(js)
	require.Contains(t, out, want)
	require.NotContains(t, out, tok.Secret)
	require.NotContains(t, out, tok.Secret[:12])
}
