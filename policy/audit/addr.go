package audit

import (
	"net"
	"net/netip"
)

// Default truncation for client addresses: the /24 of an IPv4 address and the
// /48 of an IPv6 address (a site), enough for abuse triage and coarse
// geography, not enough to name a household.
const (
	DefaultV4Bits = 24
	DefaultV6Bits = 48
)

// TruncateAddr reduces a client address to its network prefix for the audit
// client_addr field. addr may be "IP", "IP:port" or "[IPv6]:port"; a zone is
// dropped and an IPv4-mapped IPv6 address is treated as IPv4.
//
// The result is the masked prefix in CIDR form ("203.0.113.0/24"), or the bare
// address when the bits cover all of it (32 or 128). Bits above the address
// length are clamped. A negative bit count drops the address entirely ("").
// Input that is not an IP address also gives "": it is never echoed.
func TruncateAddr(addr string, v4Bits, v6Bits int) string {
	ip, ok := parseClientIP(addr)
	if !ok {
		return ""
	}
	bits := v6Bits
	if ip.Is4() {
		bits = v4Bits
	}
	if bits < 0 {
		return ""
	}
	if bits >= ip.BitLen() {
		return ip.String()
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// parseClientIP accepts an address with or without a port.
func parseClientIP(addr string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(addr); err == nil {
		return ip.WithZone("").Unmap(), true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.WithZone("").Unmap(), true
}
