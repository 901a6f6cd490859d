// Package devtls writes throwaway TLS material for the local trial: a private
// ECDSA P-256 CA and a server certificate signed by it, for Envoy's HTTPS
// listener. Nothing here is meant for production.
//
// Files written into the target directory:
//
//	ca.crt      the CA certificate (give it to clients: curl --cacert)
//	server.crt  the server certificate (leaf only, no chain)
//	server.key  the server private key, PKCS#8 PEM, mode 0600
//
// The CA private key is never written to disk: it exists only in memory while
// the server certificate is signed, so a leaked .dev directory cannot be used
// to mint certificates for other names. The price is that every regeneration
// creates a new CA, which clients then have to trust again.
package devtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside the directory passed to Write and Ensure.
const (
	CAFile   = "ca.crt"
	CertFile = "server.crt"
	KeyFile  = "server.key"
)

const (
	// Validity is how long generated certificates are valid.
	Validity = 30 * 24 * time.Hour
	// RenewBefore is the remaining lifetime below which Ensure regenerates.
	RenewBefore = 24 * time.Hour
	// backdate tolerates small clock differences between this machine and clients.
	backdate = time.Hour
)

// DefaultHosts are always included in the server certificate.
var DefaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// ErrInvalidHost is returned for a host name that cannot go into a certificate.
var ErrInvalidHost = errors.New("devtls: invalid host")

// Write generates a new CA and server certificate valid from now for Validity
// and writes them into dir (created with mode 0700 if missing). The server
// certificate covers DefaultHosts plus hosts; each host is an IP address or a
// DNS name (wildcards allowed). Each existing file is replaced atomically
// (write to a temporary file, then rename).
func Write(dir string, hosts []string, now time.Time) error {
	names, ips, err := splitHosts(hosts)
	if err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("devtls: ca key: %w", err)
	}
	notBefore := now.Add(-backdate).UTC()
	notAfter := now.Add(Validity).UTC()
	caTmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{CommonName: "Tollgate dev CA (throwaway)", Organization: []string{"Tollgate local trial"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("devtls: ca certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("devtls: parse ca certificate: %w", err)
	}

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("devtls: server key: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"Tollgate local trial"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              names,
		IPAddresses:           ips,
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("devtls: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return fmt.Errorf("devtls: marshal server key: %w", err)
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("devtls: %w", err)
	}
	// The key goes first: a crash between renames then leaves a key that does
	// not match server.crt, which Ensure detects and repairs.
	files := []struct {
		name  string
		typ   string
		der   []byte
		perm  os.FileMode
		label string
	}{
		{KeyFile, "PRIVATE KEY", keyDER, 0o600, "server key"},
		{CertFile, "CERTIFICATE", srvDER, 0o644, "server certificate"},
		{CAFile, "CERTIFICATE", caDER, 0o644, "ca certificate"},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := writeAtomic(filepath.Join(dir, f.name), data, f.perm); err != nil {
			return fmt.Errorf("devtls: write %s: %w", f.label, err)
		}
	}
	return nil
}

// Ensure makes sure dir holds usable material for hosts at time now, and
// calls Write when it does not: a file is missing or unreadable, the key does
// not match the certificate, the certificate was not issued by ca.crt, a host
// is not covered, or a certificate is not yet valid or expires within
// RenewBefore. It reports whether new files were written.
func Ensure(dir string, hosts []string, now time.Time) (created bool, err error) {
	if _, _, err := splitHosts(hosts); err != nil {
		return false, err
	}
	if Check(dir, hosts, now) == nil {
		return false, nil
	}
	if err := Write(dir, hosts, now); err != nil {
		return false, err
	}
	return true, nil
}

// Check returns nil if dir holds a CA, a server certificate and key that are
// consistent, cover DefaultHosts plus hosts, and stay valid for at least
// RenewBefore after now. Otherwise it says what is wrong.
func Check(dir string, hosts []string, now time.Time) error {
	ca, err := readCert(filepath.Join(dir, CAFile))
	if err != nil {
		return err
	}
	leaf, err := readCert(filepath.Join(dir, CertFile))
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return fmt.Errorf("devtls: %w", err)
	}
	if err := matchKey(leaf, keyPEM); err != nil {
		return err
	}
	for _, c := range []*x509.Certificate{ca, leaf} {
		if now.Before(c.NotBefore) {
			return fmt.Errorf("devtls: %q is not valid before %s", c.Subject.CommonName, c.NotBefore)
		}
		if now.Add(RenewBefore).After(c.NotAfter) {
			return fmt.Errorf("devtls: %q expires at %s", c.Subject.CommonName, c.NotAfter)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:       pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("devtls: server certificate: %w", err)
	}
	// Coverage is checked by exact SAN membership rather than VerifyHostname,
	// which refuses wildcard names such as "*.example.test" as input.
	names, ips, err := splitHosts(hosts)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, n := range leaf.DNSNames {
		have[strings.ToLower(n)] = true
	}
	for _, ip := range leaf.IPAddresses {
		have[ip.String()] = true
	}
	for _, n := range names {
		if !have[n] {
			return fmt.Errorf("devtls: server certificate does not cover %q", n)
		}
	}
	for _, ip := range ips {
		if !have[ip.String()] {
			return fmt.Errorf("devtls: server certificate does not cover %q", ip)
		}
	}
	return nil
}

// splitHosts returns the DNS names and IP addresses for DefaultHosts plus
// hosts, deduplicated, with "localhost" first so it becomes the common name.
func splitHosts(hosts []string) ([]string, []net.IP, error) {
	var names []string
	var ips []net.IP
	seen := map[string]bool{}
	for _, h := range append(append([]string{}, DefaultHosts...), hosts...) {
		h = strings.TrimSpace(h)
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		ip := net.ParseIP(h)
		if ip == nil && (h == "" || strings.ContainsAny(h, " \t/:@")) {
			return nil, nil, fmt.Errorf("%w: %q", ErrInvalidHost, h)
		}
		if ip != nil {
			key := ip.String()
			if !seen[key] {
				seen[key] = true
				ips = append(ips, ip)
			}
			continue
		}
		key := strings.ToLower(strings.TrimSuffix(h, "."))
		if !seen[key] {
			seen[key] = true
			names = append(names, key)
		}
	}
	return names, ips, nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devtls: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("devtls: %s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devtls: %s: %w", path, err)
	}
	return c, nil
}

func matchKey(leaf *x509.Certificate, keyPEM []byte) error {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return errors.New("devtls: server key: no PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("devtls: server key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return errors.New("devtls: server key: not ECDSA")
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return errors.New("devtls: server certificate: not ECDSA")
	}
	a, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("devtls: server certificate: %w", err)
	}
	b, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		return fmt.Errorf("devtls: server key: %w", err)
	}
	if !bytes.Equal(a, b) {
		return errors.New("devtls: server key does not match server certificate")
	}
	return nil
}

// writeAtomic writes data to a temporary file next to path and renames it
// into place, so readers (Envoy) never see a half-written file.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// mustSerial returns a random 128-bit serial number. crypto/rand.Int cannot
// fail on Linux (getrandom), and a fixed fallback would still be valid.
func mustSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1)) // never zero
}
