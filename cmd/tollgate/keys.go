package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// newKey is a freshly minted virtual key and its config entry.
type newKey struct {
	token keys.Token
	entry policy.KeyConfig
}

// mintKey generates a key and hashes its secret with the pepper.
func mintKey(pepper []byte, team, name string, models []string, expires time.Time) (newKey, error) {
	if err := keys.CheckPepper(pepper); err != nil {
		return newKey{}, err
	}
	tok, err := keys.Generate(rand.Reader)
	if err != nil {
		return newKey{}, err
	}
	return newKey{token: tok, entry: policy.KeyConfig{
		ID: tok.ID, Name: name, Team: team, Models: models, Expires: expires,
		Hash: keys.Hash(pepper, tok.Secret).String(),
	}}, nil
}

// stanza renders one key as YAML for the keys: list (or a key file).
func stanza(k policy.KeyConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - id: %s\n    name: %q\n    team: %q\n    hash: %s\n", k.ID, k.Name, k.Team, k.Hash)
	if len(k.Models) > 0 {
		fmt.Fprintf(&b, "    models: [%s]\n", quoteList(k.Models))
	}
	if !k.Expires.IsZero() {
		fmt.Fprintf(&b, "    expires: %s\n", k.Expires.UTC().Format(time.RFC3339))
	}
	if k.Disabled {
		b.WriteString("    disabled: true\n")
	}
	return b.String()
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// parseExpiry accepts a duration from now (720h), a date or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d).UTC().Truncate(time.Second), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("--expires must be a duration (720h), a date (2027-01-31) or RFC 3339")
}

func runKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(stderr, "usage: tollgate keys new --team T --name N [--models a,b] [--expires 720h|2027-01-31] [--config FILE | --pepper env:NAME|file:PATH]")
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("keys new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	team := fs.String("team", "", "team the key belongs to (required)")
	name := fs.String("name", "", "human-readable key name (required)")
	models := fs.String("models", "", "comma-separated model allow-list (default: the team's)")
	expires := fs.String("expires", "", "expiry: a duration from now, a date or an RFC 3339 time")
	cfgPath := fs.String("config", "", "config file whose security.pepper to use")
	pepperRef := fs.String("pepper", "", "pepper reference, env:NAME or file:PATH (instead of --config)")
	appendTo := fs.String("append", "", "append the entry to this key file (created with a keys: list if missing)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *team == "" || *name == "" {
		return errors.New("--team and --name are required")
	}
	exp, err := parseExpiry(*expires, time.Now())
	if err != nil {
		return err
	}
	pepper, err := loadPepper(*cfgPath, *pepperRef)
	if err != nil {
		return err
	}
	var allow []string
	for m := range strings.SplitSeq(*models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			allow = append(allow, m)
		}
	}
	k, err := mintKey(pepper.Bytes(), *team, *name, allow, exp)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Virtual key (shown once; tollgate stores only its hash):\n\n  %s\n\n", k.token.Reveal())
	if *appendTo != "" {
		if err := appendKey(*appendTo, k.entry); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Appended key %s to %s; a running tollgate picks it up without a restart.\n", k.entry.ID, *appendTo)
		return nil
	}
	fmt.Fprintf(stdout, "Add this entry to keys: in your config (or a key file); it reloads without a restart:\n\n%s", stanza(k.entry))
	return nil
}

// appendKey adds an entry to a key file, writing the whole file anew and renaming it over the
// old one, so a reload never reads half an entry.
func appendKey(path string, k policy.KeyConfig) error {
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = []byte("keys:\n")
	case err != nil:
		return err
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(old, stanza(k)...), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loadPepper resolves the pepper from an explicit reference or from a config file's
// security.pepper (relative file references resolve against the config's directory).
func loadPepper(cfgPath, ref string) (secrets.Value, error) {
	dir := "."
	if ref == "" {
		if cfgPath == "" {
			ref = policy.DefaultPepperRef
		} else {
			l, err := readConfig(cfgPath)
			if err != nil {
				return secrets.Value{}, err
			}
			l.cfg.ApplyDefaults()
			ref, dir = l.cfg.Security.Pepper, l.dir
		}
	}
	r, err := secrets.ParseRef(ref)
	if err != nil {
		return secrets.Value{}, fmt.Errorf("pepper: %w", err)
	}
	v, err := secrets.Resolver{}.Resolve(r, dir)
	if err != nil {
		return secrets.Value{}, fmt.Errorf("pepper: %w", err)
	}
	return v, nil
}
