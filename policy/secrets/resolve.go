package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"unicode"
)

// MaxFileSize is the largest secret file Resolve reads, in bytes. A larger file
// is refused with ErrTooLarge: a credential is short, and a bigger file is a
// wrong path (a log, a device such as /dev/zero).
const MaxFileSize = 64 << 10

// Resolver reads the sources that references point to. The zero Resolver uses
// the process environment and the file system; tests set the fields to fakes.
type Resolver struct {
	// LookupEnv looks up an environment variable. Nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)
	// ReadFile reads a whole file. Nil means a reader that stops after
	// MaxFileSize+1 bytes, so an oversized file is never read in full.
	ReadFile func(path string) ([]byte, error)
}

// Resolve resolves r with the default Resolver (process environment, file
// system). See Resolver.Resolve.
func (r Ref) Resolve(baseDir string) (Value, error) {
	return Resolver{}.Resolve(r, baseDir)
}

// Resolve returns the secret ref points to.
//
// For env references the variable's value is used as is; an unset or empty
// variable gives an error wrapping ErrUnset that names the variable.
//
// For file references a relative path is joined to baseDir (normally the
// directory of the config file; "" means the working directory). Trailing
// whitespace, including a final "\r\n", is trimmed. A file that cannot be read
// gives an error naming the path that wraps the cause (errors.Is(err,
// fs.ErrNotExist) for a missing file); an empty file wraps ErrEmpty and a file
// larger than MaxFileSize wraps ErrTooLarge. Errors never contain file
// contents.
func (rs Resolver) Resolve(ref Ref, baseDir string) (Value, error) {
	switch ref.Kind {
	case KindEnv:
		return rs.resolveEnv(ref.Target)
	case KindFile:
		return rs.resolveFile(ref.Target, baseDir)
	default:
		return Value{}, ErrNotReference
	}
}

func (rs Resolver) resolveEnv(name string) (Value, error) {
	if !validEnvName(name) {
		return Value{}, errBadEnvName
	}
	lookup := rs.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(name)
	if !ok || v == "" {
		return Value{}, fmt.Errorf("env:%s: %w", name, ErrUnset)
	}
	return NewValue([]byte(v)), nil
}

func (rs Resolver) resolveFile(path, baseDir string) (Value, error) {
	if path == "" {
		return Value{}, errNoFilePath
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(baseDir, path)
	}
	read := rs.ReadFile
	if read == nil {
		read = readFileLimited
	}
	b, err := read(path)
	if err != nil {
		// The *fs.PathError already names the path; keep its cause only so the
		// path appears once and errors.Is(err, fs.ErrNotExist) still holds.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Value{}, fmt.Errorf("file:%s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		wipe(b)
		return Value{}, fmt.Errorf("file:%s: %w (limit %d bytes)", path, ErrTooLarge, MaxFileSize)
	}
	trimmed := bytes.TrimRightFunc(b, unicode.IsSpace)
	if len(trimmed) == 0 {
		return Value{}, fmt.Errorf("file:%s: %w", path, ErrEmpty)
	}
	v := NewValue(trimmed)
	wipe(b)
	return v, nil
}

// readFileLimited reads at most MaxFileSize+1 bytes of the file at path: enough
// for the caller to see that it is too large without reading all of it.
func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

// wipe zeroes b. It is best effort: the garbage collector may already have
// copied the bytes elsewhere.
func wipe(b []byte) {
	clear(b)
}
