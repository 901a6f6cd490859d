package redisledger

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientConfig is how a Ledger's client connects. Secrets arrive resolved: the caller reads
// them from references and never logs this struct's Password.
type ClientConfig struct {
	// Addrs are "host:port", "redis://host:port" or "rediss://host:port": one for a single
	// node, several for Redis Cluster. "rediss://" turns TLS on and must then be used for
	// every address; a URL carries nothing but the scheme, host and port (credentials in an
	// address would be a plaintext secret in the config).
	Addrs []string
	// Username is the ACL user (Redis 6+); empty means "default".
	Username string
	// Password authenticates Username (or the default user); empty means none.
	Password string
	// DB selects the database on a single node (Redis Cluster has only 0).
	DB int
	// Timeout bounds dialing and each socket read and write (give the Ledger the same
	// WithTimeout).
	Timeout time.Duration
	// RootCAs verifies the server's certificate under TLS; nil means the system's roots.
	RootCAs *x509.CertPool
	// ServerName is the name the server's certificate must carry under TLS; empty means the
	// host of the address dialled.
	ServerName string
}

// ErrBadAddress reports an address NewClient cannot use. It never carries the address's
// userinfo.
var ErrBadAddress = errors.New("invalid redis address")

// NewClient returns a client for cfg, a *redis.Client for one address and a
// *redis.ClusterClient for several, with the options a Ledger needs: no retries (a retry
// could double a call's latency budget) and socket timeouts of cfg.Timeout. It does not
// contact Redis. TLS, when on, requires TLS 1.2 or newer and always verifies the server.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	addrs, useTLS, err := ParseAddrs(cfg.Addrs)
	if err != nil {
		return nil, err
	}
	if !useTLS && (cfg.RootCAs != nil || cfg.ServerName != "") {
		return nil, fmt.Errorf("%w: a CA or server name needs rediss:// addresses", ErrBadAddress)
	}
	opts := &redis.UniversalOptions{
		Addrs: addrs, Username: cfg.Username, Password: cfg.Password, DB: cfg.DB,
		DialTimeout: cfg.Timeout, ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
		MaxRetries: -1,
		// A call's context deadline bounds its socket I/O too: a readiness probe or a settle
		// with a shorter deadline than the socket timeouts returns on time against a hung server.
		ContextTimeoutEnabled: true,
	}
	if useTLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.RootCAs, ServerName: cfg.ServerName}
	}
	if len(addrs) > 1 {
		return redis.NewClusterClient(opts.Cluster()), nil
	}
	return redis.NewClient(opts.Simple()), nil
}

// ParseAddrs checks addresses as ClientConfig.Addrs describes them and returns them as
// host:port, with whether they asked for TLS.
func ParseAddrs(in []string) (addrs []string, useTLS bool, err error) {
	if len(in) == 0 {
		return nil, false, fmt.Errorf("%w: none given", ErrBadAddress)
	}
	addrs = make([]string, len(in))
	for i, a := range in {
		hostPort, tlsOn, err := parseAddr(a)
		if err != nil {
			return nil, false, fmt.Errorf("%w: addrs[%d]: %s", ErrBadAddress, i, err)
		}
		if i > 0 && tlsOn != useTLS {
			return nil, false, fmt.Errorf("%w: addrs[%d]: every address must use rediss:// or none", ErrBadAddress, i)
		}
		addrs[i], useTLS = hostPort, tlsOn
	}
	return addrs, useTLS, nil
}

// parseAddr returns a's host:port and whether it is a rediss:// URL. Error texts never
// quote a, which may hold a password typed into a URL.
func parseAddr(a string) (string, bool, error) {
	scheme, rest, isURL := strings.Cut(a, "://")
	if !isURL {
		return a, false, checkHostPort(a)
	}
	var tlsOn bool
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		tlsOn = true
	default:
		return "", false, errors.New("scheme must be redis:// or rediss://")
	}
	if strings.ContainsAny(rest, "@") {
		return "", false, errors.New("credentials do not belong in an address: use username and password")
	}
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil {
		return "", false, errors.New("not a URL")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false, errors.New("only scheme, host and port are allowed (set db separately)")
	}
	return u.Host, tlsOn, checkHostPort(u.Host)
}

func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" || port == "" {
		return errors.New("must be host:port")
	}
	return nil
}
