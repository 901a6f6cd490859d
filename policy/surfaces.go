package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors of the listener surfaces. They live here rather than in an errors.go
// because this package has none; each is wrapped with the field path that failed.
var (
	// ErrNeedsMTLS refuses an ext_proc listener reachable from the network without mutual TLS.
	ErrNeedsMTLS = errors.New("a non-loopback address needs mutual TLS (listen.extproc_tls): " +
		"whoever can open an ext_proc stream with a valid virtual key receives the provider key")
	// ErrAdminNeedsAuth refuses an admin listener reachable from the network without
	// authentication.
	ErrAdminNeedsAuth = errors.New("a non-loopback address needs admin.token_sha256 or mutual TLS " +
		"(admin.tls with client_ca_file and allowed_sans): /metrics and /usage would be open to the network")
	// ErrBadTokenHash is a token_sha256 that is not a SHA-256 in hex. The value is never echoed:
	// it may be the token itself, pasted by mistake.
	ErrBadTokenHash = errors.New("must be the 64-character hex SHA-256 printed by `tollgate admin hash-token`, not the token")
	// ErrWeakToken is an admin token too short or with characters a bearer token cannot carry.
	ErrWeakToken = fmt.Errorf("the admin token must be %d to %d printable ASCII characters without spaces (e.g. `openssl rand -hex 32`)",
		MinAdminTokenLen, maxAdminTokenLen)
)

// ListenConfig holds the addresses tollgate listens on. Addresses and TLS file paths are read
// at start (a reload that changes them is refused); certificate contents, the SAN allow-lists
// and the admin token hash are reloaded.
type ListenConfig struct {
	// ExtProc is the gRPC address Envoy connects to: unix:/path, a loopback host:port, or,
	// only with ExtProcTLS, any host:port. Whoever can open a stream with a valid virtual key
	// reads the provider key out of the header mutation it returns.
	ExtProc string `mapstructure:"extproc"`
	// ExtProcTLS is mutual TLS on the ext_proc listener. Every field is required when any is
	// set: a client certificate is always required and its SAN must be allow-listed.
	ExtProcTLS TLSListenerConfig `mapstructure:"extproc_tls"`
	// ExtProcSocketMode is the permission bits of a unix:/path ext_proc socket, in octal
	// (default "0600": only tollgate's user can connect). "0660" lets a group connect, as an
	// Envoy running under another user in the same pod sharing a group (fsGroup). Bits for
	// others are refused: any local user could then open streams.
	ExtProcSocketMode string `mapstructure:"extproc_socket_mode"`
	// Admin serves /healthz, /readyz, /metrics and /usage. A non-loopback address needs
	// admin.token_sha256 or mutual TLS (admin.tls).
	Admin string `mapstructure:"admin"`
	// DrainTimeout bounds how long a shutdown waits for open streams.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
}

// TLSListenerConfig is the TLS side of a listener. Paths are relative to the config file's
// directory; "file:PATH" is accepted too.
type TLSListenerConfig struct {
	// CertFile is the server certificate chain (PEM), leaf first.
	CertFile string `mapstructure:"cert_file"`
	// KeyFile is the server's private key (PEM).
	KeyFile string `mapstructure:"key_file"`
	// ClientCAFile is the PEM bundle client certificates must chain to.
	ClientCAFile string `mapstructure:"client_ca_file"`
	// AllowedSANs lists the client identities accepted: DNS names (exact, case-insensitive)
	// or URIs such as SPIFFE ids (exact). A verified certificate with none of them is refused.
	AllowedSANs []string `mapstructure:"allowed_sans"`
	// MinVersion is "1.2" (default) or "1.3". TLS 1.3 is negotiated whenever the client
	// offers it.
	MinVersion string `mapstructure:"min_version"`
}

