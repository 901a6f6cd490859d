package audit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// TestVerifyDetectsRemovedEnds removes whole files from the head or the tail
// of a rotated set of a stopped gateway (six files of two events each, the
// last closed at shutdown). Checkpoints say why they were written (rotation
// or close) and which file of their chain they close, so neither end can go
// missing unnoticed.
func TestVerifyDetectsRemovedEnds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		keep    func(files []string) []string
		want    error // nil: the set verifies
		file    int   // index into the full set of the file with the first problem
		line    int
		seq     uint64
		message string
	}{
		{name: "untouched", keep: func(f []string) []string { return f }},
		{name: "first file removed", keep: func(f []string) []string { return f[1:] },
			want: audit.ErrMissing, file: 1, line: 1, seq: 3,
			message: "the set starts at seq 3, in file 2 of its chain: 1 earlier file(s) are not in the set"},
		{name: "first two files removed", keep: func(f []string) []string { return f[2:] },
			want: audit.ErrMissing, file: 2, line: 1, seq: 5,
			message: "the set starts at seq 5, in file 3 of its chain: 2 earlier file(s) are not in the set"},
		{name: "last file removed after a clean shutdown", keep: func(f []string) []string { return f[:5] },
			want: audit.ErrMissing, file: 4, line: 3, seq: 10,
			message: "file(s) after it removed: its checkpoint (file 5 of its chain) was written on rotation and no later file continues the chain"},
		{name: "last two files removed", keep: func(f []string) []string { return f[:4] },
			want: audit.ErrMissing, file: 3, line: 3, seq: 8, message: "file(s) after it removed"},
		{name: "both ends removed", keep: func(f []string) []string { return f[1:5] },
			want: audit.ErrMissing, file: 1, line: 1, seq: 3, message: "1 earlier file(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := writeSet(t, t.TempDir(), 12, smallFile)
			require.Len(t, files, 6)
			rep, err := audit.Verify(tc.keep(files), chainKey, ckPub)
			if tc.want == nil {
				require.NoError(t, err)
				require.False(t, rep.StartsMidChain)
				require.Nil(t, rep.Unsealed)
				return
			}
			require.ErrorIs(t, err, tc.want)
			p := rep.Problem
			require.Equal(t, files[tc.file], p.File, p.Error())
			require.Equal(t, tc.line, p.Line, p.Error())
			require.Equal(t, tc.seq, p.Seq, p.Error())
			require.Contains(t, p.Error(), tc.message)
		})
	}
}

