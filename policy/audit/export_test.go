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

// SetFileSinkWrite replaces how s writes to its file, to inject faults such
// as a full disk.
func SetFileSinkWrite(s *FileSink, write func(f *os.File, b []byte) (int, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeFile = write
}

// VerifyBytes is Verify over in-memory files (name to content), for fast fuzzing.
func VerifyBytes(files map[string][]byte, order []string, chainKey []byte, pub ed25519.PublicKey) (Report, error) {
	return VerifyBytesWithOptions(files, order, chainKey, pub, VerifyOptions{})
}

// VerifyBytesWithOptions is VerifyWithOptions over in-memory files.
func VerifyBytesWithOptions(files map[string][]byte, order []string, chainKey []byte, pub ed25519.PublicKey, opts VerifyOptions) (Report, error) {
	open := func(path string) (io.ReadCloser, error) {
		b, ok := files[path]
		if !ok {
			return nil, os.ErrNotExist
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return verify(open, order, chainKey, pub, opts)
}
