package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

const keysUsage = `usage: tollgate keys new --config FILE --team T --name N [--models a,b] [--guardrails PROFILE|none]
                         [--expires 720h|2027-01-31] [--append KEYFILE]
       tollgate keys new --pepper env:NAME|file:PATH --team T --name N [...]   (prints the entry unchecked)`

// newKey is a freshly minted virtual key and its config entry.
type newKey struct {
	token keys.Token
	entry policy.KeyConfig
}

// mintKey generates a key for entry and hashes its secret with the pepper; entry's ID and
// Hash are filled in.
func mintKey(pepper []byte, entry policy.KeyConfig) (newKey, error) {
	if err := keys.CheckPepper(pepper); err != nil {
		return newKey{}, err
	}
	tok, err := keys.Generate(rand.Reader)
	if err != nil {
		return newKey{}, err
	}
	entry.ID, entry.Hash = tok.ID, keys.Hash(pepper, tok.Secret).String()
	return newKey{token: tok, entry: entry}, nil
}

// stanza renders one key as a YAML list item, its dash indented by indent.
func stanza(k policy.KeyConfig, indent string) string {
	var b strings.Builder
	f := indent + "  " // the item's fields line up after "- "
	fmt.Fprintf(&b, "%s- id: %s\n%sname: %q\n%steam: %q\n%shash: %s\n", indent, k.ID, f, k.Name, f, k.Team, f, k.Hash)
	if len(k.Models) > 0 {
		fmt.Fprintf(&b, "%smodels: [%s]\n", f, quoteList(k.Models))
	}
	if k.Guardrails != "" {
		fmt.Fprintf(&b, "%sguardrails: %q\n", f, k.Guardrails)
	}
	if !k.Expires.IsZero() {
		fmt.Fprintf(&b, "%sexpires: %s\n", f, k.Expires.UTC().Format(time.RFC3339))
	}
	if k.Disabled {
		fmt.Fprintf(&b, "%sdisabled: true\n", f)
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
		fmt.Fprintln(stderr, keysUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("keys new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	team := fs.String("team", "", "team the key belongs to (required)")
	name := fs.String("name", "", "human-readable key name (required)")
	models := fs.String("models", "", "comma-separated model allow-list (default: the team's)")
	guardrails := fs.String("guardrails", "", "guardrail profile for this key, or none (default: the team's)")
	expires := fs.String("expires", "", "expiry: a duration from now, a date or an RFC 3339 time")
	cfgPath := fs.String("config", "", "config file: its pepper, and the teams, models and profiles the key is checked against")
	pepperRef := fs.String("pepper", "", "pepper reference, env:NAME or file:PATH (instead of --config; nothing is checked)")
	appendTo := fs.String("append", "", "append the entry to this key file (created if missing); needs --config")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keys new: unexpected argument %q (flags only)", fs.Arg(0))
	}
	if *team == "" || *name == "" {
		return errors.New("--team and --name are required")
	}
	if *appendTo != "" && *cfgPath == "" {
		return errors.New("--append needs --config, so the entry is checked against the teams, models and guardrail profiles tollgate will load")
	}
	if *cfgPath != "" && *pepperRef != "" {
		return errors.New("give --config or --pepper, not both")
	}
	exp, err := parseExpiry(*expires, time.Now())
	if err != nil {
		return err
	}
	entry := policy.KeyConfig{Name: *name, Team: *team, Guardrails: *guardrails, Expires: exp}
	for m := range strings.SplitSeq(*models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			entry.Models = append(entry.Models, m)
		}
	}

	var pepper secrets.Value
	var l *loaded
	if *cfgPath != "" {
		// A missing key file is read as empty only when it is the one being created.
		if l, err = readConfigCreating(*cfgPath, *appendTo); err != nil {
			return err
		}
		l.cfg.ApplyDefaults()
		if pepper, err = resolvePepper(l.cfg.Security.Pepper, l.dir); err != nil {
			return err
		}
	} else {
		ref := *pepperRef
		if ref == "" {
			ref = policy.DefaultPepperRef
		}
		if pepper, err = resolvePepper(ref, "."); err != nil {
			return err
		}
	}
	k, err := mintKey(pepper.Bytes(), entry)
	if err != nil {
		return err
	}
	if l != nil {
		// Check before anything is written or shown: an entry tollgate would refuse freezes
		// every later reload of the key file.
		if err := checkNewKey(l, k.entry, *cfgPath); err != nil {
			return err
		}
	}
	if *appendTo != "" {
		if err := appendKey(*appendTo, k.entry); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "Virtual key (shown once; tollgate stores only its hash):\n\n  %s\n\n", k.token.Reveal())
	switch {
	case *appendTo != "" && l.hasKeyFile(*appendTo):
		fmt.Fprintf(stdout, "Appended key %s to %s; a running tollgate picks it up without a restart.\n", k.entry.ID, *appendTo)
	case *appendTo != "":
		fmt.Fprintf(stdout, "Appended key %s to %s.\n", k.entry.ID, *appendTo)
		fmt.Fprintf(stderr, "warning: %s is not in key_files of %s: tollgate does not read it until it is listed there\n", *appendTo, *cfgPath)
	default:
		fmt.Fprintf(stdout, "Add this entry to keys: in your config (or a key file); it reloads without a restart:\n\n%s", stanza(k.entry, "  "))
		if l == nil {
			fmt.Fprintln(stderr, "note: not checked against a config (give --config to check the team, models and guardrails)")
		}
	}
	return nil
}

// checkNewKey refuses an entry the config at cfgPath would not load: an unknown team, model
// or guardrail profile, or any problem of the config as it would be with the entry added.
func checkNewKey(l *loaded, k policy.KeyConfig, cfgPath string) error {
	c := l.cfg
	var errs []error
	var teams []string
	for _, t := range c.Teams {
		teams = append(teams, t.Name)
	}
	if !slices.Contains(teams, k.Team) {
		errs = append(errs, fmt.Errorf("--team: unknown team %q (teams in %s: %s)", k.Team, cfgPath, listOrNone(teams)))
	}
	known := map[string]bool{}
	var names []string
	for _, m := range c.Models {
		names = append(names, m.Name)
		for _, n := range append([]string{m.Name}, m.Aliases...) {
			known[n] = true
		}
	}
	for _, m := range k.Models {
		if !known[m] {
			errs = append(errs, fmt.Errorf("--models: unknown model %q (models in %s: %s)", m, cfgPath, listOrNone(names)))
		}
	}
	if k.Guardrails != "" && k.Guardrails != policy.NoProfile {
		profiles := []string{policy.NoProfile}
		for _, p := range c.Guardrails.Profiles {
			profiles = append(profiles, p.Name)
		}
		if !slices.Contains(profiles, k.Guardrails) {
			errs = append(errs, fmt.Errorf("--guardrails: unknown profile %q (profiles in %s: %s)", k.Guardrails, cfgPath, strings.Join(profiles, ", ")))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("keys new: nothing written:\n%w", errors.Join(errs...))
	}
	c.Keys = append(slices.Clone(c.Keys), k)
	if err := c.Validate(); err != nil {
		return fmt.Errorf("keys new: nothing written: %s would not load with this key:\n%w", cfgPath, l.explain(err))
	}
	return nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// hasKeyFile reports whether path is one of the config's key files.
func (l *loaded) hasKeyFile(path string) bool {
	abs, err := filepath.Abs(path)
	return err == nil && slices.Contains(l.files[1:], abs)
}

// resolvePepper reads the pepper reference (relative file references resolve against dir).
func resolvePepper(ref, dir string) (secrets.Value, error) {
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
