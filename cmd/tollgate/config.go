package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/keys"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// loaded is one successfully read config: the typed struct, the directory relative secret and
// key-file paths resolve against, every file read (watched for changes), and where each of
// cfg.Keys came from.
type loaded struct {
	cfg     policy.Config
	dir     string
	files   []string
	keySrcs []keySource
	// fp fingerprints the bytes that were read (see fingerprint), so a watcher compares the
	// files on disk with what was loaded, not with what they held a moment later.
	fp [32]byte
}

// keySource locates one entry of cfg.Keys: in the main config (file -1) or in
// key_files[file], as its index-th entry.
type keySource struct {
	file, index int
}

// readConfig reads path (and its key files) into a fresh viper instance each time: viper is
// not safe for concurrent use, and a reload must never see half of an old state. Unknown
// fields are errors, so a typo cannot silently drop a setting.
func readConfig(path string) (*loaded, error) { return readConfigCreating(path, "") }

// readConfigCreating is readConfig, except that the key file creating (a path, as given on
// the command line) is read as empty when it does not exist yet: `keys new --append` creates it.
func readConfigCreating(path, creating string) (*loaded, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if creating != "" {
		if creating, err = filepath.Abs(creating); err != nil {
			return nil, err
		}
	}
	l := &loaded{dir: filepath.Dir(abs), files: []string{abs}}
	fp := sha256.New()
	read := func(p string) ([]byte, error) {
		raw, err := os.ReadFile(p)
		fingerprintFile(fp, p, raw, err)
		return raw, err
	}
	raw, err := read(abs)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if err := decodeYAMLBytes(filepath.Base(abs), raw, &l.cfg); err != nil {
		return nil, err
	}
	for i := range l.cfg.Keys {
		l.keySrcs = append(l.keySrcs, keySource{file: -1, index: i})
	}
	for i, kf := range l.cfg.KeyFiles {
		p := kf
		if !filepath.IsAbs(p) {
			p = filepath.Join(l.dir, p)
		}
		l.files = append(l.files, p)
		var extra struct {
			Keys []policy.KeyConfig `mapstructure:"keys"`
		}
		raw, err := read(p)
		if p == creating && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key_files[%d] %s: read config: %w", i, kf, err)
		}
		if err := decodeYAMLBytes(filepath.Base(p), raw, &extra); err != nil {
			return nil, fmt.Errorf("key_files[%d] %s: %w", i, kf, err)
		}
		for j := range extra.Keys {
			l.keySrcs = append(l.keySrcs, keySource{file: i, index: j})
		}
		l.cfg.Keys = append(l.cfg.Keys, extra.Keys...)
	}
	copy(l.fp[:], fp.Sum(nil))
	return l, nil
}

// keyRef matches how policy's errors name a key, by its position in the merged keys list: a
// field path (keys[7].team: ...) or a key store record (keys: invalid key record: record 7 ...).
var keyRef = regexp.MustCompile(`^(?:keys\[(\d+)\]|(?:keys: )?(invalid key record): record (\d+)(?: \(id [0-9A-Za-z]+\))?)`)

// explain rewrites each problem (one per line) that names a key coming from a key file, so it
// says which file and which entry (index and public key id, never the hash): policy sees one
// merged keys list, whose positions mean nothing to whoever edits the key file.
func (l *loaded) explain(err error) error {
	if err == nil {
		return nil
	}
	lines := strings.Split(err.Error(), "\n")
	changed := false
	for i, line := range lines {
		m := keyRef.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		num, rest := m[1], line[len(m[0]):]
		if num == "" {
			num, rest = m[3], ": "+m[2]+rest
		}
		n, convErr := strconv.Atoi(num)
		if convErr != nil || n >= len(l.keySrcs) || l.keySrcs[n].file < 0 {
			continue
		}
		src := l.keySrcs[n]
		where := fmt.Sprintf("key_files[%d] %s: keys[%d]", src.file, l.cfg.KeyFiles[src.file], src.index)
		if id := l.cfg.Keys[n].ID; isKeyID(id) {
			where += " (id " + id + ")"
		}
		lines[i] = where + rest
		changed = true
	}
	if !changed {
		return err
	}
	return &reworded{msg: strings.Join(lines, "\n"), err: err}
}

// reworded is an error with a clearer text that still matches what it wraps (errors.Is).
type reworded struct {
	msg string
	err error
}

func (r *reworded) Error() string { return r.msg }
func (r *reworded) Unwrap() error { return r.err }

// isKeyID reports whether s has the shape of a public key id (IDLen base62 characters), so it
// can be named in an error; anything else (a pasted token, say) is not echoed.
func isKeyID(s string) bool {
	if len(s) != keys.IDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// decodeYAML decodes the YAML file at path into out; unknown fields are errors.
func decodeYAML(path string, out any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return decodeYAMLBytes(filepath.Base(path), raw, out)
}

// decodeYAMLBytes decodes raw, the content of the file name, into out.
func decodeYAMLBytes(name string, raw []byte, out any) error {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("%s: invalid YAML: %w", name, err)
	}
	err := v.UnmarshalExact(out, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		stringToTimeHook,
		mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// stringToTimeHook accepts RFC 3339 timestamps and plain dates for expiry fields.
func stringToTimeHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Time{}) || from.Kind() != reflect.String {
		return data, nil
	}
	s := data.(string)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return nil, errors.New("time must be RFC 3339 (2027-01-31T00:00:00Z) or a date (2027-01-31)")
}

// compile turns a read config into a snapshot, resolving secret references. A problem with a
// key from a key file names the file and the entry.
func compile(l *loaded, now time.Time, opts ...policy.CompileOption) (*policy.Snapshot, error) {
	s, err := policy.Compile(l.cfg, l.dir, secrets.Resolver{}, now, opts...)
	return s, l.explain(err)
}
