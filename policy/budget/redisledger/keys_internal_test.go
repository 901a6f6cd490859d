package redisledger

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHashTag(t *testing.T) {
	for _, tc := range []struct {
		key, tag string
	}{
		{"tg:{t:platform}:k:abc:usd:d:20261127", "{t:platform}"},
		{"{t:a}", "{t:a}"},
		{"{t:a}{t:b}", "{t:a}"}, // the first tag wins
		{"x{a}}y", "{a}"},
		{"a{{b}}", "{{b}"}, // the tag runs from the first { to the next }
		{"a{}b{c}", ""},    // an empty first tag: Redis hashes the whole key
		{"a{b", ""},
		{"a}b{", ""},
		{"plain", ""},
		{"", ""},
	} {
		t.Run(tc.key, func(t *testing.T) {
			require.Equal(t, tc.tag, tagOf(tc.key))
		})
	}
}

func TestSettledKey(t *testing.T) {
	for _, tc := range []struct {
		first, want string
	}{
		{"tg:{t:platform}:k:abc:usd:d:20261127", "tg:{t:platform}:settled:r1"},
		{"pre:tg:{t:p}:team:usd", "pre:tg:{t:p}:settled:r1"},
		{"plain:key", "{plain:key}:settled:r1"},
	} {
		t.Run(tc.first, func(t *testing.T) {
			got := settledKey(tc.first, "r1")
			require.Equal(t, tc.want, got)
			// The marker hashes to the same slot as the counter: same tag, or the whole
			// tagless key as its tag.
			if tag := tagOf(tc.first); tag != "" {
				require.Equal(t, tag, tagOf(got))
			} else {
				require.Equal(t, "{"+tc.first+"}", tagOf(got))
			}
		})
	}
}

func TestClampLimit(t *testing.T) {
	require.Equal(t, int64(MaxAmount), clampLimit(math.MaxInt64))
	require.Equal(t, int64(MaxAmount), clampLimit(MaxAmount))
	require.Equal(t, int64(100), clampLimit(100))
	require.Equal(t, int64(0), clampLimit(0))
	require.Equal(t, int64(-1), clampLimit(-5))
	require.Equal(t, int64(-1), clampLimit(math.MinInt64))
}

func TestExpiresMs(t *testing.T) {
	require.Equal(t, "0", expiresMs(time.Time{}))
	require.Equal(t, "1767225600000", expiresMs(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	require.Equal(t, "1", expiresMs(time.Unix(-10, 0)), "a pre-1970 expiry is not 'never'")
}

// TestScriptsConvention pins the ARGV layout the Go side builds against the scripts' text,
// so a change on one side without the other fails here rather than in production.
func TestScriptsConvention(t *testing.T) {
	require.Contains(t, reserveLua, "ARGV[3 * i]")       // limit
	require.Contains(t, reserveLua, "ARGV[3 * i + 1]")   // amount
	require.Contains(t, reserveLua, "ARGV[3 * i + 2]")   // expires
	require.Contains(t, settleLua, "ARGV[2 * i + 1]")    // actual
	require.Contains(t, settleLua, "ARGV[2 * i + 2]")    // expires
	require.Contains(t, expireLua, "ARGV[#ARGV]")        // the clock, last
	require.Contains(t, balanceLua, "tonumber(ARGV[1])") // the clock, alone
	require.Contains(t, reserveLua, "KEYS[#KEYS]")
	require.Contains(t, settleLua, "KEYS[#KEYS]")
	require.Contains(t, extendLua, "ARGV[2 + i]") // expires
	require.Contains(t, extendLua, "KEYS[#KEYS]")
	require.NotEqual(t, reserveScript.Hash(), settleScript.Hash())
}
