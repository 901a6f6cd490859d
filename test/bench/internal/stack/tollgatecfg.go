package stack

import (
	"errors"
	"fmt"
	"strings"
)

// BenchTeam is the team of the bench's virtual key. It is added to examples/config.yaml with
// every kind of limit (so each request is counted and a reservation is taken and settled),
// set high enough that the bench never hits one: the example's own teams allow 600
// requests a minute.
const BenchTeam = "bench"

const benchTeamStanza = `  - name: bench                  # added by the bench harness (test/bench)
    limits:
      requests_per_minute: 100000000
      tokens_per_minute: 100000000000
      usd_per_day: "10000000"
`

// TollgateConfig turns examples/config.yaml (src) into the bench's Tollgate config: the same
// file (providers, models, budget ledger, guardrail profile, audit trail to a file), with
// the ext_proc and admin listeners on the given loopback ports and the team bench added.
// Each edit must match exactly once, so the bench cannot silently drift from the example.
// extproc is the ext_proc listen address (host:port or unix:/path).
func TollgateConfig(src []byte, extproc string, adminPort int) ([]byte, error) {
	out := string(src)
	var errs []error
	for _, r := range []struct{ old, new string }{
		{"extproc: 127.0.0.1:50051", "extproc: " + extproc},
		{"admin: 127.0.0.1:9090", fmt.Sprintf("admin: 127.0.0.1:%d", adminPort)},
		{"\nteams:\n", "\nteams:\n" + benchTeamStanza},
	} {
		if n := strings.Count(out, r.old); n != 1 {
			errs = append(errs, fmt.Errorf("examples/config.yaml: %q occurs %d times, want 1", r.old, n))
			continue
		}
		out = strings.Replace(out, r.old, r.new, 1)
	}
	for _, want := range []string{"ledger: embedded", "default_profile: standard", "file:\n    path: ../.dev/audit/audit.log"} {
		if !strings.Contains(out, want) {
			errs = append(errs, fmt.Errorf("examples/config.yaml no longer has %q: check what the bench measures", want))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return []byte(out), nil
}