// TestVerifyLiveSetEnds: a live set (the active file holds records no
// checkpoint covers yet) passes; without its active file it fails, since the
// newest rotated file says another file follows.
func TestVerifyLiveSetEnds(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, MaxBytes: smallFile, Fsync: audit.FsyncNever, CheckpointKey: ckPriv})
	require.NoError(t, err)
	e := newEmitter(t, audit.EmitterConfig{}, fs)
	t.Cleanup(func() { closeEmitter(t, e) })
	for i := range 7 {
		ev := sampleEvent(i)
		e.Emit(&ev)
	}
	require.Eventually(t, func() bool { return e.Stats().Written == 7 }, 5*time.Second, time.Millisecond)
	files := rotatedFiles(t, path)
	require.Len(t, files, 4)
	snapshot := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		snapshot[f] = b
	}

	rep, err := audit.VerifyBytes(snapshot, files, chainKey, ckPub)
	require.NoError(t, err)
	require.NotNil(t, rep.Unsealed)
	_, err = audit.VerifyBytesWithOptions(snapshot, files, chainKey, ckPub, audit.VerifyOptions{RequireSealed: true})
	require.ErrorIs(t, err, audit.ErrTruncated, "a live set is not sealed")

	// Only the active file: no checkpoint tells the format, so it is held to
	// the current one.
	rep, err = audit.VerifyBytes(snapshot, files[3:], chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Contains(t, rep.Problem.Error(), "the set starts at seq 7 of its chain: earlier records are not in the set")
	_, err = audit.VerifyBytesWithOptions(snapshot, files[3:], chainKey, ckPub, audit.VerifyOptions{AllowRetention: true})
	require.NoError(t, err)

	delete(snapshot, path)
	rep, err = audit.VerifyBytes(snapshot, files[:3], chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Equal(t, files[2], rep.Problem.File)
	require.Contains(t, rep.Problem.Error(), "file(s) after it removed")
}

// TestVerifyDetectsRemovedLifetimeAtHead: a set that starts in the middle of
// a chain, or with a chain whose start record links to an earlier one, is
// missing its oldest files; with retention allowed both are notes.
func TestVerifyDetectsRemovedLifetimeAtHead(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	lifetime(t, path, smallFile, 1, 4, false)
	first := rotatedFiles(t, path)
	lifetime(t, path, smallFile, 2, 4, false)
	files := rotatedFiles(t, path)
	_, err := audit.Verify(files, chainKey, ckPub)
	require.NoError(t, err)
	retention := audit.VerifyOptions{AllowRetention: true}

	// From lifetime 1's last file, which also holds the start of lifetime 2.
	rep, err := audit.Verify(files[len(first)-1:], chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Contains(t, rep.Problem.Error(), "the set starts at seq 3, in file 2 of its chain: 1 earlier file(s) are not in the set")
	rep, err = audit.VerifyWithOptions(files[len(first)-1:], chainKey, ckPub, retention)
	require.NoError(t, err)
	require.True(t, rep.StartsMidChain)
	require.Equal(t, uint64(2), rep.StartsAtFile)

	// Without any file of lifetime 1.
	rep, err = audit.Verify(files[len(first):], chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Equal(t, files[len(first)], rep.Problem.File)
	require.Equal(t, 1, rep.Problem.Line)
	require.Contains(t, rep.Problem.Error(), "the set starts with a chain that follows seq 4 of an earlier chain, which is not in the set")
	require.True(t, rep.HeadMissing)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "hint: if older files were removed on purpose (retention), verify with --allow-retention\n")
	rep, err = audit.VerifyWithOptions(files[len(first):], chainKey, ckPub, retention)
	require.NoError(t, err)
	require.Equal(t, uint64(4), rep.StartsAfterSeq)
	require.False(t, rep.HeadMissing)
}

// TestVerifyRetentionOption: AllowRetention turns a missing head into a note,
// never a missing tail.
func TestVerifyRetentionOption(t *testing.T) {
	t.Parallel()
	files := writeSet(t, t.TempDir(), 12, smallFile)
	retention := audit.VerifyOptions{AllowRetention: true}
	rep, err := audit.VerifyWithOptions(files[2:], chainKey, ckPub, retention)
	require.NoError(t, err)
	require.True(t, rep.StartsMidChain)
	require.False(t, rep.HeadMissing)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "OK\n")
	require.Contains(t, out.String(), "note: the set starts at seq 5, in file 3 of its chain; 2 earlier file(s) are not in it\n")
	require.NotContains(t, out.String(), "older version")

	rep, err = audit.VerifyWithOptions(files[2:5], chainKey, ckPub, retention)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Len(t, rep.Problems, 1, "%v", rep.Problems)
	require.Equal(t, files[4], rep.Problem.File)
	require.Contains(t, rep.Problem.Error(), "file(s) after it removed")

	// Both ends removed, without the option: both are reported, head first.
	rep, err = audit.Verify(files[2:5], chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Len(t, rep.Problems, 2, "%v", rep.Problems)
	require.Equal(t, []string{files[2], files[4]}, []string{rep.Problems[0].File, rep.Problems[1].File})
}

// TestVerifyEmptiedLastFile: an empty file, or one holding only the start of
// a record, after a rotation checkpoint does not continue the chain:
// otherwise any number of files before it could be removed unnoticed.
func TestVerifyEmptiedLastFile(t *testing.T) {
	t.Parallel()
	for _, content := range []string{"", `{"v":1,"time":"2026-`} {
		files := writeSet(t, t.TempDir(), 12, smallFile)
		last := files[len(files)-1]
		require.NoError(t, os.WriteFile(last, []byte(content), 0o600))
		for _, set := range [][]string{files, append(files[:4:4], last)} {
			rep, err := audit.Verify(set, chainKey, ckPub)
			require.ErrorIs(t, err, audit.ErrMissing, "%q", content)
			require.Equal(t, set[len(set)-2], rep.Problem.File)
			require.Contains(t, rep.Problem.Error(), "file(s) after it removed")
		}
	}
}

// TestVerifyRequireSealed: a stopped gateway's set whose newest file was
// removed and whose last checkpoint was cut looks like a set still being
// written (an unsealed tail). Given as sealed, it fails.
func TestVerifyRequireSealed(t *testing.T) {
	t.Parallel()
	files := writeSet(t, t.TempDir(), 12, smallFile)
	sealed := audit.VerifyOptions{RequireSealed: true}
	_, err := audit.VerifyWithOptions(files, chainKey, ckPub, sealed)
	require.NoError(t, err)

	deleteLine(t, files[4], 2)
	rep, err := audit.Verify(files[:5], chainKey, ckPub)
	require.NoError(t, err, "the documented limit: it looks like a live set")
	require.NotNil(t, rep.Unsealed)
	rep, err = audit.VerifyWithOptions(files[:5], chainKey, ckPub, sealed)
	require.ErrorIs(t, err, audit.ErrTruncated)
	require.Equal(t, files[4], rep.Problem.File)
	require.Equal(t, 1, rep.Problem.Line)
	require.Equal(t, uint64(9), rep.Problem.Seq)
	require.Contains(t, rep.Problem.Error(), "given as sealed")
}

// TestVerifyLegacyEnds: files written before checkpoints named their place in
// the chain verify as before, ends removed or not, with a note that such
// removals cannot be detected for them.
func TestVerifyLegacyEnds(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"rotated", "linked"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			files := rotatedFiles(t, filepath.Join("testdata", "legacy", dir, "audit.log"))
			require.GreaterOrEqual(t, len(files), 3)
			for _, set := range [][]string{files, files[1:], files[:len(files)-1], files[1 : len(files)-1]} {
				rep, err := audit.Verify(set, chainKey, ckPub)
				require.NoError(t, err, "%v", set)
				require.Equal(t, rep.Checkpoints, rep.LegacyCheckpoints)
				var out bytes.Buffer
				require.NoError(t, rep.WriteText(&out))
				require.Contains(t, out.String(), "checkpoint(s) from an older version do not name their file's place in the chain: "+
					"whole files removed from the head or the tail of their chains cannot be detected")
			}
		})
	}
}

