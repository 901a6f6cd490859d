package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// fullDisk writes to the real file until its room runs out, then fails with
// ENOSPC after a short write, as a full file system does.
type fullDisk struct {
	mu   sync.Mutex
	room int // bytes left; negative means unlimited
}

func (d *fullDisk) setRoom(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.room = n
}

func (d *fullDisk) write(f *os.File, b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.room < 0 || len(b) <= d.room {
		if d.room >= 0 {
			d.room -= len(b)
		}
		return f.Write(b)
	}
	n, err := f.Write(b[:d.room])
	d.room -= n
	if err != nil {
		return n, err
	}
	return n, syscall.ENOSPC
}

// requireWholeLines checks that the file holds only complete lines.
func requireWholeLines(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, len(b) == 0 || b[len(b)-1] == '\n', "a partial line survived: %q", b[max(0, len(b)-60):])
	return b
}

// TestFileSinkDiskFull fills the disk in the middle of a record: the torn
// record is removed (no partial line survives), the sink reports itself
// unhealthy, and when writing resumes a signed gap record marks the lost
// sequence numbers, so Verify passes, reports the gap and checks every record
// after it.
func TestFileSinkDiskFull(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, Fsync: audit.FsyncNever, CheckpointKey: ckPriv})
	require.NoError(t, err)
	disk := &fullDisk{room: -1}
	audit.SetFileSinkWrite(fs, disk.write)
	e := newEmitter(t, audit.EmitterConfig{BatchSize: 1}, fs)
	emit := func(from, n int) {
		t.Helper()
		want := e.Stats().Written + uint64(n)
		for i := range n {
			ev := sampleEvent(from + i)
			e.Emit(&ev)
		}
		require.Eventually(t, func() bool { return e.Stats().Written == want }, 5*time.Second, time.Millisecond)
	}

	emit(0, 3)
	before := requireWholeLines(t, path)
	disk.setRoom(100) // seq 4 tears after 100 bytes; seq 5 finds no room
	emit(3, 2)
	require.Equal(t, before, requireWholeLines(t, path), "the torn record was cut back")
	require.False(t, fs.Healthy())
	require.False(t, e.Healthy(), "fail closed refuses requests while the disk is full")
	require.Equal(t, uint64(2), e.SinkStats()[0].Failed)

	disk.setRoom(-1)
	emit(5, 2)
	require.True(t, fs.Healthy())
	closeEmitter(t, e)
	b := requireWholeLines(t, path)
	require.Contains(t, string(b), `"type":"gap","from_seq":4,`)

	rep, err := audit.Verify([]string{path}, chainKey, ckPub)
	require.NoError(t, err)
	require.Equal(t, uint64(5), rep.Events)
	require.Equal(t, []audit.Gap{{File: path, Line: 4, FromSeq: 4, ToSeq: 5}}, rep.Gaps)
	require.Equal(t, uint64(2), rep.Lost)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "seq 4..5 (2 records) could not be written")

	// The gap record is signed: editing it is caught, and so are the records
	// after it.
	replaceInLine(t, path, 3, `"to_seq":5`, `"to_seq":6`)
	replaceInLine(t, path, 5, `"status":200`, `"status":201`)
	rep, err = audit.Verify([]string{path}, chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrBadSignature)
	require.Len(t, rep.Problems, 2, "every problem in the file: %v", rep.Problems)
	require.ErrorIs(t, rep.Problems[1], audit.ErrModified)
	require.Equal(t, 6, rep.Problems[1].Line)
}

// TestFileSinkDiskFullAtClose: the checkpoint that does not fit is cut back
// too; the file then ends in an unsealed tail and the next start links to it.
func TestFileSinkDiskFullAtClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, Fsync: audit.FsyncNever, CheckpointKey: ckPriv})
	require.NoError(t, err)
	disk := &fullDisk{room: -1}
	audit.SetFileSinkWrite(fs, disk.write)
	e := newEmitter(t, audit.EmitterConfig{}, fs)
	ev := sampleEvent(0)
	e.Emit(&ev)
	require.Eventually(t, func() bool { return e.Stats().Written == 1 }, 5*time.Second, time.Millisecond)
	disk.setRoom(50)
	require.Error(t, e.Close(t.Context()))
	requireWholeLines(t, path)
	rep, err := audit.Verify([]string{path}, chainKey, ckPub)
	require.NoError(t, err)
	require.NotNil(t, rep.Unsealed)

	// The next lifetime links to the last record and closes properly.
	fs, err = audit.NewFileSink(audit.FileSinkConfig{Path: path, Fsync: audit.FsyncNever, CheckpointKey: ckPriv})
	require.NoError(t, err)
	e = newEmitter(t, audit.EmitterConfig{}, fs)
	e.Emit(&ev)
	closeEmitter(t, e)
	rep, err = audit.Verify([]string{path}, chainKey, ckPub)
	require.NoError(t, err)
	require.Nil(t, rep.Unsealed)
	require.Len(t, rep.Unclosed, 1)
	require.Equal(t, 2, rep.Segments)
}

// TestFileSinkHealthyDoesNotWaitForTheDisk: Healthy is asked on every request
// in fail-closed mode, so it must answer while a write is stuck (a slow disk,
// a long fsync) instead of queueing behind it.
func TestFileSinkHealthyDoesNotWaitForTheDisk(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, Fsync: audit.FsyncNever, CheckpointKey: ckPriv})
	require.NoError(t, err)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	audit.SetFileSinkWrite(fs, func(f *os.File, b []byte) (int, error) {
		once.Do(func() { close(entered) })
		<-release
		return f.Write(b)
	})
	e := newEmitter(t, audit.EmitterConfig{}, fs)
	ev := sampleEvent(0)
	e.Emit(&ev)
	<-entered
	answered := make(chan bool)
	go func() { answered <- fs.Healthy() && e.Healthy() }()
	select {
	case ok := <-answered:
		require.True(t, ok)
	case <-time.After(10 * time.Second):
		t.Fatal("Healthy waited for the stuck write")
	}
	close(release)
	closeEmitter(t, e)
}
