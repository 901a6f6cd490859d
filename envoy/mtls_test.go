package envoy_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// TestValidateExtProcMTLS validates envoy.yaml with its ext_proc_grpc cluster switched to
// mutual TLS (the transport socket README.md shows for a Tollgate off loopback).
func TestValidateExtProcMTLS(t *testing.T) {
	bin := testutil.EnvoyBinary(t)
	dir := t.TempDir()
	ca, err := devtls.NewCA("validate CA", time.Now())
	require.NoError(t, err)
	certFile, keyFile, err := ca.IssueFiles(dir, "envoy", devtls.Leaf{URIs: []string{"spiffe://tollgate.test/envoy"}, Client: true}, time.Now())
	require.NoError(t, err)
	caFile := filepath.Join(dir, "ca.crt")
	require.NoError(t, ca.WriteCert(caFile))
	cfg := testutil.RenderEnvoyConfig(t, "", testutil.FreeEnvoyPorts(t), devTLS(t))
	testutil.EnableExtProcTLS(t, cfg, testutil.ExtProcTLS{CertFile: certFile, KeyFile: keyFile, CAFile: caFile, ServerName: "tollgate.test"})
	validate(t, bin, cfg)
}
