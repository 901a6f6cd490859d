package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/keys"
)

func devInitRun(t *testing.T, dir string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"dev", "init", "--dir", dir}, &out, &out))
	return out.String()
}

// devState reads the trial's demo key and key file and reports whether the demo key verifies
// against the pepper, as tollgate would check it.
func devState(t *testing.T, dir string) (demo string, entries []policy.KeyConfig, works bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, devDemoKey))
	require.NoError(t, err)
	demo = strings.TrimSpace(string(raw))
	var kf struct {
		Keys []policy.KeyConfig `mapstructure:"keys"`
	}
	require.NoError(t, decodeYAML(filepath.Join(dir, devKeys), &kf))
	pepper, err := os.ReadFile(filepath.Join(dir, devPepper))
	require.NoError(t, err)
	var recs []keys.Record
	for _, k := range kf.Keys {
		d, err := keys.ParseDigest(k.Hash)
		require.NoError(t, err)
		recs = append(recs, keys.Record{ID: k.ID, Team: k.Team, Digest: d})
	}
	store, err := keys.NewStore([]byte(strings.TrimSpace(string(pepper))), recs)
	require.NoError(t, err)
	tok, err := keys.Parse(demo)
	require.NoError(t, err)
	_, err = store.Verify(time.Now(), tok)
	return demo, kf.Keys, err == nil
}

func TestDevInitKeepsTheDemoKeyWorking(t *testing.T) {
	tests := []struct {
		name      string
		change    func(t *testing.T, dir string)
		sameDemo  bool
		wantKeys  int
		wantStale bool
	}{
		{name: "nothing changed", change: func(*testing.T, string) {}, sameDemo: true, wantKeys: 2},
		{name: "pepper deleted", change: func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, devPepper)))
		}, wantKeys: 1, wantStale: true},
		{name: "pepper replaced", change: func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, devPepper), []byte(strings.Repeat("q", 64)+"\n"), 0o600))
		}, wantKeys: 1, wantStale: true},
		{name: "demo key file deleted", change: func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, devDemoKey)))
		}, wantKeys: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), ".dev")
			devInitRun(t, dir)
			demo, _, works := devState(t, dir)
			require.True(t, works)
			// A second key minted with the same pepper, as `keys new --append` would.
			pepper, err := os.ReadFile(filepath.Join(dir, devPepper))
			require.NoError(t, err)
			k, err := mintKey([]byte(strings.TrimSpace(string(pepper))), policy.KeyConfig{Team: "platform", Name: "mine"})
			require.NoError(t, err)
			require.NoError(t, appendKey(filepath.Join(dir, devKeys), k.entry))

			tc.change(t, dir)
			out := devInitRun(t, dir)
			again, entries, works := devState(t, dir)
			require.True(t, works, "the demo key works after dev init: %s", out)
			require.Equal(t, tc.sameDemo, again == demo)
			require.Len(t, entries, tc.wantKeys)
			stale, err := filepath.Glob(filepath.Join(dir, devKeys+".stale-*"))
			require.NoError(t, err)
			if !tc.wantStale {
				require.Empty(t, stale)
				require.NotContains(t, out, "note:")
				return
			}
			require.Len(t, stale, 1)
			old, err := os.ReadFile(stale[0])
			require.NoError(t, err)
			require.Contains(t, string(old), "id: "+k.entry.ID, "the dead keys are kept aside, not deleted")
			require.Contains(t, out, "none of them works")
			require.Contains(t, out, "keys new")
		})
	}
}
