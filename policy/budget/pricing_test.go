package budget_test

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

func TestParseUSD(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"50", 50_000_000, true},
		{"0.45", 450_000, true},
		{"1.000001", 1_000_001, true},
		{"0.000001", 1, true},
		{"2.5", 2_500_000, true},
		{"007.10", 7_100_000, true},
		{"9223372036854.775807", math.MaxInt64, true},
		{"9223372036854.775808", 0, false},
		{"9223372036855", 0, false},
		{"99999999999999999999", 0, false},
		{"1.0000001", 0, false},
		{"", 0, false},
		{".5", 0, false},
		{"5.", 0, false},
		{".", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1e6", 0, false},
		{"1E6", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1,5", 0, false},
		{"1.5.0", 0, false},
		{"1_000", 0, false},
		{"$1", 0, false},
		{"0x10", 0, false},
		{"NaN", 0, false},
		{"١", 0, false}, // a non-ASCII digit
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := budget.ParseUSD(tc.in)
			if !tc.ok {
				require.ErrorIs(t, err, budget.ErrInvalidAmount)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestFormatUSD(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{1, "0.000001"},
		{450_000, "0.45"},
		{50_000_000, "50"},
		{1_000_001, "1.000001"},
		{1_500_000, "1.5"},
		{-1_500_000, "-1.5"},
		{-1, "-0.000001"},
		{math.MaxInt64, "9223372036854.775807"},
		{math.MinInt64, "-9223372036854.775808"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			require.Equal(t, tc.want, budget.FormatUSD(tc.in))
			if tc.in >= 0 {
				back, err := budget.ParseUSD(tc.want)
				require.NoError(t, err)
				require.Equal(t, tc.in, back)
			}
		})
	}
}

func FuzzParseUSD(f *testing.F) {
	for _, s := range []string{"0", "0.45", "50", "1.000001", "1e6", "-1", "9223372036854.775807", ".5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := budget.ParseUSD(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseUSD(%q) = %d < 0", s, v)
		}
		// Accepted input is canonical up to leading zeros in the whole part and trailing
		// zeros in the fraction.
		back, err := budget.ParseUSD(budget.FormatUSD(v))
		if err != nil || back != v {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, v, budget.FormatUSD(v), back, err)
		}
	})
}

func TestCost(t *testing.T) {
	t.Parallel()
	cat := budget.DefaultCatalog()
	tests := []struct {
		name  string
		price budget.Price
		u     llm.Usage
		want  int64
	}{
		{"gpt-4o-mini 1000 in 500 out", cat["gpt-4o-mini"], llm.Usage{InputTokens: 1000, OutputTokens: 500}, 450},
		{"gpt-4o 1M in 1M out", cat["gpt-4o"], llm.Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}, 12_500_000},
		{"gpt-4o cached", cat["gpt-4o"], llm.Usage{InputTokens: 1000, CachedInputTokens: 1000, OutputTokens: 100}, 2500 + 1250 + 1000},
		{"claude-sonnet-4-5 all four", cat["claude-sonnet-4-5"],
			llm.Usage{InputTokens: 1000, OutputTokens: 1000, CachedInputTokens: 10_000, CacheWriteTokens: 2000},
			3000 + 15_000 + 3000 + 7500},
		{"one token rounds up", cat["gpt-4.1-nano"], llm.Usage{InputTokens: 1}, 1},                     // 0.1 micro
		{"rounding is of the sum", cat["gpt-4.1-nano"], llm.Usage{InputTokens: 5, OutputTokens: 1}, 1}, // 0.5 + 0.4
		{"cached price 0 falls back to input", budget.Price{InputPerMTok: 2_000_000}, llm.Usage{CachedInputTokens: 500_000}, 1_000_000},
		{"cache write 0 falls back to input", cat["gpt-4o"], llm.Usage{CacheWriteTokens: 1_000_000}, 2_500_000},
		{"embedding", cat["text-embedding-3-small"], llm.Usage{InputTokens: 123_456}, 2470}, // 2469.12
		// One-hour cache writes cost twice the input price at Anthropic, not the 1.25 of the
		// five-minute default: 1000 of the 3000 written at $6, 2000 at $3.75 a million.
		{"claude-sonnet-4-5 one-hour cache writes", cat["claude-sonnet-4-5"],
			llm.Usage{CacheWriteTokens: 3000, CacheWrite1hTokens: 1000}, 6000 + 7500},
		{"one-hour price set", budget.Price{InputPerMTok: 1_000_000, CacheWritePerMTok: 1_250_000, CacheWrite1hPerMTok: 3_000_000},
			llm.Usage{CacheWriteTokens: 1000, CacheWrite1hTokens: 1000}, 3000},
		{"one-hour split above the total is capped", cat["claude-sonnet-4-5"],
			llm.Usage{CacheWriteTokens: 1000, CacheWrite1hTokens: 5000}, 6000},
		{"zero usage", cat["claude-opus-4-1"], llm.Usage{}, 0},
		{"negative counts as zero", cat["gpt-4o"], llm.Usage{InputTokens: -1_000_000, OutputTokens: 1000}, 10_000},
		{"1e12 tokens at opus output", cat["claude-opus-4-1"], llm.Usage{OutputTokens: 1e12}, 75_000_000_000_000},
		{"1e12 tokens of every class", budget.Price{InputPerMTok: 1e12, OutputPerMTok: 1e12, CachedInputPerMTok: 1e12, CacheWritePerMTok: 1e12},
			llm.Usage{InputTokens: 1e12, OutputTokens: 1e12, CachedInputTokens: 1e12, CacheWriteTokens: 1e12}, 4e18},
		{"saturates", budget.Price{InputPerMTok: math.MaxInt64, OutputPerMTok: math.MaxInt64},
			llm.Usage{InputTokens: math.MaxInt64, OutputTokens: math.MaxInt64}, math.MaxInt64},
		{"just below saturation", budget.Price{InputPerMTok: 1_000_000}, llm.Usage{InputTokens: math.MaxInt64}, math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.price.Cost(tc.u))
		})
	}
}

