package main

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/viper"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// sealedAt is one sealed value found in a config file, with its field path.
type sealedAt struct {
	path, value string
}

func runRewrap(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("secrets rewrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "tollgate.yaml", "config file to rewrite")
	to := fs.String("to", "", "id of the KEK (listed in security.keks) to seal every value under (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("secrets rewrap: flags only")
	}
	if !secrets.ValidKEKID(*to) {
		return fmt.Errorf("--to is required: 1-%d characters of [A-Za-z0-9_-]", secrets.MaxKEKIDLen)
	}
	n, kept, err := rewrapFile(*cfgPath, *to)
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(stdout, "nothing to rewrap: %d sealed values in %s, all under KEK %s already\n", kept, *cfgPath, *to)
		return nil
	}
	fmt.Fprintf(stdout, "rewrapped %d sealed values under KEK %s in %s (%d were already under it); "+
		"a running tollgate reloads it. Once every replica has reloaded, the old KEK may be removed from security.keks.\n",
		n, *to, *cfgPath, kept)
	return nil
}

// rewrapFile seals every sealed value of the config at path again under the KEK to, and
// replaces the file atomically (same mode). Key files hold no secret values, so only the
// main file changes. Nothing is written unless every value opens, every new value opens
// under to to the same secret, and the rewritten file decodes to the same settings but for
// those values. It returns how many values changed and how many were already under to.
func rewrapFile(path, to string) (changed, kept int, err error) {
	l, err := readConfig(path)
	if err != nil {
		return 0, 0, err
	}
	ring, err := policy.LoadKeyring(l.cfg.Security.KEKs, l.dir, secrets.Resolver{})
	defer ring.Wipe()
	if err != nil {
		return 0, 0, fmt.Errorf("secrets rewrap: nothing written: every KEK of security.keks must load:\n%w", err)
	}
	if !ring.Has(to) {
		return 0, 0, fmt.Errorf("secrets rewrap: nothing written: security.keks in %s lists no KEK %q (loaded: %v); "+
			"add it first, and make it available to every tollgate", path, to, ring.IDs())
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, 0, err
	}
	raw, err := os.ReadFile(target)
	if err != nil {
		return 0, 0, err
	}
	before, found, err := sealedValues(raw)
	if err != nil {
		return 0, 0, err
	}

	var errs []error
	replace := map[string]string{}
	for _, f := range found {
		if _, done := replace[f.value]; done {
			continue
		}
		nv, err := ring.Rewrap(f.value, to, rand.Reader)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.path, err))
			continue
		}
		replace[f.value] = nv
	}
	if len(errs) > 0 {
		return 0, 0, fmt.Errorf("secrets rewrap: nothing written: some values do not open:\n%w", errors.Join(errs...))
	}
	text := string(raw)
	for old, nv := range replace {
		if old == nv {
			kept++
			continue
		}
		if !strings.Contains(text, old) {
			return 0, 0, fmt.Errorf("secrets rewrap: nothing written: a sealed value of %s is not written on one line "+
				"(write each as a plain or quoted scalar on one line)", path)
		}
		text = strings.ReplaceAll(text, old, nv)
		changed++
	}
	if changed == 0 {
		return 0, kept, nil
	}
	if err := checkRewrapped(ring, before, replace, []byte(text)); err != nil {
		return 0, 0, fmt.Errorf("secrets rewrap: nothing written: %w", err)
	}
	if err := writeFileAtomic(target, []byte(text)); err != nil {
		return 0, 0, err
	}
	return changed, kept, nil
}

// sealedValues decodes a YAML config into generic settings and lists every string that is
// a sealed value, wherever it sits (comments are not values and are not listed).
func sealedValues(raw []byte) (map[string]any, []sealedAt, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
		return nil, nil, fmt.Errorf("invalid YAML: %w", err)
	}
	settings := v.AllSettings()
	var out []sealedAt
	walkStrings(settings, "", func(path, s string) string {
		if secrets.IsSealed(s) {
			out = append(out, sealedAt{path: path, value: s})
		}
		return s
	})
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return settings, out, nil
}

// walkStrings calls fn on every string in v (maps, lists), replacing each with fn's result.
func walkStrings(v any, path string, fn func(path, s string) string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			t[k] = walkStrings(e, p, fn)
		}
	case []any:
		for i, e := range t {
			t[i] = walkStrings(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case string:
		return fn(path, t)
	}
	return v
}

// checkRewrapped decodes the rewritten text and compares it with the original settings with
// the replacements applied: the same settings, and every new value opens under its KEK to the
// same secret as the value it replaces.
func checkRewrapped(ring *secrets.Keyring, before map[string]any, replace map[string]string, text []byte) error {
	after, _, err := sealedValues(text)
	if err != nil {
		return fmt.Errorf("the rewritten file does not decode: %w", err)
	}
	walkStrings(before, "", func(_, s string) string {
		if nv, ok := replace[s]; ok {
			return nv
		}
		return s
	})
	if !reflect.DeepEqual(before, after) {
		return errors.New("the rewritten file would change more than the sealed values (a sealed value also appears elsewhere?)")
	}
	for old, nv := range replace {
		a, err := ring.Open(old)
		if err != nil {
			return err
		}
		b, err := ring.Open(nv)
		if err != nil {
			a.Wipe()
			return err
		}
		ab, bb := a.Bytes(), b.Bytes()
		same := subtle.ConstantTimeCompare(ab, bb) == 1
		clear(ab)
		clear(bb)
		a.Wipe()
		b.Wipe()
		if !same {
			return errors.New("a rewrapped value does not open to the same secret")
		}
	}
	return nil
}

// writeFileAtomic replaces path with data: written to a temporary file in the same
// directory, synced, given path's mode, then renamed over it, so a reader (a reload) sees the
// old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte) error {
	mode := fs.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