// AdminConfig authenticates the admin listener.
type AdminConfig struct {
	// TokenSHA256 is the hex SHA-256 of the bearer token (`tollgate admin hash-token`). When
	// set, /metrics, /usage and the detailed /readyz need `Authorization: Bearer TOKEN` (or an
	// allowed client certificate), on any address.
	TokenSHA256 string `mapstructure:"token_sha256"`
	// TLS serves the admin listener over TLS. With ClientCAFile and AllowedSANs, an allowed
	// client certificate authenticates a request; without them TLS only protects the token.
	TLS TLSListenerConfig `mapstructure:"tls"`
}

// Admin token length bounds, in bytes.
const (
	MinAdminTokenLen = 32
	maxAdminTokenLen = 512
)

// Enabled reports whether any TLS field is set.
func (t TLSListenerConfig) Enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "" || len(t.AllowedSANs) > 0 || t.MinVersion != ""
}

// VerifiesClients reports whether client certificates authenticate (a client CA and an
// allow-list are both set).
func (t TLSListenerConfig) VerifiesClients() bool {
	return t.ClientCAFile != "" && len(t.AllowedSANs) > 0
}

// DefaultSocketMode is the ext_proc unix socket's mode when listen.extproc_socket_mode is unset.
const DefaultSocketMode = 0o600

// ParseSocketMode parses an octal unix socket mode ("0660"; "" is DefaultSocketMode). The
// owner must be able to read and write it, and others get no bits.
func ParseSocketMode(s string) (uint32, error) {
	if s == "" {
		return DefaultSocketMode, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	switch {
	case err != nil || m > 0o777:
		return 0, errors.New(`must be octal permission bits such as "0600" or "0660"`)
	case m&0o600 != 0o600:
		return 0, errors.New("must let the owner read and write the socket (0600)")
	case m&0o007 != 0:
		return 0, errors.New("must give others no access: any local user could open ext_proc streams")
	}
	return uint32(m), nil
}

// IsLoopbackAddr reports whether addr (host:port or unix:/path) cannot be reached from
// another host: a unix socket, "localhost" or a loopback IP. An empty host (":50051") binds
// every interface and is not loopback.
func IsLoopbackAddr(addr string) bool {
	if strings.HasPrefix(addr, "unix:") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateSurfaces checks the ext_proc and admin listeners and their authentication.
func (c *Config) validateSurfaces(add func(path, format string, a ...any)) {
	if err := validateListenAddr(c.Listen.ExtProc, true); err != nil {
		add("listen.extproc", "%v", err)
	} else if !IsLoopbackAddr(c.Listen.ExtProc) && !c.Listen.ExtProcTLS.Enabled() {
		add("listen.extproc", "%v", ErrNeedsMTLS)
	}
	if c.Listen.ExtProcTLS.Enabled() {
		c.Listen.ExtProcTLS.validate("listen.extproc_tls", true, add)
	}
	if c.Listen.DrainTimeout < 0 {
		add("listen.drain_timeout", "must be positive (default %s)", DefaultDrainTimeout)
	}
	if c.Listen.ExtProcSocketMode != "" {
		if !strings.HasPrefix(c.Listen.ExtProc, "unix:") {
			add("listen.extproc_socket_mode", "applies only to a unix:/path listen.extproc")
		} else if _, err := ParseSocketMode(c.Listen.ExtProcSocketMode); err != nil {
			add("listen.extproc_socket_mode", "%v", err)
		}
	}

	if err := validateListenAddr(c.Listen.Admin, false); err != nil {
		add("listen.admin", "%v", err)
	} else if !IsLoopbackAddr(c.Listen.Admin) && c.Admin.TokenSHA256 == "" && !c.Admin.TLS.VerifiesClients() {
		add("listen.admin", "%v", ErrAdminNeedsAuth)
	}
	if c.Admin.TokenSHA256 != "" {
		if _, err := ParseAdminToken(c.Admin.TokenSHA256); err != nil {
			add("admin.token_sha256", "%v", err)
		}
	}
	if c.Admin.TLS.Enabled() {
		c.Admin.TLS.validate("admin.tls", false, add)
	}
}

// validate checks one TLS block. mutual requires the client CA and the allow-list; otherwise
// they go together or not at all.
func (t TLSListenerConfig) validate(path string, mutual bool, add func(path, format string, a ...any)) {
	if t.CertFile == "" {
		add(path+".cert_file", "is required (the server certificate, PEM)")
	}
	if t.KeyFile == "" {
		add(path+".key_file", "is required (the server private key, PEM)")
	}
	switch {
	case mutual && t.ClientCAFile == "":
		add(path+".client_ca_file", "is required: a client certificate is always required on this listener")
	case !mutual && t.ClientCAFile == "" && len(t.AllowedSANs) > 0:
		add(path+".client_ca_file", "is required with allowed_sans")
	}
	if len(t.AllowedSANs) == 0 && (mutual || t.ClientCAFile != "") {
		add(path+".allowed_sans", "is required: list the DNS or URI SANs (e.g. a SPIFFE id) of the clients allowed in; any certificate of the CA is not enough")
	}
	for i, s := range t.AllowedSANs {
		if err := validateSAN(s); err != nil {
			add(fmt.Sprintf("%s.allowed_sans[%d]", path, i), "%v", err)
		}
	}
	if _, err := ParseTLSVersion(t.MinVersion); err != nil {
		add(path+".min_version", "%v", err)
	}
}

// TLS protocol versions, as crypto/tls numbers them (kept here so policy needs no crypto/tls).
const (
	TLSVersion12 uint16 = 0x0303
	TLSVersion13 uint16 = 0x0304
)

// ParseTLSVersion maps min_version ("", "1.2", "1.3") to its protocol number; "" is 1.2.
func ParseTLSVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return TLSVersion12, nil
	case "1.3":
		return TLSVersion13, nil
	default:
		return 0, errors.New(`must be "1.2" or "1.3"`)
	}
}

