package policy

import (
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// AuditConfig configures audit events: sinks, tamper evidence and the content policy. Sinks
// are opened once at start; changing them needs a restart.
type AuditConfig struct {
	// ChainKey is a secret reference to at least 32 bytes: the HMAC key chaining records.
	// Required when any sink is configured.
	ChainKey string `mapstructure:"chain_key"`
	// CheckpointKey is a secret reference to an Ed25519 private key (PEM) that signs the
	// checkpoint written at each rotation and at shutdown.
	CheckpointKey string `mapstructure:"checkpoint_key"`
	// Content is off (default), hash (HMAC-SHA256 digests of prompt and completion, keyed by
	// ContentHashKey) or sealed (encrypted to ContentRecipient, an age X25519 public key: the
	// gateway can write them but not read them back).
	Content          string `mapstructure:"content"`
	ContentHashKey   string `mapstructure:"content_hash_key"`
	ContentRecipient string `mapstructure:"content_recipient"`
	// ClientAddrV4Bits and ClientAddrV6Bits truncate client addresses (-1 drops them).
	// Defaults 24 and 48.
	ClientAddrV4Bits int `mapstructure:"client_addr_v4_bits"`
	ClientAddrV6Bits int `mapstructure:"client_addr_v6_bits"`
	// FailClosed refuses new requests (503) while the audit trail cannot be written.
	FailClosed bool `mapstructure:"fail_closed"`
	// QueueSize bounds events waiting for the sinks; beyond it events are dropped (counted).
	QueueSize int `mapstructure:"queue_size"`
	// QueueMaxBytes bounds the approximate bytes of the events waiting for the sinks (sealed
	// content makes an event up to tens of MiB), and separately those in the webhook sink's
	// queue; beyond it events are dropped (counted, logged, marked in the chain) and the trail
	// reports unhealthy until it drains to half, so fail_closed refuses requests meanwhile.
	// 0 means 64 MiB.
	QueueMaxBytes int64 `mapstructure:"queue_max_bytes"`

	Stdout  bool                `mapstructure:"stdout"`
	File    *AuditFileConfig    `mapstructure:"file"`
	Webhook *AuditWebhookConfig `mapstructure:"webhook"`
}

// AuditFileConfig is the append-only file sink.
type AuditFileConfig struct {
	Path     string `mapstructure:"path"`
	MaxBytes int64  `mapstructure:"max_bytes"`
	// Fsync is always, interval (default) or never.
	Fsync string `mapstructure:"fsync"`
}

// AuditWebhookConfig is the HTTP sink.
type AuditWebhookConfig struct {
	URL string `mapstructure:"url"`
	// Authorization is a secret reference to the Authorization header value.
	Authorization string        `mapstructure:"authorization"`
	BatchSize     int           `mapstructure:"batch_size"`
	FlushInterval time.Duration `mapstructure:"flush_interval"`
}

// Enabled reports whether any sink is configured.
func (a AuditConfig) Enabled() bool { return a.Stdout || a.File != nil || a.Webhook != nil }

func (a *AuditConfig) applyDefaults() {
	if a.Content == "" {
		a.Content = "off"
	}
	if a.ClientAddrV4Bits == 0 {
		a.ClientAddrV4Bits = 24
	}
	if a.ClientAddrV6Bits == 0 {
		a.ClientAddrV6Bits = 48
	}
}

func (a *AuditConfig) validate(add func(string, string, ...any)) {
	ref := func(path, v string, required bool) {
		if v == "" {
			if required {
				add(path, "is required (env:NAME or file:PATH)")
			}
			return
		}
		if _, err := secrets.ParseRef(v); err != nil {
			add(path, "must be a secret reference (env:NAME or file:PATH), not a key")
		}
	}
	ref("audit.chain_key", a.ChainKey, a.Enabled())
	if a.QueueSize < 0 {
		add("audit.queue_size", "must not be negative")
	}
	if a.QueueMaxBytes < 0 {
		add("audit.queue_max_bytes", "must not be negative")
	}
	// The file sink signs a checkpoint at each rotation and at shutdown.
	ref("audit.checkpoint_key", a.CheckpointKey, a.File != nil)
	switch a.Content {
	case "off":
	case "hash":
		ref("audit.content_hash_key", a.ContentHashKey, true)
	case "sealed":
		if !strings.HasPrefix(a.ContentRecipient, "age1") {
			add("audit.content_recipient", "must be an age X25519 recipient (age1...)")
		}
	default:
		add("audit.content", "must be off, hash or sealed")
	}
	if a.File != nil {
		if a.File.Path == "" {
			add("audit.file.path", "is required")
		}
		switch a.File.Fsync {
		case "", "always", "interval", "never":
		default:
			add("audit.file.fsync", "must be always, interval or never")
		}
	}
	if a.Webhook != nil {
		if !strings.HasPrefix(a.Webhook.URL, "https://") && !strings.HasPrefix(a.Webhook.URL, "http://127.0.0.1") &&
			!strings.HasPrefix(a.Webhook.URL, "http://localhost") {
			add("audit.webhook.url", "must be https (plain http only to loopback)")
		}
		ref("audit.webhook.authorization", a.Webhook.Authorization, false)
	}
}
