package deploy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// readmeContainerConfig is the config block of README's "Container image" section.
func readmeContainerConfig(t *testing.T) string {
	t.Helper()
	sec := readmeSection(t, "## Container image")
	_, rest, ok := strings.Cut(sec, "```yaml\n")
	require.True(t, ok, "the container section shows a config")
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	return block
}

// snapshot lists a tree's entries with their size, mode and modification time.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[path] = fmt.Sprintf("%d %v %d", info.Size(), info.Mode(), info.ModTime().UnixNano())
		return nil
	}))
	return out
}

// TestImageRunsReadOnly runs the image's binary as the image does: as uid and gid 65532 (when
// the test runs as root; otherwise as the test's user), with the README's container config,
// /etc/tollgate unwritable and only the state directory writable. A request goes through
// mutual TLS; the ledger and the audit trail land in the state directory, and nothing under
// /etc/tollgate changes.
func TestImageRunsReadOnly(t *testing.T) {
	bin, _ := buildImageBinary(t)
	asRoot := os.Geteuid() == 0
	uid, _ := strconv.Atoi(nonrootUID)

	base, err := os.MkdirTemp("", "tollgate-readonly-")
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755) // RemoveAll needs to write the read-only directories
			}
			return nil
		})
		_ = os.RemoveAll(base)
	})
	require.NoError(t, os.Chmod(base, 0o755))
	etc := filepath.Join(base, "etc", "tollgate")
	state := filepath.Join(base, "var", "lib", "tollgate")
	for _, d := range []string{etc, state, filepath.Join(etc, "tls"), filepath.Join(etc, "secrets"), filepath.Join(etc, "keys")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}

	// Secrets and keys, made by `dev init` and placed as the README's config names them.
	dev := filepath.Join(base, "dev")
	out, err := exec.Command(bin, "dev", "init", "--dir", dev).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for src, dst := range map[string]string{"pepper": "secrets/pepper", "audit-chain-key": "secrets/audit-chain-key",
		"audit-checkpoint.pem": "secrets/audit-checkpoint.pem", "mock-openai-key": "secrets/openai-key", "keys.yaml": "keys/keys.yaml"} {
		require.NoError(t, copyFile(filepath.Join(dev, src), filepath.Join(etc, dst)))
	}
	key := strings.TrimSpace(readFile(t, filepath.Join(dev, "demo-key")))

	// Tollgate's server certificate and the Envoy client certificate the config allows.
	now := time.Now()
	ca, err := devtls.NewCA("tollgate readonly test CA", now)
	require.NoError(t, err)
	_, _, err = ca.IssueFiles(filepath.Join(etc, "tls"), "server", devtls.Leaf{CommonName: "tollgate",
		DNSNames: []string{"tollgate.test"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}, now)
	require.NoError(t, err)
	require.NoError(t, ca.WriteCert(filepath.Join(etc, "tls", "envoy-ca.crt")))
	certPEM, keyPEM, err := ca.Issue(devtls.Leaf{CommonName: "envoy", URIs: []string{"spiffe://example.org/ns/edge/sa/envoy"}, Client: true}, now)
	require.NoError(t, err)
	clientCert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())

	// The README's config, on loopback ports, with the state volume where this test has it.
	extproc, admin := freeAddr(t), freeAddr(t)
	cfg := readmeContainerConfig(t)
	for old, repl := range map[string]string{"0.0.0.0:50051": extproc, "0.0.0.0:9090": admin, "/var/lib/tollgate": state} {
		require.Contains(t, cfg, old)
		cfg = strings.ReplaceAll(cfg, old, repl)
	}
	for _, line := range strings.Split(cfg, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			require.NotContains(t, line, "/etc/tollgate", "the config's own paths are relative to /etc/tollgate")
		}
	}
	cfgPath := filepath.Join(etc, "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))

	// /etc/tollgate is read-only: files 0444, directories 0555 (which binds a non-root owner
	// too), owned by whoever runs the test. The state directory is the gateway user's.
	require.NoError(t, filepath.WalkDir(etc, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o444)
	}))
	for _, d := range []string{filepath.Join(etc, "tls"), filepath.Join(etc, "secrets"), filepath.Join(etc, "keys"), etc} {
		require.NoError(t, os.Chmod(d, 0o555))
	}
	require.NoError(t, os.Chmod(state, 0o750))
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Dir = "/"
	cmd.Env = []string{"HOME=/nonexistent"} // the image sets nothing that Tollgate reads
	if asRoot {
		require.NoError(t, os.Chown(state, uid, uid))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	} else {
		t.Logf("not root: running as uid %d, not %d", os.Geteuid(), uid)
	}
	before := snapshot(t, filepath.Join(base, "etc"))

	p := testutil.StartProcess(t, "tollgate-readonly", cmd)
	testutil.WaitHTTP(t, "http://"+admin+"/readyz", 20*time.Second)
	conn, err := grpc.NewClient(extproc, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{clientCert}, ServerName: "tollgate.test", MinVersion: tls.VersionTLS12})))
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, 0, exchange(t, conn, key, `{"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`))

	// The ledger is flushed every second; the audit event is written when the stream ends.
	require.Eventually(t, func() bool {
		for _, name := range []string{"ledger.json", "audit.log"} {
			if st, err := os.Stat(filepath.Join(state, name)); err != nil || st.Size() == 0 {
				return false
			}
		}
		return true
	}, 15*time.Second, 50*time.Millisecond, "the ledger and the audit file land in the state directory; logs:\n%s", p.Logs())
	p.Stop()
	require.NoError(t, p.Err(), "a clean shutdown; logs:\n%s", p.Logs())
	require.NotContains(t, p.Logs(), "permission denied")
	require.NotContains(t, p.Logs(), "read-only file system")

	require.Equal(t, before, snapshot(t, filepath.Join(base, "etc")), "nothing under /etc/tollgate changed")
	if asRoot {
		require.NoError(t, filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			require.NoError(t, err)
			require.Equal(t, uint32(uid), info.Sys().(*syscall.Stat_t).Uid, "%s is the gateway user's", path)
			return nil
		}))
	}
}
