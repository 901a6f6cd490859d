package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// TestReportText pins what `tollgate audit verify` prints. Refresh with
// go test -run TestReportText -update.
func TestReportText(t *testing.T) {
	t.Parallel()
	paths := writeSet(t, t.TempDir(), 5, smallFile)
	files := map[string][]byte{}
	var names []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		files[filepath.Base(p)] = b
		names = append(names, filepath.Base(p))
	}
	retention := audit.VerifyOptions{AllowRetention: true}
	for _, tc := range []struct {
		name   string
		tamper func(map[string][]byte)
		pub    bool
		opts   audit.VerifyOptions
	}{
		{"ok", func(map[string][]byte) {}, true, audit.VerifyOptions{}},
		{"retention_no_pub", func(m map[string][]byte) { delete(m, "audit.log.1") }, false, retention},
		{"head_removed", func(m map[string][]byte) { delete(m, "audit.log.1") }, true, audit.VerifyOptions{}},
		{"tail_removed", func(m map[string][]byte) { delete(m, "audit.log") }, true, retention},
		{"deleted", func(m map[string][]byte) {
			l := bytes.SplitAfter(m["audit.log.2"], []byte("\n"))
			m["audit.log.2"] = bytes.Join(l[1:], nil)
		}, true, audit.VerifyOptions{}},
		{"unsealed_tail", func(m map[string][]byte) {
			l := bytes.SplitAfter(m["audit.log"], []byte("\n"))
			m["audit.log"] = append(bytes.Join(l[:1], nil), `{"v":1,"time":"2026-`...)
		}, true, audit.VerifyOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := map[string][]byte{}
			for k, v := range files {
				m[k] = bytes.Clone(v)
			}
			tc.tamper(m)
			var order []string
			for _, n := range names {
				if _, ok := m[n]; ok {
					order = append(order, n)
				}
			}
			pub := ckPub
			if !tc.pub {
				pub = nil
			}
			rep, _ := audit.VerifyBytesWithOptions(m, order, chainKey, pub, tc.opts)
			var out bytes.Buffer
			require.NoError(t, rep.WriteText(&out))
			golden := filepath.Join("testdata", "report", tc.name+".txt")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), out.String())
		})
	}
}
