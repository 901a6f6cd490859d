package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

func TestValidateReportsEveryProblemWithItsPath(t *testing.T) {
	cfg := policytest.BaseConfig()
	cfg.ApplyDefaults()
	cfg.Listen.Admin = "0.0.0.0:9090"
	cfg.Providers[0].Credential = "sk-live-plaintext-key-123"
	cfg.Providers[1].Type = "bard"
	cfg.Models = append(cfg.Models, policy.ModelConfig{Name: "fast", Provider: "nope"})
	cfg.Teams[1].Models = []string{"missing-model"}
	cfg.Keys = []policy.KeyConfig{{ID: "short", Team: "ghosts", Hash: "zz"}}
	err := cfg.Validate()
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"listen.admin:", "providers[0].credential:", "providers[1].type:",
		"models[6].provider:", "models[6].name:", "teams[1].models[0]:",
		"keys[0].id:", "keys[0].team:", "keys[0].hash:",
	} {
		require.Contains(t, msg, want)
	}
	require.NotContains(t, msg, "sk-live-plaintext-key-123", "validation must never echo a pasted secret")
}

func TestCompileResolvesSecretsAndDisablesOptionalProviders(t *testing.T) {
	fx := policytest.New(t)
	require.Len(t, fx.Snapshot.Warnings, 1)
	require.Contains(t, fx.Snapshot.Warnings[0], "off disabled")
	require.NotContains(t, strings.Join(fx.Snapshot.Warnings, " "), policytest.OpenAIKey)
}

func TestCompileFailsClosedWithoutPepper(t *testing.T) {
	cfg := policytest.BaseConfig()
	cfg.Security.Pepper = "env:TG_NO_SUCH_PEPPER"
	_, err := policy.Compile(cfg, "", policytest.Resolver(), time.Now())
	require.ErrorContains(t, err, "security.pepper")
}

func TestCompileRefusesRequiredProviderWithoutCredential(t *testing.T) {
	cfg := policytest.BaseConfig()
	cfg.Providers[0].Credential = "env:TG_NOT_SET"
	_, err := policy.Compile(cfg, "", policytest.Resolver(), time.Now())
	require.ErrorContains(t, err, "providers[0].credential")
}

func TestListenAddressesStayOffTheNetwork(t *testing.T) {
	tests := []struct {
		extproc, admin string
		wantErr        string
	}{
		{"127.0.0.1:50051", "127.0.0.1:9090", ""},
		{"unix:/run/tollgate/extproc.sock", "[::1]:9090", ""},
		{"localhost:50051", "localhost:9090", ""},
		{"0.0.0.0:50051", "127.0.0.1:9090", "listen.extproc"},
		{":50051", "127.0.0.1:9090", "listen.extproc"},
		{"127.0.0.1:50051", "0.0.0.0:9090", "listen.admin"},
		{"127.0.0.1:50051", "unix:/tmp/admin.sock", "listen.admin"},
		{"unix:", "127.0.0.1:9090", "listen.extproc"},
	}
	for _, tc := range tests {
		t.Run(tc.extproc+" "+tc.admin, func(t *testing.T) {
			cfg := policytest.BaseConfig()
			cfg.ApplyDefaults()
			cfg.Listen.ExtProc, cfg.Listen.Admin = tc.extproc, tc.admin
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