func validateSAN(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case strings.ContainsAny(s, "* \t\r\n"):
		return errors.New("must be an exact DNS name or URI (no wildcards or spaces)")
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" && u.Opaque == "" {
			return errors.New("is not a valid URI (e.g. spiffe://example.org/ns/edge/sa/envoy)")
		}
		return nil
	case net.ParseIP(strings.Trim(s, "[]")) != nil:
		return errors.New("IP SANs are not matched: use a DNS or URI SAN")
	case len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, ".."):
		return errors.New("is not a valid DNS name")
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'z' || s[i] >= '0' && s[i] <= '9' || s[i] == '-' || s[i] == '.') {
			return errors.New("is not a valid DNS name")
		}
	}
	return nil
}

// SANAllowList is the set of client identities a listener accepts.
type SANAllowList struct {
	dns  map[string]bool // lower-cased
	uris map[string]bool
}

// NewSANAllowList builds an allow-list from validated allowed_sans entries.
func NewSANAllowList(sans []string) *SANAllowList {
	a := &SANAllowList{dns: map[string]bool{}, uris: map[string]bool{}}
	for _, s := range sans {
		if strings.Contains(s, "://") {
			a.uris[s] = true
		} else {
			a.dns[strings.ToLower(s)] = true
		}
	}
	return a
}

// Allows reports whether the leaf certificate carries an allowed DNS or URI SAN. The subject
// common name is never consulted. A nil list allows nothing.
func (a *SANAllowList) Allows(leaf *x509.Certificate) bool {
	if a == nil || leaf == nil {
		return false
	}
	for _, n := range leaf.DNSNames {
		if a.dns[strings.ToLower(n)] {
			return true
		}
	}
	for _, u := range leaf.URIs {
		if a.uris[u.String()] {
			return true
		}
	}
	return false
}

