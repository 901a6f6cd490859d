package budget

import "strings"

// CatalogDate is when the prices in DefaultCatalog were copied from the providers' public
// list-price pages. Prices change; operators override them per model in config.
const CatalogDate = "2025-11-01"

// DefaultCatalog returns the shipped list prices, keyed by the model name the provider
// reports, as a fresh map the caller may modify. The prices are standard (not batch, not
// priority, not long-context) list prices in micro-dollars per million tokens, copied on
// CatalogDate from:
//
//   - OpenAI: https://openai.com/api/pricing (input / cached input / output)
//   - Anthropic: https://docs.anthropic.com/en/docs/about-claude/pricing (base input /
//     cache hits / output, and 5-minute cache writes as CacheWritePerMTok)
//
// Embedding models bill input only; their output and cached prices are zero.
func DefaultCatalog() map[string]Price {
	return map[string]Price{
		// OpenAI.
		"gpt-4o":       {InputPerMTok: 2_500_000, OutputPerMTok: 10_000_000, CachedInputPerMTok: 1_250_000},
		"gpt-4o-mini":  {InputPerMTok: 150_000, OutputPerMTok: 600_000, CachedInputPerMTok: 75_000},
		"gpt-4.1":      {InputPerMTok: 2_000_000, OutputPerMTok: 8_000_000, CachedInputPerMTok: 500_000},
		"gpt-4.1-mini": {InputPerMTok: 400_000, OutputPerMTok: 1_600_000, CachedInputPerMTok: 100_000},
		"gpt-4.1-nano": {InputPerMTok: 100_000, OutputPerMTok: 400_000, CachedInputPerMTok: 25_000},
		"o3":           {InputPerMTok: 2_000_000, OutputPerMTok: 8_000_000, CachedInputPerMTok: 500_000},
		"o4-mini":      {InputPerMTok: 1_100_000, OutputPerMTok: 4_400_000, CachedInputPerMTok: 275_000},

		"text-embedding-3-small": {InputPerMTok: 20_000},
		"text-embedding-3-large": {InputPerMTok: 130_000},

		// Anthropic.
		"claude-sonnet-4-5": {InputPerMTok: 3_000_000, OutputPerMTok: 15_000_000, CachedInputPerMTok: 300_000, CacheWritePerMTok: 3_750_000},
		"claude-haiku-4-5":  {InputPerMTok: 1_000_000, OutputPerMTok: 5_000_000, CachedInputPerMTok: 100_000, CacheWritePerMTok: 1_250_000},
		"claude-opus-4-1":   {InputPerMTok: 15_000_000, OutputPerMTok: 75_000_000, CachedInputPerMTok: 1_500_000, CacheWritePerMTok: 18_750_000},
		"claude-3-5-haiku":  {InputPerMTok: 800_000, OutputPerMTok: 4_000_000, CachedInputPerMTok: 80_000, CacheWritePerMTok: 1_000_000},
	}
}

// Lookup finds model's price in catalog: by exact name first, then without a dated or
// "-latest" snapshot suffix, because providers report pinned snapshots
// ("gpt-4o-mini-2024-07-18", "claude-sonnet-4-5-20250929", "claude-3-5-haiku-latest")
// while catalogs list the family. It never matches by prefix: "gpt-4o-mini" is not "gpt-4o".
func Lookup(catalog map[string]Price, model string) (Price, bool) {
	if p, ok := catalog[model]; ok {
		return p, true
	}
	base, ok := stripSnapshot(model)
	if !ok {
		return Price{}, false
	}
	p, ok := catalog[base]
	return p, ok
}

// stripSnapshot removes a trailing "-YYYY-MM-DD", "-YYYYMMDD" or "-latest".
func stripSnapshot(model string) (string, bool) {
	if base, ok := strings.CutSuffix(model, "-latest"); ok {
		return base, base != ""
	}
	i := strings.LastIndexByte(model, '-')
	if i <= 0 {
		return "", false
	}
	if tail := model[i+1:]; len(tail) == 8 && allDigits(tail) {
		return model[:i], true
	}
	// "-YYYY-MM-DD": the last 11 characters.
	if n := len(model); n > 11 {
		t := model[n-11:]
		if t[0] == '-' && t[5] == '-' && t[8] == '-' && allDigits(t[1:5]) && allDigits(t[6:8]) && allDigits(t[9:]) {
			return model[:n-11], true
		}
	}
	return "", false
}
