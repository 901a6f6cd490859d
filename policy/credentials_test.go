package policy_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// sentAuth routes a chat request for gpt-4o-mini (provider oai) and returns the
// authorization header Tollgate sets.
func sentAuth(t *testing.T, fx *policytest.Fixture) (string, *policy.Forward) {
	t.Helper()
	a, rep := fx.Snapshot.Admit(fx.Now, hdrs("POST", "/v1/chat/completions", false,
		"authorization", "Bearer "+fx.Keys["valid"], "content-type", "application/json"))
	require.Nil(t, rep)
	f, rep := fx.Snapshot.Route(a, []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	require.Nil(t, rep)
	v, ok := header(f, "authorization")
	require.True(t, ok)
	return v, f
}

func TestSealedAndRotatingCredentials(t *testing.T) {
	tests := []struct {
		name   string
		keks   []string
		cred   func(t *testing.T) (string, policy.CredentialsConfig)
		want   string
		slot   string
		errHas string
		errIs  error
	}{
		{name: "sealed credential", keks: []string{"k1"}, want: policytest.OpenAIKey, slot: policy.SlotPrimary,
			cred: func(t *testing.T) (string, policy.CredentialsConfig) {
				return policytest.Seal(t, "k1", policytest.OpenAIKey), policy.CredentialsConfig{}
			}},
		{name: "sealed under the second of two KEKs", keks: []string{"k1", "k2"}, want: policytest.OpenAIKey, slot: policy.SlotPrimary,
			cred: func(t *testing.T) (string, policy.CredentialsConfig) {
				return policytest.Seal(t, "k2", policytest.OpenAIKey), policy.CredentialsConfig{}
			}},
		{name: "primary only", want: policytest.OpenAIKey, slot: policy.SlotPrimary,
			cred: func(*testing.T) (string, policy.CredentialsConfig) {
				return "", policy.CredentialsConfig{Primary: "env:TG_OPENAI_KEY"}
			}},
		{name: "next is sent once set", keks: []string{"k1"}, want: policytest.OpenAIKeyNext, slot: policy.SlotNext,
			cred: func(t *testing.T) (string, policy.CredentialsConfig) {
				return "", policy.CredentialsConfig{Primary: "env:TG_OPENAI_KEY", Next: policytest.Seal(t, "k1", policytest.OpenAIKeyNext)}
			}},
		{name: "a next that does not resolve is refused, never skipped", errHas: "providers[0].credentials.next", errIs: secrets.ErrUnset,
			cred: func(*testing.T) (string, policy.CredentialsConfig) {
				return "", policy.CredentialsConfig{Primary: "env:TG_OPENAI_KEY", Next: "env:TG_NOT_SET"}
			}},
		{name: "a primary that does not resolve is refused while next is set", errHas: "providers[0].credentials.primary", errIs: secrets.ErrUnset,
			cred: func(*testing.T) (string, policy.CredentialsConfig) {
				return "", policy.CredentialsConfig{Primary: "env:TG_NOT_SET", Next: "env:TG_OPENAI_NEXT"}
			}},
		{name: "sealed under a KEK whose material changed", keks: []string{"k1"}, errHas: "providers[0].credential", errIs: secrets.ErrWrongKEK,
			cred: func(t *testing.T) (string, policy.CredentialsConfig) {
				// Sealed under KEK2's material, but labelled k1 (as if k1's file were replaced).
				s := policytest.Seal(t, "k2", policytest.OpenAIKey)
				r, err := policy.LoadKeyring([]policy.KEKConfig{{ID: "k1", Key: "env:TG_KEK2"}}, "", policytest.Resolver())
				require.NoError(t, err)
				v, err := r.Open(strings.Replace(s, "k2", "k1", 1))
				require.ErrorIs(t, err, secrets.ErrSealedTampered, "the id is authenticated")
				require.Zero(t, v.Len())
				s, err = r.Seal("k1", []byte(policytest.OpenAIKey), strings.NewReader(strings.Repeat("r", 56)))
				require.NoError(t, err)
				return s, policy.CredentialsConfig{}
			}},
		{name: "tampered sealed value", keks: []string{"k1"}, errHas: "providers[0].credential", errIs: secrets.ErrSealedTampered,
			cred: func(t *testing.T) (string, policy.CredentialsConfig) {
				s := policytest.Seal(t, "k1", policytest.OpenAIKey)
				i := len("sealed:v1.k1.") + 20
				c := byte('A')
				if s[i] == 'A' {
					c = 'B'
				}
				return s[:i] + string(c) + s[i+1:], policy.CredentialsConfig{}
			}},
		{name: "KEK material missing", keks: []string{"k1", "k3"}, errHas: "security.keks[1] (k3)", errIs: secrets.ErrUnset,
			cred: func(t *testing.T) (string, policy.CredentialsConfig) {
				return policytest.Seal(t, "k1", policytest.OpenAIKey), policy.CredentialsConfig{}
			}},
		{name: "KEK material is not a key", errHas: "security.keks[0] (k1)", errIs: secrets.ErrBadKEK,
			cred: func(*testing.T) (string, policy.CredentialsConfig) {
				return "env:TG_OPENAI_KEY", policy.CredentialsConfig{}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := policytest.BaseConfig()
			cfg.Security.KEKs = policytest.KEKs(tc.keks...)
			if tc.name == "KEK material is not a key" {
				cfg.Security.KEKs = []policy.KEKConfig{{ID: "k1", Key: "env:TG_OPENAI_KEY"}}
			}
			cfg.Providers[0].Credential, cfg.Providers[0].Credentials = tc.cred(t)
			if tc.errHas != "" {
				_, err := policy.Compile(cfg, "", policytest.Resolver(), time.Now())
				require.ErrorContains(t, err, tc.errHas)
				require.ErrorIs(t, err, tc.errIs)
				for _, secret := range []string{policytest.OpenAIKey, policytest.OpenAIKeyNext, policytest.KEK1[:20], policytest.KEK2[:20]} {
					require.NotContains(t, err.Error(), secret)
				}
				if c := cfg.Providers[0].Credential; secrets.IsSealed(c) {
					for _, f := range strings.Split(c, ".")[2:] {
						require.NotContains(t, err.Error(), f, "no part of a sealed value is echoed")
					}
				}
				return
			}
			fx := policytest.NewWith(t, func(c *policy.Config) {
				c.Security.KEKs, c.Providers[0].Credential, c.Providers[0].Credentials =
					cfg.Security.KEKs, cfg.Providers[0].Credential, cfg.Providers[0].Credentials
			})
			got, _ := sentAuth(t, fx)
			require.Equal(t, "Bearer "+tc.want, got)
			require.Equal(t, tc.slot, fx.Snapshot.CredentialSlots()["oai"])
		})
	}
}

func TestOptionalProviderCredentials(t *testing.T) {
	compile := func(t *testing.T, creds policy.CredentialsConfig) *policy.Snapshot {
		t.Helper()
		cfg := policytest.BaseConfig()
		cfg.Providers[0].Optional, cfg.Providers[0].Credential, cfg.Providers[0].Credentials = true, "", creds
		s, err := policy.Compile(cfg, "", policytest.Resolver(), time.Now())
		require.NoError(t, err)
		return s
	}
	// The credential to send is missing: the provider is off, with a warning.
	s := compile(t, policy.CredentialsConfig{Primary: "env:TG_OPENAI_KEY", Next: "env:TG_NOT_SET"})
	require.Equal(t, policy.SlotUnavailable, s.CredentialSlots()["oai"])
	require.Contains(t, strings.Join(s.Warnings, "\n"), "providers[0] oai disabled: credentials.next env:TG_NOT_SET not available")
	// Only the one not sent is missing: the provider serves, with a warning.
	s = compile(t, policy.CredentialsConfig{Primary: "env:TG_NOT_SET", Next: "env:TG_OPENAI_NEXT"})
	require.Equal(t, policy.SlotNext, s.CredentialSlots()["oai"])
	require.Contains(t, strings.Join(s.Warnings, "\n"), "credentials.primary env:TG_NOT_SET not available")
	require.Equal(t, policy.SlotNone, s.CredentialSlots()["vllm"])
}

func TestValidateCredentialFields(t *testing.T) {
	sealed := policytest.Seal(t, "k1", policytest.OpenAIKey)
	tests := []struct {
		name   string
		edit   func(c *policy.Config)
		errHas string
	}{
		{"both forms", func(c *policy.Config) { c.Providers[0].Credentials.Primary = "env:X" }, "providers[0].credential: set credential or credentials, not both"},
		{"next without primary", func(c *policy.Config) {
			c.Providers[0].Credential, c.Providers[0].Credentials.Next = "", "env:X"
		}, "providers[0].credentials.primary: is required"},
		{"neither", func(c *policy.Config) { c.Providers[0].Credential = "" }, "providers[0].credential: is required"},
		{"none in credentials", func(c *policy.Config) {
			c.Providers[3].Credential, c.Providers[3].Credentials.Primary = "", "none"
		}, "providers[3].credentials.primary: must be a secret reference"},
		{"plaintext next", func(c *policy.Config) {
			c.Providers[0].Credential, c.Providers[0].Credentials = "", policy.CredentialsConfig{Primary: "env:X", Next: "sk-live-pasted-0001"}
		}, "providers[0].credentials.next: must be a secret reference (env:NAME, file:PATH or sealed:...), not a key"},
		{"sealed under an unlisted KEK", func(c *policy.Config) { c.Providers[0].Credential = sealed },
			`providers[0].credential: is sealed under KEK "k1", which security.keks does not list`},
		{"truncated sealed value", func(c *policy.Config) {
			c.Security.KEKs = policytest.KEKs("k1")
			c.Providers[0].Credential = sealed[:len(sealed)-10]
		}, "providers[0].credential: sealed value is truncated"},
		{"sealed value of a newer format", func(c *policy.Config) {
			c.Security.KEKs = policytest.KEKs("k1")
			c.Providers[0].Credential = strings.Replace(sealed, "v1", "v9", 1)
		}, "providers[0].credential: sealed value has an unsupported format version"},
		{"KEK id", func(c *policy.Config) { c.Security.KEKs = []policy.KEKConfig{{ID: "k.1", Key: "env:K"}} }, "security.keks[0].id: must be"},
		{"duplicate KEK id", func(c *policy.Config) { c.Security.KEKs = policytest.KEKs("k1", "k1") }, `security.keks[1].id: duplicate KEK id "k1"`},
		{"KEK in the config", func(c *policy.Config) { c.Security.KEKs = []policy.KEKConfig{{ID: "k1", Key: policytest.KEK1}} },
			"security.keks[0].key: must be a secret reference (env:NAME or file:PATH) to the KEK, never the key itself"},
		{"sealed KEK", func(c *policy.Config) { c.Security.KEKs = []policy.KEKConfig{{ID: "k1", Key: sealed}} }, "security.keks[0].key: must be a secret reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := policytest.BaseConfig()
			tc.edit(&cfg)
			cfg.ApplyDefaults()
			err := cfg.Validate()
			require.ErrorContains(t, err, tc.errHas)
			for _, secret := range []string{"sk-live-pasted-0001", policytest.KEK1, sealed[20:60], policytest.OpenAIKey} {
				require.NotContains(t, err.Error(), secret)
			}
		})
	}
}

