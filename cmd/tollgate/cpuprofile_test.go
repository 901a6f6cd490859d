package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeCPUProfile: serve --cpuprofile FILE profiles the whole run and writes the profile
// (gzipped protobuf, as runtime/pprof writes it) once serve has shut down; a path that cannot
// be created refuses to start.
func TestServeCPUProfile(t *testing.T) {
	tests := []struct {
		name    string
		path    func(dir string) string
		wantErr string
	}{
		{name: "written at shutdown", path: func(dir string) string { return filepath.Join(dir, "cpu.pprof") }},
		{name: "uncreatable path refused", path: func(dir string) string { return filepath.Join(dir, "missing", "cpu.pprof") },
			wantErr: "no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrial(t)
			path := tc.path(tr.dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"serve", "--config", tr.cfg, "--cpuprofile", path}, tr.logs, tr.logs)
			}()
			if tc.wantErr != "" {
				select {
				case err := <-done:
					require.ErrorContains(t, err, tc.wantErr)
				case <-time.After(10 * time.Second):
					t.Fatal("serve started despite an uncreatable profile path")
				}
				return
			}
			waitReady(t, tr)
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Fatalf("serve did not stop; logs:\n%s", tr.logs)
			}
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			require.NoError(t, err, "a CPU profile is gzipped")
			pb, err := io.ReadAll(zr)
			require.NoError(t, err)
			require.NotEmpty(t, pb)
		})
	}
}
