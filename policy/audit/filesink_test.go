package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

func TestFileSinkRotation(t *testing.T) {
	t.Parallel()
	for _, mode := range []audit.FsyncMode{audit.FsyncAlways, audit.FsyncInterval, audit.FsyncNever} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "logs", "audit.log")
			fs, err := audit.NewFileSink(audit.FileSinkConfig{
				Path: path, MaxBytes: 4000, Fsync: mode, FsyncInterval: time.Millisecond, CheckpointKey: ckPriv,
			})
			require.NoError(t, err)
			e := newEmitter(t, audit.EmitterConfig{BatchSize: 4}, fs)
			for i := range 40 {
				ev := sampleEvent(i)
				e.Emit(&ev)
				if i%7 == 0 {
					time.Sleep(2 * time.Millisecond) // let the interval syncer run between writes
				}
			}
			closeEmitter(t, e)

			files := rotatedFiles(t, path)
			require.Greater(t, len(files), 5)
			for _, f := range files {
				st, err := os.Stat(f)
				require.NoError(t, err)
				require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
				lines := readLines(t, f)
				require.Contains(t, string(lines[len(lines)-1]), `"type":"checkpoint"`, f)
				// Records stay under MaxBytes; the checkpoint may go past it.
				require.LessOrEqual(t, st.Size()-int64(len(lines[len(lines)-1])), int64(4000))
			}
			rep, err := audit.Verify(files, chainKey, ckPub)
			require.NoError(t, err)
			require.Equal(t, uint64(40), rep.Events)
			require.Equal(t, uint64(len(files)), rep.Checkpoints)
		})
	}
}

func TestFileSinkReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	writeN := func(id byte, n int) {
		fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, MaxBytes: smallFile, CheckpointKey: ckPriv})
		require.NoError(t, err)
		e := newEmitter(t, audit.EmitterConfig{Rand: zeroRand{id}}, fs)
		for i := range n {
			ev := sampleEvent(i)
			e.Emit(&ev)
		}
		closeEmitter(t, e)
	}
	writeN(1, 5)
	require.FileExists(t, path+".2")
	require.NoFileExists(t, path+".3")
	writeN(2, 5) // continues at .3, never renames .1 or .2 again
	files := rotatedFiles(t, path)
	require.Greater(t, len(files), 4)
	rep, err := audit.Verify(files, chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Segments)
	require.Equal(t, uint64(10), rep.Events)
}

func TestFileSinkRepairsPartialLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	require.NoError(t, os.WriteFile(path, []byte(`{"v":1,"time":"2026-`), 0o600)) // a crash mid-write
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, CheckpointKey: ckPriv})
	require.NoError(t, err)
	e := newEmitter(t, audit.EmitterConfig{}, fs)
	ev := sampleEvent(0)
	e.Emit(&ev)
	closeEmitter(t, e)
	lines := readLines(t, path)
	require.Len(t, lines, 3, "the damaged line stays on its own")
	_, err = audit.Verify([]string{path}, chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMalformed)
	require.Contains(t, err.Error(), "audit.log:1:")
}

func TestFileSinkContract(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  audit.FileSinkConfig
		want error
	}{
		{"no key", audit.FileSinkConfig{Path: filepath.Join(dir, "a")}, audit.ErrBadCheckpointKey},
		{"no path", audit.FileSinkConfig{CheckpointKey: ckPriv}, audit.ErrBadConfig},
		{"bad fsync", audit.FileSinkConfig{Path: filepath.Join(dir, "a"), CheckpointKey: ckPriv, Fsync: "sometimes"}, audit.ErrBadConfig},
		{"negative size", audit.FileSinkConfig{Path: filepath.Join(dir, "a"), CheckpointKey: ckPriv, MaxBytes: -1}, audit.ErrBadConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := audit.NewFileSink(tc.cfg)
			require.ErrorIs(t, err, tc.want)
			require.ErrorIs(t, err, audit.ErrBadConfig)
		})
	}

	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: filepath.Join(dir, "b"), CheckpointKey: ckPriv})
	require.NoError(t, err)
	ctx := context.Background()
	require.ErrorIs(t, fs.Write(ctx, [][]byte{[]byte("{\"v\":1,\"prompt\":\"hi\"}\n")}), audit.ErrNotChained)
	require.True(t, fs.Healthy())
	require.NoError(t, fs.Close())
	require.NoError(t, fs.Close())
	require.False(t, fs.Healthy())
	require.ErrorIs(t, fs.Write(ctx, nil), audit.ErrClosed)
	b, err := os.ReadFile(filepath.Join(dir, "b"))
	require.NoError(t, err)
	require.Empty(t, b, "no records, no checkpoint")
}
