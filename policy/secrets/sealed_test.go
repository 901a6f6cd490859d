package secrets_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// Known-answer vector. It was computed independently of this package, with Python's
// `cryptography` (AESGCM, hmac/hashlib), from the format described in sealed.go:
//
//	KEK    = bytes 0x40..0x5f, id "k1"
//	random = bytes 0x00..0x37: DEK 0x00..0x1f, wrap nonce 0x20..0x2b, data nonce 0x2c..0x37
const (
	katKEK       = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="
	katPlaintext = "sk-test-known-answer-0001"
	katSealed    = "sealed:v1.k1.LC0uLzAxMjM0NTY3IZYIYgfikOFdpvKRVc4LdqZ9Tb5LVRefZKImIDISzifgBy-GdzpcnmQ." +
		"R0to6AmRICEiIyQlJicoKSorNerB4xtxVh58PDbnMnlQnIO3_ltVYRWumXHkM72j1sqzHTWOtFKNSV8Ae-MedJoy"
)

// counting is a deterministic "random" source: 0x00, 0x01, 0x02, ...
type counting struct{ n byte }

func (c *counting) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

func kek(t testing.TB, id string, seed byte) *secrets.KEK {
	t.Helper()
	k, err := secrets.NewKEK(id, bytes.Repeat([]byte{seed}, 32))
	require.NoError(t, err)
	return k
}

func ring(t testing.TB, keks ...*secrets.KEK) *secrets.Keyring {
	t.Helper()
	r, err := secrets.NewKeyring(keks...)
	require.NoError(t, err)
	return r
}

func katRing(t testing.TB) *secrets.Keyring {
	t.Helper()
	k, err := secrets.ParseKEK("k1", []byte(katKEK))
	require.NoError(t, err)
	return ring(t, k)
}

func TestSealKnownAnswer(t *testing.T) {
	r := katRing(t)
	got, err := r.Seal("k1", []byte(katPlaintext), &counting{})
	require.NoError(t, err)
	require.Equal(t, katSealed, got)

	v, err := r.Open(katSealed)
	require.NoError(t, err)
	require.Equal(t, katPlaintext, v.Reveal())

	sv, err := secrets.ParseSealed(katSealed)
	require.NoError(t, err)
	require.Equal(t, "v1", sv.Version)
	require.Equal(t, "k1", sv.KEKID)
	require.Equal(t, katSealed, sv.String())
}

func TestSealRoundTripAndFreshKeys(t *testing.T) {
	r := ring(t, kek(t, "k1", 1))
	for _, n := range []int{1, 51, 200, secrets.MaxSealedPlaintext} {
		pt := bytes.Repeat([]byte{'x'}, n)
		a, err := r.Seal("k1", pt, rand.Reader)
		require.NoError(t, err)
		b, err := r.Seal("k1", pt, rand.Reader)
		require.NoError(t, err)
		require.NotEqual(t, a, b, "each seal draws a fresh data key and nonces")
		for _, s := range []string{a, b} {
			v, err := r.Open(s)
			require.NoError(t, err)
			require.Equal(t, pt, v.Bytes())
		}
	}
	_, err := r.Seal("k1", nil, rand.Reader)
	require.ErrorIs(t, err, secrets.ErrEmpty)
	_, err = r.Seal("k1", make([]byte, secrets.MaxSealedPlaintext+1), rand.Reader)
	require.ErrorIs(t, err, secrets.ErrTooLarge)
	_, err = r.Seal("k9", []byte("x"), rand.Reader)
	require.ErrorIs(t, err, secrets.ErrUnknownKEK)
}

// field replaces the i-th dot-separated field after "sealed:" of s.
func field(s string, i int, v string) string {
	f := strings.Split(strings.TrimPrefix(s, "sealed:"), ".")
	f[i] = v
	return "sealed:" + strings.Join(f, ".")
}

// flip changes one base64url character of field i at position pos to another valid one.
func flip(s string, i, pos int) string {
	f := strings.Split(strings.TrimPrefix(s, "sealed:"), ".")
	b := []byte(f[i])
	if b[pos] == 'A' {
		b[pos] = 'B'
	} else {
		b[pos] = 'A'
	}
	f[i] = string(b)
	return "sealed:" + strings.Join(f, ".")
}

// shortened drops the last byte of a base64url field, keeping the encoding canonical.
func shortened(t *testing.T, f string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(f)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b[:len(b)-1])
}