// DescribeSANs names a certificate's DNS and URI SANs for a log line, bounded in count and
// length: a refused client is identified without letting it write much into the log.
func DescribeSANs(leaf *x509.Certificate) string {
	if leaf == nil {
		return "none"
	}
	var out []string
	for _, n := range leaf.DNSNames {
		out = append(out, "dns:"+n)
	}
	for _, u := range leaf.URIs {
		out = append(out, "uri:"+u.String())
	}
	if len(out) == 0 {
		return "none"
	}
	const maxSANs, maxLen = 4, 128
	if len(out) > maxSANs {
		out = append(out[:maxSANs], fmt.Sprintf("... (%d more)", len(out)-maxSANs))
	}
	for i, s := range out {
		if len(s) > maxLen {
			out[i] = s[:maxLen] + "..."
		}
	}
	return strings.Join(out, ",")
}

// AdminToken is the SHA-256 of the admin bearer token. The token itself is never stored.
type AdminToken struct {
	digest [sha256.Size]byte
}

// ParseAdminToken parses admin.token_sha256. Its error never contains the value.
func ParseAdminToken(hexDigest string) (*AdminToken, error) {
	if len(hexDigest) != 2*sha256.Size {
		return nil, ErrBadTokenHash
	}
	b, err := hex.DecodeString(hexDigest)
	if err != nil {
		return nil, ErrBadTokenHash
	}
	t := &AdminToken{}
	copy(t.digest[:], b)
	return t, nil
}

// HashAdminToken returns the hex SHA-256 of token for admin.token_sha256, after checking that
// the token is long enough and can be sent as a bearer token. The error never contains it.
func HashAdminToken(token string) (string, error) {
	if len(token) < MinAdminTokenLen || len(token) > maxAdminTokenLen {
		return "", ErrWeakToken
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] > '~' {
			return "", ErrWeakToken
		}
	}
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:]), nil
}

// Verify reports whether presented is the token. The presented value is hashed first, so the
// comparison runs over two fixed-length digests in constant time: neither its length nor how
// much of a prefix matches changes the work done.
func (t *AdminToken) Verify(presented string) bool {
	if t == nil {
		return false
	}
	sum := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(sum[:], t.digest[:]) == 1
}

// SurfaceChanges lists the listener settings that next changes and that only a restart
// applies: the addresses, and each TLS block's files and minimum version. The SAN allow-lists
// and the admin token hash are not among them: a reload applies those.
func (c *Config) SurfaceChanges(next *Config) []string {
	var out []string
	diff := func(path string, changed bool) {
		if changed {
			out = append(out, path)
		}
	}
	orDefault := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	diff("listen.extproc", orDefault(c.Listen.ExtProc, DefaultExtProcAddr) != orDefault(next.Listen.ExtProc, DefaultExtProcAddr))
	cm, _ := ParseSocketMode(c.Listen.ExtProcSocketMode)
	nm, _ := ParseSocketMode(next.Listen.ExtProcSocketMode)
	diff("listen.extproc_socket_mode", cm != nm)
	diff("listen.admin", orDefault(c.Listen.Admin, DefaultAdminAddr) != orDefault(next.Listen.Admin, DefaultAdminAddr))
	for _, b := range []struct {
		path      string
		cur, next TLSListenerConfig
	}{{"listen.extproc_tls", c.Listen.ExtProcTLS, next.Listen.ExtProcTLS}, {"admin.tls", c.Admin.TLS, next.Admin.TLS}} {
		cv, _ := ParseTLSVersion(b.cur.MinVersion)
		nv, _ := ParseTLSVersion(b.next.MinVersion)
		diff(b.path+".cert_file", b.cur.CertFile != b.next.CertFile)
		diff(b.path+".key_file", b.cur.KeyFile != b.next.KeyFile)
		diff(b.path+".client_ca_file", b.cur.ClientCAFile != b.next.ClientCAFile)
		diff(b.path+".min_version", cv != nv)
	}
	return out
}
