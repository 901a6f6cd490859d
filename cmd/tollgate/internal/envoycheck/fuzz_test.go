package envoycheck

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzCheck feeds random YAML/JSON bytes to the Envoy config check. Invariants: it never
// panics, and every finding is well formed (known severity, an id, what and how to fix).
func FuzzCheck(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(fixtures, "envoy-*.yaml"))
	seeds = append(seeds, "../../../../envoy/envoy.yaml")
	for _, s := range seeds {
		if raw, err := os.ReadFile(s); err == nil {
			f.Add(raw)
		}
	}
	for _, s := range []string{"", "{}", "[]", "null", "admin: &a {x: *a}", "a: !!binary aGk=", `{"@type": 1}`,
		"static_resources: {listeners: [{filter_chains: [{filters: [{typed_config: {\"@type\": type.googleapis.com/xds.type.v3.TypedStruct}}]}]}]}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, fd := range Check(raw, testOpts) {
			if fd.Severity < High || fd.Severity > Low || fd.ID == "" || fd.Problem == "" || fd.Fix == "" {
				t.Fatalf("malformed finding %+v", fd)
			}
		}
	})
}