func TestOpenErrorsAreDistinct(t *testing.T) {
	r := katRing(t)
	other := ring(t, kek(t, "k1", 7)) // another key loaded under the same id
	second, err := r.Seal("k1", []byte("sk-test-another-secret"), rand.Reader)
	require.NoError(t, err)
	ctLen := len(strings.Split(katSealed, ".")[2])

	tests := []struct {
		name string
		ring *secrets.Keyring
		in   string
		want error
	}{
		{"unknown KEK id", r, field(katSealed, 1, "k2"), secrets.ErrUnknownKEK},
		{"no KEKs at all", nil, katSealed, secrets.ErrUnknownKEK},
		{"wrong key under the id", other, katSealed, secrets.ErrWrongKEK},
		{"key check edited", r, flip(katSealed, 3, 0), secrets.ErrWrongKEK},
		{"wrap nonce edited", r, flip(katSealed, 3, 10), secrets.ErrSealedTampered},
		{"wrapped key edited", r, flip(katSealed, 3, 40), secrets.ErrSealedTampered},
		{"data nonce edited", r, flip(katSealed, 2, 3), secrets.ErrSealedTampered},
		{"ciphertext edited", r, flip(katSealed, 2, 30), secrets.ErrSealedTampered},
		{"tag edited", r, flip(katSealed, 2, ctLen-2), secrets.ErrSealedTampered},
		{"ciphertext from another value", r, field(katSealed, 2, strings.Split(second, ".")[2]), secrets.ErrSealedTampered},
		{"wrapped key from another value", r, field(katSealed, 3, strings.Split(second, ".")[3]), secrets.ErrSealedTampered},
		{"ciphertext shortened", r, field(katSealed, 2, shortened(t, strings.Split(katSealed, ".")[2])), secrets.ErrSealedTampered},
		{"version v2", r, field(katSealed, 0, "v2"), secrets.ErrSealedVersion},
		{"version v0", r, field(katSealed, 0, "v0"), secrets.ErrSealedVersion},
		{"version v10", r, "sealed:v10", secrets.ErrSealedVersion},
		{"version garbage", r, field(katSealed, 0, "x1"), secrets.ErrSealedMalformed},
		{"extra field", r, katSealed + ".AAAA", secrets.ErrSealedMalformed},
		{"padding", r, katSealed + "=", secrets.ErrSealedMalformed},
		{"plus sign", r, field(katSealed, 2, "ab+d"+strings.Split(katSealed, ".")[2][4:]), secrets.ErrSealedMalformed},
		{"bad KEK id", r, field(katSealed, 1, "k 1"), secrets.ErrSealedMalformed},
		{"empty KEK id", r, field(katSealed, 1, ""), secrets.ErrSealedMalformed},
		{"long KEK id", r, field(katSealed, 1, strings.Repeat("k", 33)), secrets.ErrSealedMalformed},
		{"wrapped key too long", r, katSealed + "AAAA", secrets.ErrSealedMalformed},
		{"non-canonical base64", r, field(katSealed, 2, strings.Split(katSealed, ".")[2][:ctLen-1]+"n"), secrets.ErrSealedMalformed},
		{"not sealed", r, "env:FOO", secrets.ErrSealedMalformed},
		{"too long", r, "sealed:v1.k1." + strings.Repeat("A", 20000) + ".x", secrets.ErrSealedMalformed},
		{"empty", r, "sealed:", secrets.ErrSealedTruncated},
		{"ciphertext too short", r, field(katSealed, 2, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), secrets.ErrSealedTruncated},
	}
	classes := []error{secrets.ErrUnknownKEK, secrets.ErrWrongKEK, secrets.ErrSealedTampered, secrets.ErrSealedVersion,
		secrets.ErrSealedMalformed, secrets.ErrSealedTruncated}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.ring.Open(tc.in)
			require.ErrorIs(t, err, tc.want)
			require.Zero(t, v.Len())
			for _, c := range classes {
				if c != tc.want {
					require.NotErrorIs(t, err, c, "one failure, one class")
				}
			}
			requireNoEcho(t, err.Error(), tc.in)
		})
	}
}

// requireNoEcho fails if msg shows the plaintext, the KEK or any field of the sealed text.
func requireNoEcho(t *testing.T, msg, in string) {
	t.Helper()
	require.NotContains(t, msg, katPlaintext)
	require.NotContains(t, msg, "known-answer")
	require.NotContains(t, msg, katKEK[:20])
	for _, f := range strings.Split(strings.TrimPrefix(in, "sealed:"), ".") {
		if len(f) > 8 {
			require.NotContains(t, msg, f)
		}
	}
}

// TestTruncatedAnywhere cuts the vector at every length: each prefix is reported as
// truncated, never as tampered or malformed.
func TestTruncatedAnywhere(t *testing.T) {
	r := katRing(t)
	for n := len("sealed:"); n < len(katSealed); n++ {
		_, err := r.Open(katSealed[:n])
		require.ErrorIs(t, err, secrets.ErrSealedTruncated, "cut at %d", n)
		requireNoEcho(t, err.Error(), katSealed[:n])
	}
}