func TestMaxCost(t *testing.T) {
	t.Parallel()
	cat := budget.DefaultCatalog()
	// Anthropic cache writes cost more than input, one-hour writes most (twice input), so the
	// estimate uses them.
	require.Equal(t, int64(6000+15_000), cat["claude-sonnet-4-5"].MaxCost(1000, 1000))
	require.Equal(t, int64(150+300), cat["gpt-4o-mini"].MaxCost(1000, 500))
	require.Equal(t, int64(0), budget.Price{}.MaxCost(1000, 1000))
}

// TestDefaultCatalog checks every shipped price against the list prices as written on the
// providers' pages (USD per million tokens: input, output, cached input, cache write).
func TestDefaultCatalog(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"gpt-4o":                 "2.50 10.00 1.25 0",
		"gpt-4o-mini":            "0.15 0.60 0.075 0",
		"gpt-4.1":                "2.00 8.00 0.50 0",
		"gpt-4.1-mini":           "0.40 1.60 0.10 0",
		"gpt-4.1-nano":           "0.10 0.40 0.025 0",
		"o3":                     "2.00 8.00 0.50 0",
		"o4-mini":                "1.10 4.40 0.275 0",
		"text-embedding-3-small": "0.02 0 0 0",
		"text-embedding-3-large": "0.13 0 0 0",
		"claude-sonnet-4-5":      "3.00 15.00 0.30 3.75",
		"claude-haiku-4-5":       "1.00 5.00 0.10 1.25",
		"claude-opus-4-1":        "15.00 75.00 1.50 18.75",
		"claude-3-5-haiku":       "0.80 4.00 0.08 1.00",
	}
	cat := budget.DefaultCatalog()
	require.Len(t, cat, len(want))
	for model, prices := range want {
		f := strings.Fields(prices)
		var v [4]int64
		for i := range v {
			var err error
			v[i], err = budget.ParseUSD(f[i])
			require.NoError(t, err)
		}
		require.Equal(t, budget.Price{InputPerMTok: v[0], OutputPerMTok: v[1], CachedInputPerMTok: v[2], CacheWritePerMTok: v[3]}, cat[model], model)
	}
	cat["gpt-4o"] = budget.Price{}
	require.False(t, budget.DefaultCatalog()["gpt-4o"].IsZero(), "each call returns a fresh map")
	require.Equal(t, "2025-11-01", budget.CatalogDate)
}

func TestLookup(t *testing.T) {
	t.Parallel()
	cat := budget.DefaultCatalog()
	tests := []struct {
		model string
		want  string // catalog entry, "" for none
	}{
		{"gpt-4o", "gpt-4o"},
		{"gpt-4o-mini", "gpt-4o-mini"},
		{"gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
		{"gpt-4o-2024-08-06", "gpt-4o"},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{"claude-3-5-haiku-latest", "claude-3-5-haiku"},
		{"gpt-4o-turbo", ""},
		{"gpt-4o-2024-08", ""},
		{"gpt-4o-2024x08-06", ""},
		{"2024-08-06", ""},
		{"-latest", ""},
		{"", ""},
		{"claude-sonnet-4", ""},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			p, ok := budget.Lookup(cat, tc.model)
			require.Equal(t, tc.want != "", ok)
			require.Equal(t, cat[tc.want], p)
		})
	}
}
