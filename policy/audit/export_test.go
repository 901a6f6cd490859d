package audit

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"os"
	"time"
)

// SetWriterSinkClock sets the checkpoint clock of s, for golden tests.
func SetWriterSinkClock(s *WriterSink, now func() time.Time) { s.now = now }

// VerifyBytes is Verify over in-memory files (name to content), for fast fuzzing.
func VerifyBytes(files map[string][]byte, order []string, chainKey []byte, pub ed25519.PublicKey) (Report, error) {
	open := func(path string) (io.ReadCloser, error) {
		b, ok := files[path]
		if !ok {
			return nil, os.ErrNotExist
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return verify(open, order, chainKey, pub)
}