func TestRewrap(t *testing.T) {
	k1, k2 := kek(t, "k1", 1), kek(t, "k2", 2)
	both := ring(t, k1, k2)
	old, err := both.Seal("k1", []byte(fakeSecret), rand.Reader)
	require.NoError(t, err)

	moved, err := both.Rewrap(old, "k2", rand.Reader)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(moved, "sealed:v1.k2."), moved)
	require.NotEqual(t, strings.Split(old, ".")[2], strings.Split(moved, ".")[2], "a fresh data key")
	v, err := ring(t, kek(t, "k2", 2)).Open(moved) // k1 is gone
	require.NoError(t, err)
	require.Equal(t, fakeSecret, v.Reveal())

	same, err := both.Rewrap(moved, "k2", rand.Reader)
	require.NoError(t, err)
	require.Equal(t, moved, same, "a value already under the target KEK is left as it is")

	_, err = both.Rewrap(old, "k3", rand.Reader)
	require.ErrorIs(t, err, secrets.ErrUnknownKEK)
	_, err = ring(t, kek(t, "k2", 2)).Rewrap(old, "k2", rand.Reader)
	require.ErrorIs(t, err, secrets.ErrUnknownKEK, "nothing is rewrapped that does not open")
	_, err = both.Rewrap(flip(old, 2, 20), "k2", rand.Reader)
	require.ErrorIs(t, err, secrets.ErrSealedTampered)
}

func TestParseKEK(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb}, 32) // encodes with + and / (or - and _)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"base64 padded", base64.StdEncoding.EncodeToString(raw), true},
		{"base64 raw", base64.RawStdEncoding.EncodeToString(raw), true},
		{"base64url", base64.URLEncoding.EncodeToString(raw), true},
		{"base64url raw", base64.RawURLEncoding.EncodeToString(raw), true},
		{"hex", hex.EncodeToString(raw), true},
		{"trailing newline", base64.StdEncoding.EncodeToString(raw) + "\n", true},
		{"16 bytes", base64.StdEncoding.EncodeToString(raw[:16]), false},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(raw, 1)), false},
		{"hex 31 bytes", hex.EncodeToString(raw[:31]), false},
		{"bad hex", strings.Repeat("zz", 32), false},
		{"mixed alphabets", "+-" + base64.RawStdEncoding.EncodeToString(raw)[2:], false},
		{"passphrase", "correct horse battery staple", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := secrets.ParseKEK("k1", []byte(tc.in))
			if !tc.ok {
				require.ErrorIs(t, err, secrets.ErrBadKEK)
				if len(tc.in) > 4 {
					require.NotContains(t, err.Error(), tc.in)
				}
				return
			}
			require.NoError(t, err)
			want := ring(t, kek(t, "k1", 0xfb))
			s, err := want.Seal("k1", []byte("x"), rand.Reader)
			require.NoError(t, err)
			_, err = ring(t, k).Open(s)
			require.NoError(t, err, "decodes to the same key")
		})
	}
	_, err := secrets.ParseKEK("bad id", []byte(base64.StdEncoding.EncodeToString(raw)))
	require.ErrorIs(t, err, secrets.ErrBadKEK)
	_, err = secrets.NewKeyring(kek(t, "k1", 1), kek(t, "k1", 2))
	require.ErrorIs(t, err, secrets.ErrBadKEK)
}

func TestGenerateKEK(t *testing.T) {
	a, err := secrets.GenerateKEK(rand.Reader)
	require.NoError(t, err)
	b, err := secrets.GenerateKEK(rand.Reader)
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	_, err = secrets.ParseKEK("k1", []byte(a))
	require.NoError(t, err)
}

func TestKEKNeverPrintsKey(t *testing.T) {
	k, err := secrets.ParseKEK("k1", []byte(katKEK))
	require.NoError(t, err)
	r := ring(t, k)
	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		fmt.Fprintf(&out, verb+"\n", k)
		fmt.Fprintf(&out, verb+"\n", r)
		fmt.Fprintf(&out, verb+"\n", *r)
	}
	require.Contains(t, out.String(), "KEK(k1)")
	raw, _ := base64.StdEncoding.DecodeString(katKEK)
	for _, enc := range []string{katKEK[:16], hex.EncodeToString(raw)[:16], strings.Trim(fmt.Sprint(raw[:4]), "[]")} {
		require.NotContains(t, out.String(), enc)
	}
}

func TestWipe(t *testing.T) {
	r := katRing(t)
	r.Wipe()
	_, err := r.Open(katSealed)
	require.ErrorIs(t, err, secrets.ErrWrongKEK, "a wiped KEK opens nothing")

	v := secrets.NewValue([]byte(fakeSecret))
	c := v // copies share the bytes
	v.Wipe()
	require.Equal(t, make([]byte, len(fakeSecret)), c.Bytes())
	secrets.Value{}.Wipe() // the zero Value is fine
}
