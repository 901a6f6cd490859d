package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestListenUnixSocket: the socket gets the configured mode whatever the umask, a stale
// socket is replaced, and anything else at the path is left alone and refused.
func TestListenUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "extproc.sock")

	l, err := listen("unix:"+sock, 0o660)
	require.NoError(t, err)
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	require.NoError(t, c.Close())

	// A socket left by a previous run (not unlinked on close) is replaced.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close())
	_, err = os.Lstat(sock)
	require.NoError(t, err, "the stale socket is still there")
	l, err = listen("unix:"+sock, 0o600)
	require.NoError(t, err)
	fi, err = os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.NoError(t, l.Close())

	// A regular file at the path (a mistyped path) is never deleted.
	file := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte("keep me"), 0o600))
	_, err = listen("unix:"+file, 0o600)
	require.ErrorContains(t, err, "not a socket")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, "keep me", string(b))
}

// TestServeFailingAuditFreesListeners: when the audit trail cannot open, serve returns the
// error with both listeners closed, so their addresses can be bound again.
func TestServeFailingAuditFreesListeners(t *testing.T) {
	tr := newTrial(t)
	tr.writeConfig(t, "audit:\n  chain_key: file:.dev/no-such-chain-key\n  checkpoint_key: file:.dev/audit-checkpoint.pem\n  file: {path: audit/audit.log}\n")
	err := run(context.Background(), []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs)
	require.ErrorContains(t, err, "audit.chain_key")
	for _, addr := range []string{tr.extproc, tr.admin} {
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err, "%s is free again", addr)
		require.NoError(t, l.Close())
	}
}
