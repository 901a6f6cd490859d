package calib

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRun: the calibration completes its round trips and reports positive costs (their size
// is the machine's business).
func TestRun(t *testing.T) {
	r, err := Run(1000, 500)
	require.NoError(t, err)
	require.Equal(t, 500, r.LoopbackRoundTrips)
	require.Positive(t, r.SyscallNs)
	require.Positive(t, r.LoopbackRTTMicros)
	require.GreaterOrEqual(t, r.LoopbackCPUMicros, 0.0)
}
