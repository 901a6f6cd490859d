package budget

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// MicrosPerUSD is the number of micro-dollars in one US dollar. Every amount of money in this
// package is an int64 of micro-dollars; no float is ever part of ledger math.
const MicrosPerUSD = 1_000_000

// tokensPerMTok is the divisor that turns tokens times a per-million-token price into a cost.
const tokensPerMTok = 1_000_000

// ParseUSD parses a non-negative decimal amount of US dollars ("50", "0.45", "1.000001")
// into micro-dollars, exactly. It accepts digits, optionally followed by a point and one to
// six digits; it rejects signs, exponents, spaces, a leading or trailing point, more than six
// decimals and amounts that do not fit in an int64 of micro-dollars. Errors wrap
// ErrInvalidAmount.
func ParseUSD(s string) (int64, error) {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") || len(frac) > 6 || !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/MicrosPerUSD {
		return 0, fmt.Errorf("%w: %q is too large", ErrInvalidAmount, s)
	}
	var f int64
	for i := range 6 {
		f *= 10
		if i < len(frac) {
			f += int64(frac[i] - '0')
		}
	}
	v := w * MicrosPerUSD
	if v > math.MaxInt64-f {
		return 0, fmt.Errorf("%w: %q is too large", ErrInvalidAmount, s)
	}
	return v + f, nil
}

// allDigits reports whether s holds only ASCII digits (true for "").
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatUSD formats micro-dollars as a decimal USD amount with no trailing zeros in the
// fraction: 50_000_000 is "50", 450_000 is "0.45", 1_000_001 is "1.000001" and -1_500_000 is
// "-1.5". ParseUSD(FormatUSD(v)) == v for every v >= 0.
func FormatUSD(micros int64) string {
	var sign string
	u := uint64(micros)
	if micros < 0 {
		sign, u = "-", -u // two's complement: correct for math.MinInt64 too
	}
	whole := strconv.FormatUint(u/MicrosPerUSD, 10)
	frac := u % MicrosPerUSD
	if frac == 0 {
		return sign + whole
	}
	fs := strconv.FormatUint(frac+MicrosPerUSD, 10)[1:] // six digits, zero-padded
	return sign + whole + "." + strings.TrimRight(fs, "0")
}

// Price is a model's list price in micro-dollars per million tokens, so $2.50 per million
// input tokens is InputPerMTok 2_500_000. A zero CachedInputPerMTok or CacheWritePerMTok
// means the provider does not price that class separately, and InputPerMTok applies.
type Price struct {
	InputPerMTok       int64
	OutputPerMTok      int64
	CachedInputPerMTok int64
	CacheWritePerMTok  int64
	// CacheWrite1hPerMTok prices cache writes with a one-hour lifetime (Anthropic: twice the
	// base input price). Zero means twice InputPerMTok when CacheWritePerMTok is set (the
	// provider prices cache writes), and InputPerMTok when it is not; never less than the
	// five-minute write.
	CacheWrite1hPerMTok int64
}

// IsZero reports whether no price is set (a model that costs nothing, or an unknown one).
func (p Price) IsZero() bool { return p == Price{} }

func (p Price) cachedInput() int64 {
	if p.CachedInputPerMTok == 0 {
		return p.InputPerMTok
	}
	return p.CachedInputPerMTok
}

func (p Price) cacheWrite() int64 {
	if p.CacheWritePerMTok == 0 {
		return p.InputPerMTok
	}
	return p.CacheWritePerMTok
}

func (p Price) cacheWrite1h() int64 {
	if p.CacheWrite1hPerMTok == 0 {
		if p.CacheWritePerMTok == 0 {
			return p.InputPerMTok
		}
		return max(satDouble(p.InputPerMTok), p.cacheWrite())
	}
	return p.CacheWrite1hPerMTok
}

// satDouble is 2n, saturating instead of overflowing.
func satDouble(n int64) int64 {
	if n > math.MaxInt64/2 {
		return math.MaxInt64
	}
	return 2 * n
}

// Cost is what usage costs at this price, in micro-dollars: the sum over the four token
// classes of tokens times price per million tokens, divided by one million and rounded up
// once (so a request never costs less than it did). The sum is exact in 128 bits, so any
// token count up to 1e12 at any price is correct; a result beyond int64 saturates at
// math.MaxInt64. Negative counts or prices count as zero.
//
// Known answer: 1000 input and 500 output tokens of gpt-4o-mini ($0.15 and $0.60 per
// million) cost 150 + 300 = 450 micro-dollars.
func (p Price) Cost(u llm.Usage) int64 {
	var s acc128
	s.add(u.InputTokens, p.InputPerMTok)
	s.add(u.OutputTokens, p.OutputPerMTok)
	s.add(u.CachedInputTokens, p.cachedInput())
	oneHour := min(max(u.CacheWrite1hTokens, 0), max(u.CacheWriteTokens, 0))
	s.add(u.CacheWriteTokens-oneHour, p.cacheWrite())
	s.add(oneHour, p.cacheWrite1h())
	return s.ceilDiv(tokensPerMTok)
}

// MaxCost is a conservative cost for a request not yet sent: every input token at the
// dearest input rate (a cache write costs more than plain input at Anthropic), and every
// output token at the output rate. Use it for Estimate.CostMicros.
func (p Price) MaxCost(inputTokens, outputTokens int64) int64 {
	in := max(p.InputPerMTok, p.cachedInput(), p.cacheWrite(), p.cacheWrite1h())
	var s acc128
	s.add(inputTokens, in)
	s.add(outputTokens, p.OutputPerMTok)
	return s.ceilDiv(tokensPerMTok)
}

// acc128 is an unsigned 128-bit accumulator of products; it saturates instead of wrapping.
type acc128 struct{ hi, lo uint64 }

// add adds a*b, treating negative factors as zero.
func (s *acc128) add(a, b int64) {
	if a <= 0 || b <= 0 {
		return
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	var c uint64
	s.lo, c = bits.Add64(s.lo, lo, 0)
	s.hi, c = bits.Add64(s.hi, hi, c)
	if c != 0 {
		s.hi, s.lo = math.MaxUint64, math.MaxUint64
	}
}

// ceilDiv returns ceil(s/d), saturated at math.MaxInt64.
func (s acc128) ceilDiv(d uint64) int64 {
	if s.hi >= d { // the quotient would not fit in 64 bits
		return math.MaxInt64
	}
	q, r := bits.Div64(s.hi, s.lo, d)
	if q >= math.MaxInt64 {
		return math.MaxInt64
	}
	if r != 0 {
		q++
	}
	return int64(q)
}
