package main

import (
	"time"
	"unicode/utf8"
)

// maxReloadErrorBytes bounds the reload error text kept for /readyz.
const maxReloadErrorBytes = 4096

// reloadFailure is a refused reload: the reason, as logged (config errors name fields, files
// and key ids, never a secret value or a key hash), and when it happened.
type reloadFailure struct {
	text string
	at   time.Time
}

func newReloadFailure(err error, at time.Time) *reloadFailure {
	text := err.Error()
	if len(text) > maxReloadErrorBytes {
		cut := maxReloadErrorBytes
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + " ... (truncated; see the log)"
	}
	return &reloadFailure{text: text, at: at.UTC()}
}

// reloadStatus adds to a /readyz body when the config in force was loaded, the last refused
// reload (its reason and time) and whether the config in force is the files' current content
// (false while the last reload attempt was refused).
func (g *gateway) reloadStatus(status map[string]any) {
	loaded := g.Snapshot().Loaded.UTC()
	status["config_loaded_at"] = loaded.Format(time.RFC3339Nano)
	if f := g.lastFailure.Load(); f != nil {
		status["last_reload_error"] = f.text
		status["last_reload_error_at"] = f.at.Format(time.RFC3339Nano)
	}
	status["config_current"] = g.configCurrent()
}

// configCurrent reports whether the config in force is the files' current content: false
// from a refused reload until one takes effect.
func (g *gateway) configCurrent() bool {
	f := g.lastFailure.Load()
	return f == nil || f.at.Before(g.Snapshot().Loaded.UTC())
}
