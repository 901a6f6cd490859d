package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// lifetime runs one process lifetime of a FileSink at path: n events, then a
// clean Close, or a crash (the records reach the file, the checkpoint never
// does). It returns the number of lines the file had before.
func lifetime(t *testing.T, path string, maxBytes int64, id byte, n int, crash bool) int {
	t.Helper()
	before := 0
	if _, err := os.Stat(path); err == nil {
		before = len(readLines(t, path))
	}
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, MaxBytes: maxBytes, Fsync: audit.FsyncNever, CheckpointKey: ckPriv})
	require.NoError(t, err)
	e := newEmitter(t, audit.EmitterConfig{Rand: zeroRand{id}}, fs)
	for i := range n {
		ev := sampleEvent(int(id)*10 + i)
		e.Emit(&ev)
	}
	if !crash {
		closeEmitter(t, e)
		return before
	}
	want := uint64(n)
	if before > 0 {
		want++ // the start record
	}
	require.Eventually(t, func() bool { return e.Stats().Written == want }, 5*time.Second, time.Millisecond)
	// Simulate the crash: keep what is on disk now, let the sink finish
	// elsewhere, then put the file back as it was.
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	closeEmitter(t, e)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return before
}

// TestVerifyDetectsDeletedLifetime: each start links its chain to the end of
// the previous one, so deleting a whole process lifetime (its records and
// its checkpoint) from between two others is reported.
func TestVerifyDetectsDeletedLifetime(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	lifetime(t, path, 0, 1, 3, false)
	second := lifetime(t, path, 0, 2, 2, false)
	third := lifetime(t, path, 0, 3, 2, false)
	rep, err := audit.Verify([]string{path}, chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, 3, rep.Segments)
	require.Equal(t, uint64(7), rep.Events)

	l := readLines(t, path)
	writeLines(t, path, append(l[:second:second], l[third:]...))
	rep, err = audit.Verify([]string{path}, chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Equal(t, second+1, rep.Problem.Line)
	require.Contains(t, err.Error(), "a chain segment is missing")
	require.Equal(t, uint64(5), rep.Events, "the chain after the hole is still verified")
}

// TestVerifyDetectsDeletedLifetimeAcrossFiles: the same with rotated files,
// where the deleted lifetime is the files that hold nothing else.
func TestVerifyDetectsDeletedLifetimeAcrossFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	lifetime(t, path, smallFile, 1, 3, false) // req-k, req-l, req-m
	lifetime(t, path, smallFile, 2, 6, false) // req-u ... req-z
	lifetime(t, path, smallFile, 3, 3, false) // req-e, req-f, req-g
	files := rotatedFiles(t, path)
	_, err := audit.Verify(files, chainKey, ckPub)
	require.NoError(t, err)

	has := func(b []byte, ids string) bool {
		for _, id := range ids {
			if bytes.Contains(b, []byte(`"request_id":"req-`+string(id)+`"`)) {
				return true
			}
		}
		return false
	}
	var kept []string
	deleted := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		if has(b, "uvwxyz") && !has(b, "klmefg") {
			require.NoError(t, os.Remove(f))
			deleted++
			continue
		}
		kept = append(kept, f)
	}
	require.GreaterOrEqual(t, deleted, 2)
	rep, err := audit.Verify(kept, chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing, "lifetime 2's files are gone: %v", rep.Problems)
	require.Contains(t, err.Error(), "a chain segment is missing")
}

// TestVerifyChainsAfterCrash: a crash leaves a chain without its checkpoint;
// the next start appends a new chain to the same file, linked to the last
// record. Verify checks both chains without splitting the file, notes the
// unclosed chain, and still reports edits in either.
func TestVerifyChainsAfterCrash(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	lifetime(t, path, 0, 1, 3, true)
	lifetime(t, path, 0, 2, 2, false)
	rep, err := audit.Verify([]string{path}, chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Segments)
	require.Equal(t, uint64(5), rep.Events)
	require.Equal(t, []audit.ChainEnd{{File: path, Line: 3, Seq: 3}}, rep.Unclosed)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "no checkpoint (the writer stopped without closing); the next chain links to it")

	orig := readLines(t, path)
	replaceInLine(t, path, 1, `"status":200`, `"status":201`)
	replaceInLine(t, path, 5, `"status":200`, `"status":201`)
	rep, err = audit.Verify([]string{path}, chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrModified)
	require.Len(t, rep.Problems, 2)
	require.Equal(t, []int{2, 6}, []int{rep.Problems[0].Line, rep.Problems[1].Line})

	// Records cut from the end of the crashed chain no longer match the link.
	writeLines(t, path, append(orig[:2:2], orig[3:]...))
	_, err = audit.Verify([]string{path}, chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing)
}

