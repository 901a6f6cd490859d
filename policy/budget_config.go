package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/secrets"
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
	// Hold is how long a reservation lives if it is never settled (a crash). A request's
	// reservation is renewed while its stream runs, so streams may last longer. Default 15m.
	Hold time.Duration `mapstructure:"reservation_hold"`
	// FailOpen lists limit kinds that let requests through when the ledger cannot answer.
	// Default: none (503, fail closed).
	FailOpen []string `mapstructure:"fail_open"`
	// DefaultMaxOutputTokens is reserved when neither the request nor the model sets a cap.
	DefaultMaxOutputTokens int64 `mapstructure:"default_max_output_tokens"`
	// InjectMaxTokens writes the reserved output cap into requests that set none, so the
	// provider cannot produce more than was reserved. Default (nil) true: with it off, a
	// request without a cap is bounded by the provider's own output limit, not by the
	// reservation, and concurrent requests can settle past a budget.
	InjectMaxTokens *bool `mapstructure:"inject_max_tokens"`
}

// EmbeddedConfig is the in-process ledger's file.
type EmbeddedConfig struct {
	Path          string        `mapstructure:"path"`
	FlushInterval time.Duration `mapstructure:"flush_interval"`
}

// RedisConfig connects the shared ledger. Changing it needs a restart.
type RedisConfig struct {
	// Addrs is one address for a single node, several for Redis Cluster: "host:port",
	// "redis://host:port", or "rediss://host:port" for TLS (then on every address).
	Addrs []string `mapstructure:"addrs"`
	// Username is the Redis ACL user: a name, or a secret reference (env:NAME or
	// file:PATH). Empty: the default user.
	Username string `mapstructure:"username"`
	// Password is a secret reference (env:NAME or file:PATH), or empty.
	Password string         `mapstructure:"password"`
	DB       int            `mapstructure:"db"`
	Timeout  time.Duration  `mapstructure:"timeout"`
	TLS      RedisTLSConfig `mapstructure:"tls"`
}

// RedisTLSConfig verifies the server of rediss:// addresses.
type RedisTLSConfig struct {
	// CAFile is a PEM file of the CA certificates the server's certificate must chain to (a
	// path, relative to the config file's directory; "file:PATH" is accepted too). Empty:
	// the system's roots.
	CAFile string `mapstructure:"ca_file"`
	// ServerName is the name the server's certificate must carry. Empty: the host of each
	// address.
	ServerName string `mapstructure:"server_name"`
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
	// CacheWrite1h prices one-hour cache writes (Anthropic); default twice the input price.
	CacheWrite1h string `mapstructure:"cache_write_1h"`
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
	if b.InjectMaxTokens == nil {
		inject := true
		b.InjectMaxTokens = &inject
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
		{"cache_write_1h", p.CacheWrite1h, &out.CacheWrite1hPerMTok},
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
		b.Redis.validate(add)
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
		if m.MaxInputTokens < 0 {
			add(path+".max_input_tokens", "must not be negative")
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

// validate checks the connection settings a config check can judge; the addresses are
// parsed in full when the ledger is opened.
func (r *RedisConfig) validate(add func(string, string, ...any)) {
	if len(r.Addrs) == 0 {
		add("budget.redis.addrs", "is required with ledger: redis")
	}
	tlsAddrs := 0
	for i, a := range r.Addrs {
		scheme, _, isURL := strings.Cut(a, "://")
		switch {
		case !isURL || strings.EqualFold(scheme, "redis"):
		case strings.EqualFold(scheme, "rediss"):
			tlsAddrs++
		default:
			add(fmt.Sprintf("budget.redis.addrs[%d]", i), "must be host:port, redis://host:port or rediss://host:port")
		}
	}
	if tlsAddrs > 0 && tlsAddrs < len(r.Addrs) {
		add("budget.redis.addrs", "every address must use rediss:// or none")
	}
	if tlsAddrs == 0 && r.TLS != (RedisTLSConfig{}) {
		add("budget.redis.tls", "needs rediss:// addresses")
	}
	if r.Password != "" {
		if _, err := secrets.ParseRef(r.Password); err != nil {
			add("budget.redis.password", "must be a secret reference (env:NAME or file:PATH)")
		}
	}
	if secrets.LooksLikeReference(r.Username) {
		if _, err := secrets.ParseRef(r.Username); err != nil {
			add("budget.redis.username", "invalid secret reference: %v", err)
		}
	}
	if r.DB < 0 {
		add("budget.redis.db", "must not be negative")
	}
	if r.Timeout < 0 {
		add("budget.redis.timeout", "must not be negative")
	}
}

// LedgerChanges lists the settings that differ between b (in force) and next, by field
// path, among those fixed for the life of the process: which ledger, and how it is reached.
// A reload that changes any of them cannot take effect without a restart. Secret values
// are not compared, only their references.
func (b BudgetConfig) LedgerChanges(next BudgetConfig) []string {
	b.applyDefaults()
	next.applyDefaults()
	var out []string
	diff := func(path string, changed bool) {
		if changed {
			out = append(out, path)
		}
	}
	diff("budget.ledger", b.Ledger != next.Ledger)
	if b.Ledger != next.Ledger {
		return out
	}
	switch b.Ledger {
	case LedgerRedis:
		r, n := b.Redis, next.Redis
		diff("budget.redis.addrs", !slices.Equal(r.Addrs, n.Addrs))
		diff("budget.redis.username", r.Username != n.Username)
		diff("budget.redis.password", r.Password != n.Password)
		diff("budget.redis.db", r.DB != n.DB)
		diff("budget.redis.timeout", r.Timeout != n.Timeout)
		diff("budget.redis.tls", r.TLS != n.TLS)
	default:
		diff("budget.embedded.path", b.Embedded.Path != next.Embedded.Path)
		diff("budget.embedded.flush_interval", b.Embedded.FlushInterval != next.Embedded.FlushInterval)
	}
	return out
}
