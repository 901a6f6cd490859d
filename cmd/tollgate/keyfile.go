package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tollgate-ai/tollgate/policy"
)

var (
	// keysBlock is a key file's `keys:` line opening a block list (or an empty one).
	keysBlock = regexp.MustCompile(`(?m)^keys:[ \t]*(#.*)?$`)
	// keysEmptyFlow is `keys: []`, as a key file with every key revoked may hold.
	keysEmptyFlow = regexp.MustCompile(`(?m)^keys:[ \t]*\[[ \t]*\][ \t]*(#.*)?$`)
	// firstItem finds the indentation of the first list item.
	firstItem = regexp.MustCompile(`(?m)^([ \t]*)- `)
	// blankOrComment matches a file with no YAML content.
	blankOrComment = regexp.MustCompile(`^(?:[ \t]*(?:#.*)?\r?\n?)*$`)
)

// appendKey adds an entry to a key file, creating it if missing, and keeps what the file
// held (comments, other entries, their fields). The result is decoded and compared with the
// old entries before it is written; the whole file is written anew and renamed over the old
// one, so a reload never reads half an entry.
func appendKey(path string, k policy.KeyConfig) error {
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return err
	}
	updated, err := withEntry(old, k)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := checkAppended(path, old, updated, k.ID); err != nil {
		return err
	}
	return writeFileAtomic(path, updated)
}

// withEntry returns the key file text old with k appended to its keys: list.
func withEntry(old []byte, k policy.KeyConfig) ([]byte, error) {
	text := string(old)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	switch {
	case blankOrComment.MatchString(text):
		return []byte(text + "keys:\n" + stanza(k, "  ")), nil
	case keysEmptyFlow.MatchString(text):
		// `keys: []` holds no entry: the list becomes a block list with this one.
		text = keysEmptyFlow.ReplaceAllString(text, "keys: ${1}")
		return []byte(text + stanza(k, "  ")), nil
	case keysBlock.MatchString(text):
		indent := "  "
		loc := keysBlock.FindStringIndex(text)
		if m := firstItem.FindStringSubmatch(text[loc[1]:]); m != nil {
			indent = m[1]
		}
		return []byte(text + stanza(k, indent)), nil
	default:
		return nil, errors.New("cannot append: the file must hold a block list, `keys:` on its own line " +
			"followed by one `- id: ...` entry per key (or `keys: []`)")
	}
}

// checkAppended decodes the old and the new text and refuses the new one unless it holds the
// old entries plus one, with id, last: an unusual layout must never write a broken key file.
func checkAppended(path string, old, updated []byte, id string) error {
	decode := func(b []byte) ([]policy.KeyConfig, error) {
		var kf struct {
			Keys []policy.KeyConfig `mapstructure:"keys"`
		}
		if len(b) == 0 {
			return nil, nil
		}
		err := decodeYAMLBytes(filepath.Base(path), b, &kf)
		return kf.Keys, err
	}
	before, err := decode(old)
	if err != nil {
		return fmt.Errorf("%s: not a valid key file, nothing written: %w", path, err)
	}
	after, err := decode(updated)
	if err != nil || len(after) != len(before)+1 || after[len(after)-1].ID != id {
		return fmt.Errorf("%s: cannot append to this layout, nothing written; use a block list "+
			"(`keys:` then one `- id: ...` entry per key)", path)
	}
	return nil
}
