package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// twoKeys appends two valid keys to the env's key file and returns the file's text.
func (e keysEnv) twoKeys(t *testing.T) string {
	t.Helper()
	for _, team := range []string{"platform", "research"} {
		_, stderr, err := e.keysNew("--team", team, "--name", team, "--append", e.keyFile)
		require.NoError(t, err, stderr)
	}
	kf, err := os.ReadFile(e.keyFile)
	require.NoError(t, err)
	return string(kf)
}

func TestReloadErrorNamesKeyFileAndEntry(t *testing.T) {
	e := newKeysEnv(t)
	good := e.twoKeys(t)
	l, err := readConfig(e.cfg)
	require.NoError(t, err)
	second := l.cfg.Keys[1]

	tests := []struct {
		name, edit string // edit replaces the second entry's team line
		want       string
	}{
		{name: "unknown team", edit: `team: "platfrom"`,
			want: `key_files[0] keys.yaml: keys[1] (id ` + second.ID + `).team: unknown team "platfrom"`},
		{name: "unknown guardrails profile", edit: `team: "research"` + "\n    guardrails: strict",
			want: `key_files[0] keys.yaml: keys[1] (id ` + second.ID + `).guardrails: unknown profile "strict"`},
		{name: "zero digest (refused by the key store)", edit: `team: "research"`,
			want: `key_files[0] keys.yaml: keys[1] (id ` + second.ID + `): invalid key record: missing digest`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, `team: "research"`, tc.edit, 1)
			if strings.HasPrefix(tc.name, "zero digest") {
				bad = strings.Replace(bad, second.Hash, `"`+strings.Repeat("0", 64)+`"`, 1)
			}
			require.NoError(t, os.WriteFile(e.keyFile, []byte(bad), 0o600))
			l, err := readConfig(e.cfg)
			require.NoError(t, err)
			_, err = compile(l, time.Now())
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), second.Hash, "never the hash")
			require.NotContains(t, err.Error(), l.cfg.Keys[0].Hash)
			require.NotContains(t, err.Error(), "keys[1].", "the merged list position is not shown unexplained")
		})
	}

	t.Run("a key in the main config keeps its own path", func(t *testing.T) {
		require.NoError(t, os.WriteFile(e.keyFile, []byte(good), 0o600))
		cfg, err := os.ReadFile(e.cfg)
		require.NoError(t, err)
		main := string(cfg) + "keys:\n  - {id: " + second.ID + "x, team: platform, hash: " + second.Hash + "}\n"
		main = strings.Replace(main, second.ID+"x", "AAAAAAAAAAAA", 1)
		main = strings.Replace(main, "team: platform, hash", "team: nope, hash", 1)
		require.NoError(t, os.WriteFile(e.cfg, []byte(main), 0o600))
		defer func() { require.NoError(t, os.WriteFile(e.cfg, cfg, 0o600)) }()
		l, err := readConfig(e.cfg)
		require.NoError(t, err)
		_, err = compile(l, time.Now())
		require.ErrorContains(t, err, `keys[0].team: unknown team "nope"`)
		require.NotContains(t, err.Error(), "key_files[0] keys.yaml: keys[0]")
	})
}

// TestReadyzShowsLastReloadError: a refused reload is visible on /readyz with its reason and
// time, not only as a count, and whether the config in force is current.
func TestReadyzShowsLastReloadError(t *testing.T) {
	tr := newTrial(t)
	tr.start(t)
	readyz := func() map[string]any {
		resp, err := http.Get("http://" + tr.admin + "/readyz")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return m
	}
	gauge := func() string {
		resp, err := http.Get("http://" + tr.admin + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "tollgate_config_current "); ok {
				return v
			}
		}
		return "missing"
	}
	st := readyz()
	require.Equal(t, true, st["config_current"])
	require.Equal(t, "1", gauge())
	require.NotContains(t, st, "last_reload_error")
	loadedAt, err := time.Parse(time.RFC3339Nano, st["config_loaded_at"].(string))
	require.NoError(t, err)

	good, err := os.ReadFile(tr.keyFile)
	require.NoError(t, err)
	l, err := readConfig(tr.cfg)
	require.NoError(t, err)
	demo := l.cfg.Keys[0]
	require.NoError(t, os.WriteFile(tr.keyFile, []byte(strings.Replace(string(good), `team: "platform"`, `team: "platfrom"`, 1)), 0o600))
	require.Eventually(t, func() bool { _, ok := readyz()["last_reload_error"]; return ok }, 5*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)

	st = readyz()
	require.Equal(t, `key_files[0] .dev/keys.yaml: keys[0] (id `+demo.ID+`).team: unknown team "platfrom"`, st["last_reload_error"])
	at, err := time.Parse(time.RFC3339Nano, st["last_reload_error_at"].(string))
	require.NoError(t, err)
	require.True(t, at.After(loadedAt))
	require.Equal(t, false, st["config_current"], "the files on disk are not what serves")
	require.Equal(t, "0", gauge(), "the metric an alert fires on says the same")
	require.EqualValues(t, 1, st["config_reload_failures"])
	body, err := json.Marshal(st)
	require.NoError(t, err)
	require.NotContains(t, string(body), demo.Hash)
	require.Contains(t, tr.logs.String(), "keys[0] (id "+demo.ID+").team", "the log says the same")

	// Fixed: the config is current again; the last error stays visible with its time.
	require.NoError(t, os.WriteFile(filepath.Join(tr.keyFile), good, 0o600))
	require.Eventually(t, func() bool { return readyz()["config_current"] == true }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, "1", gauge())
	require.Equal(t, st["last_reload_error_at"], readyz()["last_reload_error_at"])
}

// TestWatchSeesAChangeWrittenBeforeItStarted: the watcher used to take its first fingerprint
// when its goroutine started, so a config written between the load and that moment (a busy
// machine makes the window wide) was never reloaded. It now compares against the bytes the
// load read.
func TestWatchSeesAChangeWrittenBeforeItStarted(t *testing.T) {
	tr := newTrial(t)
	logs := &syncBuffer{}
	log, err := newLogger("info", "json", logs)
	require.NoError(t, err)
	g := &gateway{path: tr.cfg, log: log}
	require.NoError(t, g.load())
	before := g.Snapshot()

	tr.writeConfig(t, "limits: {max_request_bytes: 2048}\n") // lands after the load, before watch
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.watch(ctx, 10*time.Millisecond)
	require.Eventually(t, func() bool { return g.Snapshot() != before }, 5*time.Second, 10*time.Millisecond,
		"the change was never loaded; logs:\n%s", logs)
	require.Equal(t, int64(0), g.failed.Load(), "logs:\n%s", logs)
}
