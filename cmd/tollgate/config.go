package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// loaded is one successfully read config: the typed struct, the directory relative secret and
// key-file paths resolve against, and every file read (watched for changes).
type loaded struct {
	cfg   policy.Config
	dir   string
	files []string
}

// readConfig reads path (and its key files) into a fresh viper instance each time: viper is
// not safe for concurrent use, and a reload must never see half of an old state. Unknown
// fields are errors, so a typo cannot silently drop a setting.
func readConfig(path string) (*loaded, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	l := &loaded{dir: filepath.Dir(abs), files: []string{abs}}
	if err := decodeYAML(abs, &l.cfg); err != nil {
		return nil, err
	}
	for i, kf := range l.cfg.KeyFiles {
		p := kf
		if !filepath.IsAbs(p) {
			p = filepath.Join(l.dir, p)
		}
		var extra struct {
			Keys []policy.KeyConfig `mapstructure:"keys"`
		}
		if err := decodeYAML(p, &extra); err != nil {
			return nil, fmt.Errorf("key_files[%d]: %w", i, err)
		}
		l.cfg.Keys = append(l.cfg.Keys, extra.Keys...)
		l.files = append(l.files, p)
	}
	return l, nil
}

func decodeYAML(path string, out any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("%s: invalid YAML: %w", filepath.Base(path), err)
	}
	err = v.UnmarshalExact(out, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		stringToTimeHook,
		mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
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

// compile turns a read config into a snapshot, resolving secret references.
func compile(l *loaded, now time.Time, opts ...policy.CompileOption) (*policy.Snapshot, error) {
	return policy.Compile(l.cfg, l.dir, secrets.Resolver{}, now, opts...)
}
