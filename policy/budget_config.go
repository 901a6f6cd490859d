package policy

import (
	"fmt"
	"time"

	"github.com/tollgate-ai/tollgate/policy/budget"
)

// BudgetConfig configures limits enforcement.
type BudgetConfig struct {
	// Ledger is "embedded" (default: in-process, persisted to Embedded.Path) or "redis" (shared
	// by many tollgate replicas). Changing it needs a restart.
	Ledger   string         `mapstructure:"ledger"`
	Embedded EmbeddedConfig `mapstructure:"embedded"`
	Redis    RedisConfig    `mapstructure:"redis"`
	// Timezone for calendar windows (usd_per_day, usd_per_month). Default UTC.
	Timezone string `mapstructure:"timezone"`
	// Hold is how long a reservation lives if it is never settled (a crash); long streams must
	// finish within it. Default 15m.
	Hold time.Duration `mapstructure:"reservation_hold"`
	// FailOpen lists limit kinds that let requests through when the ledger cannot answer.
	// Default: none (503, fail closed).
	FailOpen []string `mapstructure:"fail_open"`
	// DefaultMaxOutputTokens is reserved when neither the request nor the model sets a cap.
	DefaultMaxOutputTokens int64 `mapstructure:"default_max_output_tokens"`
	// InjectMaxTokens writes the reserved output cap into requests that set none, so the
	// provider cannot produce more than was reserved.
	InjectMaxTokens bool `mapstructure:"inject_max_tokens"`
}

// EmbeddedConfig is the in-process ledger's file.
type EmbeddedConfig struct {
	Path          string        `mapstructure:"path"`
	FlushInterval time.Duration `mapstructure:"flush_interval"`
}

// RedisConfig connects the shared ledger.
type RedisConfig struct {
	// Addrs is one address for a single node, several for Redis Cluster.
	Addrs []string `mapstructure:"addrs"`
	// Password is a secret reference (env:NAME or file:PATH), or empty.
	Password string        `mapstructure:"password"`
	DB       int           `mapstructure:"db"`
	Timeout  time.Duration `mapstructure:"timeout"`
}

// LimitsConfig holds per-key or per-team limits; zero or empty means no limit. USD amounts
// are decimal strings ("0.45", "50") and are converted to integer micro-dollars.
type LimitsConfig struct {
	RequestsPerMinute int64  `mapstructure:"requests_per_minute"`
	TokensPerMinute   int64  `mapstructure:"tokens_per_minute"`
	USDPerDay         string `mapstructure:"usd_per_day"`
	USDPerMonth       string `mapstructure:"usd_per_month"`
	USDLifetime       string `mapstructure:"usd_lifetime"`
}

// PricingConfig is USD per million tokens, as decimal strings.
type PricingConfig struct {
	Input       string `mapstructure:"input"`
	Output      string `mapstructure:"output"`
	CachedInput string `mapstructure:"cached_input"`
	CacheWrite  string `mapstructure:"cache_write"`
}

// Budget defaults.
const (
	LedgerEmbedded                = "embedded"
	LedgerRedis                   = "redis"
	DefaultLedgerPath             = "tollgate-ledger.json"
	DefaultHold                   = 15 * time.Minute
	DefaultMaxOutputTokensDefault = 4096
	DefaultRedisTimeout           = 250 * time.Millisecond
)

func (b *BudgetConfig) applyDefaults() {
	if b.Ledger == "" {
		b.Ledger = LedgerEmbedded
	}
	if b.Embedded.Path == "" {
		b.Embedded.Path = DefaultLedgerPath
	}
	if b.Embedded.FlushInterval == 0 {
		b.Embedded.FlushInterval = time.Second
	}
	if b.Redis.Timeout == 0 {
		b.Redis.Timeout = DefaultRedisTimeout
	}
	if b.Timezone == "" {
		b.Timezone = "UTC"
	}
	if b.Hold == 0 {
		b.Hold = DefaultHold
	}
	if b.DefaultMaxOutputTokens == 0 {
		b.DefaultMaxOutputTokens = DefaultMaxOutputTokensDefault
	}
}

