package devtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CA is an in-memory certificate authority that issues server and client certificates, for
// mutual-TLS tests and trials (Envoy's client certificate for the ext_proc listener, say). Its
// private key never leaves memory.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// Leaf describes a certificate for CA.Issue.
type Leaf struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	// URIs are URI SANs, e.g. a SPIFFE id ("spiffe://example.org/ns/edge/sa/envoy").
	URIs []string
	// Server and Client select the extended key usages (serverAuth, clientAuth).
	Server, Client bool
	// NotAfter overrides the end of validity (default: now + Validity).
	NotAfter time.Time
}

// ErrNoUsage is returned by Issue for a leaf that is neither a server nor a client.
var ErrNoUsage = errors.New("devtls: leaf needs Server or Client")

// NewCA creates a CA named name, valid from now for Validity.
func NewCA(name string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devtls: ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Tollgate local trial"}},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.Add(Validity).UTC(),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("devtls: ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devtls: parse ca certificate: %w", err)
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Certificate returns the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPEM returns the CA certificate in PEM.
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.pem...) }

// Issue signs a new ECDSA P-256 key pair for l and returns the certificate and the PKCS#8
// private key, both PEM.
func (c *CA) Issue(l Leaf, now time.Time) (certPEM, keyPEM []byte, err error) {
	if !l.Server && !l.Client {
		return nil, nil, ErrNoUsage
	}
	var uris []*url.URL
	for _, s := range l.URIs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: URI %q", ErrInvalidHost, s)
		}
		uris = append(uris, u)
	}
	var eku []x509.ExtKeyUsage
	if l.Server {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	if l.Client {
		eku = append(eku, x509.ExtKeyUsageClientAuth)
	}
	notAfter := l.NotAfter
	if notAfter.IsZero() {
		notAfter = now.Add(Validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("devtls: leaf key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{CommonName: l.CommonName, Organization: []string{"Tollgate local trial"}},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              notAfter.UTC(),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		DNSNames:              l.DNSNames,
		IPAddresses:           l.IPs,
		URIs:                  uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, nil, fmt.Errorf("devtls: leaf certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("devtls: marshal leaf key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// IssueFiles issues l and writes dir/name.crt and dir/name.key (mode 0600), each replaced
// atomically. It returns both paths.
func (c *CA) IssueFiles(dir, name string, l Leaf, now time.Time) (certFile, keyFile string, err error) {
	certPEM, keyPEM, err := c.Issue(l, now)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("devtls: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	// The key goes first, as in Write.
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("devtls: write %s key: %w", name, err)
	}
	if err := writeAtomic(certFile, certPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("devtls: write %s certificate: %w", name, err)
	}
	return certFile, keyFile, nil
}

// WriteCert writes the CA certificate to path (mode 0644), atomically.
func (c *CA) WriteCert(path string) error {
	if err := writeAtomic(path, c.pem, 0o644); err != nil {
		return fmt.Errorf("devtls: write ca certificate: %w", err)
	}
	return nil
}