// TestVerifyUpgradedTrail: a gateway of this version appends to a trail an
// older one wrote. The old part verifies as before; the new part's ends are
// checked.
func TestVerifyUpgradedTrail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := rotatedFiles(t, filepath.Join("testdata", "legacy", "linked", "audit.log"))
	for _, f := range old {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600))
	}
	path := filepath.Join(dir, "audit.log")
	lifetime(t, path, smallFile, 3, 5, false)
	files := rotatedFiles(t, path)
	require.Greater(t, len(files), len(old)+1)
	rep, err := audit.Verify(files, chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, 3, rep.Segments)
	require.Equal(t, uint64(5), rep.LegacyCheckpoints, "every checkpoint of the legacy files")

	rep, err = audit.Verify(files[1:], chainKey, ckPub)
	require.NoError(t, err, "the first chain is a legacy one: retention is a note")
	require.True(t, rep.StartsMidChain)

	_, err = audit.Verify(files[:len(files)-1], chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing, "the last chain is a new one: its tail is checked")
}

// TestCheckpointMembersKnownAnswer pins first_seq, chain_file and reason as
// SCHEMA.md describes them, across rotations and a restart.
func TestCheckpointMembersKnownAnswer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	lifetime(t, path, smallFile, 1, 5, false)
	lifetime(t, path, smallFile, 2, 3, false)
	type member struct {
		Seq       uint64 `json:"seq"`
		Count     uint64 `json:"count"`
		FirstSeq  uint64 `json:"first_seq"`
		ChainFile uint64 `json:"chain_file"`
		Reason    string `json:"reason"`
	}
	var got []member
	for _, f := range rotatedFiles(t, path) {
		for _, l := range readLines(t, f) {
			if bytes.Contains(l, []byte(`"type":"checkpoint"`)) {
				var m member
				require.NoError(t, json.Unmarshal(l, &m))
				got = append(got, m)
			}
		}
	}
	require.Equal(t, []member{
		{Seq: 2, Count: 2, FirstSeq: 1, ChainFile: 1, Reason: "rotate"},
		{Seq: 4, Count: 2, FirstSeq: 3, ChainFile: 2, Reason: "rotate"},
		{Seq: 5, Count: 1, FirstSeq: 5, ChainFile: 3, Reason: "close"},
		// Lifetime 2 starts in lifetime 1's last file with its start record.
		{Seq: 1, Count: 1, FirstSeq: 1, ChainFile: 1, Reason: "rotate"},
		{Seq: 3, Count: 2, FirstSeq: 2, ChainFile: 2, Reason: "rotate"},
		{Seq: 4, Count: 1, FirstSeq: 4, ChainFile: 3, Reason: "close"},
	}, got)
}

// TestVerifyDetectsNewestFileRemovedBeforeRestart: the newest file of a
// stopped gateway is removed, then the gateway starts again and links its new
// chain to what is left. The checkpoint before the hole says another file
// followed it.
func TestVerifyDetectsNewestFileRemovedBeforeRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	lifetime(t, path, smallFile, 1, 5, false)
	first := rotatedFiles(t, path)
	require.Len(t, first, 3)
	require.NoError(t, os.Remove(path))
	lifetime(t, path, smallFile, 2, 2, false)
	rep, err := audit.Verify(rotatedFiles(t, path), chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Equal(t, first[1], rep.Problem.File)
	require.Contains(t, rep.Problem.Error(), "file(s) after it removed")
}