// TestVerifyLegacyFiles: files written by the previous version (no start or
// gap records) still verify; a crashed legacy chain is reported, and the
// chain after it is verified too.
func TestVerifyLegacyFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "legacy")
	rep, err := audit.Verify([]string{filepath.Join(dir, "restart.log")}, chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Segments)
	rotated, err := filepath.Glob(filepath.Join(dir, "rotated", "*"))
	require.NoError(t, err)
	rep, err = audit.Verify(rotated, chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, uint64(5), rep.Events)
	events, err := filepath.Glob(filepath.Join(dir, "events", "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, events)
	for _, f := range events {
		rep, err := audit.Verify([]string{f}, chainKey, ckPub)
		require.NoError(t, err, f)
		require.Equal(t, uint64(1), rep.LegacyCheckpoints)
	}

	b, err := os.ReadFile(filepath.Join(dir, "crash.log"))
	require.NoError(t, err)
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[4] = bytes.Replace(lines[4], []byte(`"status":200`), []byte(`"status":201`), 1)
	rep, err = audit.VerifyBytes(map[string][]byte{"crash.log": bytes.Join(lines, nil)}, []string{"crash.log"}, chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrTruncated)
	require.Len(t, rep.Problems, 2, "%v", rep.Problems)
	require.Equal(t, 3, rep.Problems[0].Line)
	require.ErrorIs(t, rep.Problems[1], audit.ErrModified)
	require.Equal(t, 5, rep.Problems[1].Line)
	require.Equal(t, uint64(5), rep.Events)
}

// TestVerifyLiveFile: a file still being written has no closing checkpoint
// yet. Verify checks it up to its last record and passes with an "unsealed
// tail" note, even with a record half written at the end; edits and
// deletions in the tail still fail.
func TestVerifyLiveFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, MaxBytes: smallFile, Fsync: audit.FsyncNever, CheckpointKey: ckPriv})
	require.NoError(t, err)
	e := newEmitter(t, audit.EmitterConfig{}, fs)
	t.Cleanup(func() { closeEmitter(t, e) })
	for i := range 5 {
		ev := sampleEvent(i)
		e.Emit(&ev)
	}
	require.Eventually(t, func() bool { return e.Stats().Written == 5 }, 5*time.Second, time.Millisecond)
	files := rotatedFiles(t, path)
	require.Len(t, files, 3)
	snapshot := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		snapshot[f] = b
	}
	verify := func(mutate func(live []byte) []byte) (audit.Report, error) {
		set := map[string][]byte{}
		for k, v := range snapshot {
			set[k] = bytes.Clone(v)
		}
		set[path] = mutate(set[path])
		return audit.VerifyBytes(set, files, chainKey, ckPub)
	}

	rep, err := verify(func(b []byte) []byte { return b })
	require.NoError(t, err)
	require.Equal(t, &audit.UnsealedTail{File: path, Line: 1, FromSeq: 5, ToSeq: 5, Records: 1}, rep.Unsealed)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "OK (unsealed tail)\n")
	require.Contains(t, out.String(), "unsealed tail: seq 5..5 (1 record(s)) in "+path)

	rep, err = verify(func(b []byte) []byte { return append(b, `{"v":1,"time":"2026-08-17T1`...) })
	require.NoError(t, err, "a record being written")
	require.True(t, rep.Unsealed.Incomplete)

	_, err = verify(func(b []byte) []byte { return bytes.Replace(b, []byte(`"status":200`), []byte(`"status":201`), 1) })
	require.ErrorIs(t, err, audit.ErrModified)

	_, err = verify(func(b []byte) []byte { return append(b, "garbage\n"...) })
	require.ErrorIs(t, err, audit.ErrMalformed)
}

// TestVerifyReportsEveryProblem: Verify goes on after a problem and reports
// each one, across files.
func TestVerifyReportsEveryProblem(t *testing.T) {
	t.Parallel()
	files := writeSet(t, t.TempDir(), 12, smallFile)
	replaceInLine(t, files[1], 0, `"status":200`, `"status":201`)
	deleteLine(t, files[4], 0)
	l := readLines(t, files[2])
	writeLines(t, files[2], [][]byte{l[0], []byte("{\"v\":1,\"torn\n"), l[1], l[2]})
	rep, err := audit.Verify(files, chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrModified)
	type where struct {
		file, line int
		err        error
	}
	var got []where
	for _, p := range rep.Problems {
		for i, f := range files {
			if f == p.File {
				got = append(got, where{i, p.Line, p.Err})
			}
		}
	}
	require.Equal(t, []where{
		{1, 1, audit.ErrModified},
		{2, 2, audit.ErrMalformed},
		{4, 1, audit.ErrMissing},
		{4, 2, audit.ErrMissing},
	}, got, "%v", rep.Problems)
	require.Equal(t, uint64(11), rep.Events, "every record left is checked")
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Equal(t, 4, bytes.Count(out.Bytes(), []byte("FAIL ")), out.String())
}
