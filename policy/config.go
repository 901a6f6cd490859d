// Package policy makes every Tollgate decision: which virtual key is calling, whether it may
// use the endpoint and model it asks for, which provider serves it and with which credential.
// It has no Envoy or gRPC imports; extproc maps its decisions onto the ext_proc protocol.
package policy

import "time"

// Config is the typed form of tollgate's YAML configuration. cmd/tollgate reads it with viper
// (the only place viper is used) and hands it here; Validate and Compile never read files
// other than the secret references they resolve.
type Config struct {
	Listen    ListenConfig     `mapstructure:"listen"`
	Admin     AdminConfig      `mapstructure:"admin"`
	Log       LogConfig        `mapstructure:"log"`
	Security  SecurityConfig   `mapstructure:"security"`
	Limits    RequestLimits    `mapstructure:"limits"`
	Providers []ProviderConfig `mapstructure:"providers"`
	Models    []ModelConfig    `mapstructure:"models"`
	Teams     []TeamConfig     `mapstructure:"teams"`
	Keys      []KeyConfig      `mapstructure:"keys"`
	// KeyFiles lists extra YAML files holding a `keys:` list, so keys can be managed apart
	// from the main file (for example a mounted Secret). Relative paths are resolved against
	// the directory of the main config file.
	KeyFiles []string `mapstructure:"key_files"`
	// Budget configures the spend and rate-limit ledger.
	Budget BudgetConfig `mapstructure:"budget"`
	// Guardrails defines detection profiles that teams and keys select.
	Guardrails GuardrailsConfig `mapstructure:"guardrails"`
	// Audit configures audit events.
	Audit AuditConfig `mapstructure:"audit"`
	// Metrics configures the Prometheus endpoint on the admin listener.
	Metrics MetricsConfig `mapstructure:"metrics"`
	// Reload is how often the config file (and key files) are checked for changes.
	Reload time.Duration `mapstructure:"reload_interval"`
}

// MetricsConfig adjusts /metrics.
type MetricsConfig struct {
	// PerKeyLabels adds series labelled by public key id (cardinality grows with keys).
	PerKeyLabels bool `mapstructure:"per_key_labels"`
}

// LogConfig selects the log level and encoding.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"` // json (default) or console
}

// SecurityConfig holds the reference to the pepper used to hash virtual keys and the KEKs.
type SecurityConfig struct {
	// Pepper is a secret reference (env:NAME or file:PATH) to at least 32 bytes. It never sits
	// in the config file itself, and it is kept apart from the key hashes.
	Pepper string `mapstructure:"pepper"`
	// KEKs are the key-encryption keys sealed credentials are opened with, each an id and a
	// reference to its material; several at once so a KEK rotates without a failed request.
	KEKs []KEKConfig `mapstructure:"keks"`
}

// RequestLimits holds request size limits.
type RequestLimits struct {
	// MaxRequestBytes is the largest request body tollgate accepts (413 above it). Keep it at
	// or below Envoy's request_body_buffer_limit.
	MaxRequestBytes int `mapstructure:"max_request_bytes"`
}

// Provider types.
const (
	ProviderOpenAI           = "openai"
	ProviderAnthropic        = "anthropic"
	ProviderAzureOpenAI      = "azure-openai"
	ProviderOpenAICompatible = "openai-compatible"
)

// ProviderConfig is one upstream LLM provider.
type ProviderConfig struct {
	Name string `mapstructure:"name"`
	Type string `mapstructure:"type"`
	// Route is the value tollgate puts in the routing header; envoy.yaml routes it to a cluster.
	Route string `mapstructure:"route"`
	// Cluster is the Envoy cluster this provider's attempts go to when a model falls back
	// across providers (models[].fallback): envoy.yaml's fallback-N routes send attempt k to
	// the cluster of target k, whose upstream ext_proc filter sets this provider's credential.
	// Required for every provider a fallback plan names; unused otherwise.
	Cluster string `mapstructure:"cluster"`
	// Credential is a secret reference (env:NAME or file:PATH) or a sealed value
	// (sealed:v1...). "none" is allowed only for openai-compatible servers that take no key.
	// It is short for Credentials{Primary: Credential}; set one or the other.
	Credential string `mapstructure:"credential"`
	// Credentials lists the provider's key and, during a rotation, the next one (sent while
	// set); see CredentialsConfig.
	Credentials CredentialsConfig `mapstructure:"credentials"`
	// Optional providers whose credential cannot be resolved are disabled instead of failing
	// the whole config: their models answer 503 until the credential appears.
	Optional bool `mapstructure:"optional"`
	// APIVersion is the Azure OpenAI api-version query parameter.
	APIVersion string `mapstructure:"api_version"`
	// AnthropicVersion is sent as anthropic-version when the client sent none.
	AnthropicVersion string `mapstructure:"anthropic_version"`
	// ForwardHeaders adds client headers (lower-case names) to the provider's allow-list;
	// every other client header is removed before the request leaves (see README).
	ForwardHeaders []string `mapstructure:"forward_headers"`
	// Organization and Project are sent as openai-organization and openai-project (OpenAI and
	// OpenAI-compatible providers): the gateway, not the client, picks what is billed.
	Organization string `mapstructure:"organization"`
	Project      string `mapstructure:"project"`
}

