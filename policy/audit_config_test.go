package policy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/policytest"
)

func TestAuditQueueBoundsValidated(t *testing.T) {
	cfg := policytest.BaseConfig()
	cfg.ApplyDefaults()
	cfg.Audit.QueueSize, cfg.Audit.QueueMaxBytes = -1, -1
	err := cfg.Validate()
	require.ErrorContains(t, err, "audit.queue_size: must not be negative")
	require.ErrorContains(t, err, "audit.queue_max_bytes: must not be negative")

	cfg.Audit.QueueSize, cfg.Audit.QueueMaxBytes = 0, 16<<20
	require.NoError(t, cfg.Validate())
}