// TestCredentialZeroedWhenSnapshotDropped: once no snapshot and no decision holds a
// credential, its bytes are zeroed; a decision still in use keeps them intact.
func TestCredentialZeroedWhenSnapshotDropped(t *testing.T) {
	fx := policytest.NewWith(t, func(c *policy.Config) {
		c.Security.KEKs = policytest.KEKs("k1")
		c.Providers[0].Credential = policytest.Seal(t, "k1", policytest.OpenAIKey)
	})
	b := policy.CredentialBytes(fx.Snapshot, "oai")
	require.Equal(t, "Bearer "+policytest.OpenAIKey, string(b))
	_, f := sentAuth(t, fx)
	fx.Snapshot = nil // as after a reload, while a stream still holds its decision

	// A sentinel dropped at the same time proves a collection ran and cleanups were queued.
	sentinel := new([16]byte)
	ran := make(chan struct{})
	runtime.AddCleanup(sentinel, func(ch chan struct{}) { close(ch) }, ran)
	sentinel = nil
	require.Eventually(t, func() bool {
		runtime.GC()
		select {
		case <-ran:
			return true
		default:
			return false
		}
	}, 10*time.Second, 5*time.Millisecond)
	for range 3 {
		runtime.GC()
		runtime.Gosched()
	}
	v, ok := header(f, "authorization")
	require.True(t, ok)
	require.Equal(t, "Bearer "+policytest.OpenAIKey, v, "a decision in use keeps its credential")
	runtime.KeepAlive(f)
	runtime.KeepAlive(sentinel)

	f = nil
	require.Eventually(t, func() bool {
		runtime.GC()
		for _, c := range b {
			if c != 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "the credential is zeroed once nothing uses it")
}