// ModelConfig maps a public model name (and aliases) to a provider and its upstream name.
type ModelConfig struct {
	Name     string   `mapstructure:"name"`
	Provider string   `mapstructure:"provider"`
	Upstream string   `mapstructure:"upstream_model"` // defaults to Name; Azure: the deployment
	Aliases  []string `mapstructure:"aliases"`
	// Pricing overrides the shipped catalog (looked up by upstream model name).
	Pricing *PricingConfig `mapstructure:"pricing"`
	// MaxOutputTokens is the output reserved for a request that sets no max_tokens (and, with
	// budget.inject_max_tokens, the cap written into it). Default budget.default_max_output_tokens.
	MaxOutputTokens int64 `mapstructure:"max_output_tokens"`
	// MaxInputTokens is the model's context window: the input reserved for a request that
	// makes the provider read input Tollgate never sees (Responses previous_response_id or
	// conversation, a stored prompt, a file by id or URL, an image or document by URL). 0
	// (the default): such requests are refused when a token or USD limit applies, since
	// their size does not bound their bill.
	MaxInputTokens int64 `mapstructure:"max_input_tokens"`
	// Fallback lists the targets tried, in order, after Provider when it answers 429 or 5xx,
	// or its connection fails before any response (see FallbackTarget and README).
	Fallback []FallbackTarget `mapstructure:"fallback"`
}

// TeamConfig groups keys; Models, when set, is the team's allow-list.
type TeamConfig struct {
	Name     string   `mapstructure:"name"`
	Models   []string `mapstructure:"models"`
	Disabled bool     `mapstructure:"disabled"`
	// Limits apply to the whole team, on top of each key's own.
	Limits LimitsConfig `mapstructure:"limits"`
	// RequestPolicy applies to every request of the team, on top of each key's own.
	RequestPolicy RequestPolicyConfig `mapstructure:"request_policy"`
	// Guardrails names the team's guardrail profile (default: guardrails.default_profile).
	Guardrails string `mapstructure:"guardrails"`
}

// KeyConfig is one virtual key, stored only as the HMAC of its secret.
type KeyConfig struct {
	ID       string       `mapstructure:"id"`
	Name     string       `mapstructure:"name"`
	Team     string       `mapstructure:"team"`
	Hash     string       `mapstructure:"hash"`
	Models   []string     `mapstructure:"models"`
	Disabled bool         `mapstructure:"disabled"`
	Expires  time.Time    `mapstructure:"expires"`
	Limits   LimitsConfig `mapstructure:"limits"`
	// RequestPolicy applies on top of the team's.
	RequestPolicy RequestPolicyConfig `mapstructure:"request_policy"`
	// Guardrails names the key's guardrail profile, overriding the team's.
	Guardrails string `mapstructure:"guardrails"`
}

// Defaults for unset fields.
const (
	DefaultExtProcAddr     = "127.0.0.1:50051"
	DefaultAdminAddr       = "127.0.0.1:9090"
	DefaultMaxRequestBytes = 4 << 20
	DefaultReload          = 2 * time.Second
	DefaultDrainTimeout    = 15 * time.Second
	DefaultPepperRef       = "env:TOLLGATE_PEPPER"
	DefaultAnthropicVer    = "2023-06-01"
	DefaultAzureAPIVersion = "2024-10-21"
	// MaxRequestBytesCeiling matches Envoy's request_body_buffer_limit in envoy/envoy.yaml and
	// the gRPC message size limit of the ext_proc server.
	MaxRequestBytesCeiling = 16 << 20
)

// ApplyDefaults fills unset fields with their defaults.
func (c *Config) ApplyDefaults() {
	if c.Listen.ExtProc == "" {
		c.Listen.ExtProc = DefaultExtProcAddr
	}
	if c.Listen.Admin == "" {
		c.Listen.Admin = DefaultAdminAddr
	}
	if c.Listen.DrainTimeout == 0 {
		c.Listen.DrainTimeout = DefaultDrainTimeout
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Security.Pepper == "" {
		c.Security.Pepper = DefaultPepperRef
	}
	if c.Limits.MaxRequestBytes == 0 {
		c.Limits.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.Reload == 0 {
		c.Reload = DefaultReload
	}
	c.Budget.applyDefaults()
	c.Audit.applyDefaults()
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.Type == ProviderAnthropic && p.AnthropicVersion == "" {
			p.AnthropicVersion = DefaultAnthropicVer
		}
		if p.Type == ProviderAzureOpenAI && p.APIVersion == "" {
			p.APIVersion = DefaultAzureAPIVersion
		}
	}
}
