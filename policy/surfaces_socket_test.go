package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestParseSocketMode: octal bits the owner can use and others cannot.
func TestParseSocketMode(t *testing.T) {
	for in, want := range map[string]uint32{"": 0o600, "0600": 0o600, "600": 0o600, "0660": 0o660, "0640": 0o640, "0700": 0o700} {
		got, err := ParseSocketMode(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"0666", "0606", "0777", "0400", "0060", "rw-rw----", "08", "01000", "-1", "0x1b6"} {
		_, err := ParseSocketMode(in)
		require.Error(t, err, in)
	}
}

// TestSocketModeValidation: the mode applies only to a unix socket, and changing it needs a
// restart.
func TestSocketModeValidation(t *testing.T) {
	c := Config{Listen: ListenConfig{ExtProc: "127.0.0.1:50051", ExtProcSocketMode: "0660"}}
	var errs []string
	c.validateSurfaces(func(path, format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) })
	require.Contains(t, errs, "listen.extproc_socket_mode: applies only to a unix:/path listen.extproc")

	c.Listen.ExtProc = "unix:/run/tollgate/extproc.sock"
	c.Listen.ExtProcSocketMode = "0666"
	errs = nil
	c.validateSurfaces(func(path, format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) })
	require.Contains(t, errs, "listen.extproc_socket_mode: must give others no access: any local user could open ext_proc streams")

	next := c
	next.Listen.ExtProcSocketMode = "0660"
	require.Contains(t, c.SurfaceChanges(&next), "listen.extproc_socket_mode")
	next.Listen.ExtProcSocketMode, c.Listen.ExtProcSocketMode = "", "0600"
	require.NotContains(t, c.SurfaceChanges(&next), "listen.extproc_socket_mode", "unset is the default 0600")
}

// TestDrainTimeoutValidation: a negative drain timeout (which would cut every open stream at
// shutdown, with no time to finish) is refused.
func TestDrainTimeoutValidation(t *testing.T) {
	c := Config{Listen: ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "127.0.0.1:9090", DrainTimeout: -time.Second}}
	var errs []string
	c.validateSurfaces(func(path, format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) })
	require.Equal(t, []string{"listen.drain_timeout: must be positive (default 15s)"}, errs)
	c.Listen.DrainTimeout = time.Minute
	errs = nil
	c.validateSurfaces(func(path, format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) })
	require.Empty(t, errs)
}