// compile converts the limits to ledger units.
func (l LimitsConfig) compile(path string, add func(string, string, ...any)) budget.Limits {
	out := budget.Limits{RequestsPerMinute: l.RequestsPerMinute, TokensPerMinute: l.TokensPerMinute}
	if l.RequestsPerMinute < 0 {
		add(path+".requests_per_minute", "must not be negative")
	}
	if l.TokensPerMinute < 0 {
		add(path+".tokens_per_minute", "must not be negative")
	}
	for _, f := range []struct {
		name string
		val  string
		dst  *int64
	}{
		{"usd_per_day", l.USDPerDay, &out.USDPerDay},
		{"usd_per_month", l.USDPerMonth, &out.USDPerMonth},
		{"usd_lifetime", l.USDLifetime, &out.USDLifetime},
	} {
		if f.val == "" {
			continue
		}
		v, err := budget.ParseUSD(f.val)
		if err != nil {
			add(path+"."+f.name, "must be a decimal USD amount with at most 6 decimals")
			continue
		}
		*f.dst = v
	}
	return out
}

// compile converts a pricing override to micro-dollars per million tokens.
func (p PricingConfig) compile(path string, add func(string, string, ...any)) budget.Price {
	var out budget.Price
	for _, f := range []struct {
		name string
		val  string
		dst  *int64
	}{
		{"input", p.Input, &out.InputPerMTok},
		{"output", p.Output, &out.OutputPerMTok},
		{"cached_input", p.CachedInput, &out.CachedInputPerMTok},
		{"cache_write", p.CacheWrite, &out.CacheWritePerMTok},
	} {
		if f.val == "" {
			continue
		}
		v, err := budget.ParseUSD(f.val)
		if err != nil {
			add(path+"."+f.name, "must be a decimal USD amount per million tokens")
			continue
		}
		*f.dst = v
	}
	return out
}

// hasUSD reports whether any USD limit is set.
func hasUSD(l budget.Limits) bool { return l.USDPerDay > 0 || l.USDPerMonth > 0 || l.USDLifetime > 0 }

// isZero reports whether no limit is set.
func isZero(l budget.Limits) bool { return l == budget.Limits{} }

// validateBudget checks the budget section and every limit and price, by field path.
func (c *Config) validateBudget(add func(string, string, ...any)) {
	b := &c.Budget
	switch b.Ledger {
	case LedgerEmbedded:
	case LedgerRedis:
		if len(b.Redis.Addrs) == 0 {
			add("budget.redis.addrs", "is required with ledger: redis")
		}
	default:
		add("budget.ledger", "must be embedded or redis")
	}
	if _, err := time.LoadLocation(b.Timezone); err != nil {
		add("budget.timezone", "unknown time zone %q", b.Timezone)
	}
	if b.Hold < time.Minute {
		add("budget.reservation_hold", "must be at least 1m")
	}
	if b.DefaultMaxOutputTokens < 1 {
		add("budget.default_max_output_tokens", "must be positive")
	}
	for i, k := range b.FailOpen {
		if _, ok := kindByName(k); !ok {
			add(fmt.Sprintf("budget.fail_open[%d]", i), "unknown limit %q", k)
		}
	}
	usd := false
	for i, t := range c.Teams {
		usd = hasUSD(t.Limits.compile(fmt.Sprintf("teams[%d].limits", i), add)) || usd
	}
	for i, k := range c.Keys {
		usd = hasUSD(k.Limits.compile(fmt.Sprintf("keys[%d].limits", i), add)) || usd
	}
	catalog := budget.DefaultCatalog()
	for i, m := range c.Models {
		path := fmt.Sprintf("models[%d]", i)
		if m.MaxOutputTokens < 0 {
			add(path+".max_output_tokens", "must not be negative")
		}
		if m.Pricing != nil {
			m.Pricing.compile(path+".pricing", add)
			continue
		}
		up := m.Upstream
		if up == "" {
			up = m.Name
		}
		if _, ok := budget.Lookup(catalog, up); !ok && usd {
			// A USD limit cannot be enforced on a model without a price.
			add(path+".pricing", "no catalog price for %q: set pricing (USD per million tokens) since USD limits are configured", up)
		}
	}
}

// kindByName maps a limit name ("usd_per_day") to its kind.
func kindByName(name string) (budget.Kind, bool) {
	for k := budget.Kind(0); k < budget.NumKinds; k++ {
		if k.String() == name {
			return k, true
		}
	}
	return 0, false
}
