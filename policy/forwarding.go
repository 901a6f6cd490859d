package policy

import (
	"slices"
	"strings"
)

// Request hygiene: what of the client's request reaches the provider besides the body.
// Headers are forwarded by allow-list, per provider: every header the client sent that is not
// on it is removed, so a client cannot pick the organization or project billed on the shared
// provider key, replay cookies or proxy credentials, or tell the provider its address. Query
// strings are refused unless the endpoint allows them.

// forwardedHeaders are the client headers every provider receives: what a JSON API call needs
// and nothing that identifies the client. x-request-id is Envoy's random id for the request
// (a client's own is replaced at the edge), kept for correlation with upstream logs.
// Pseudo-headers and host cannot be removed (Envoy owns them); credential headers are
// replaced by the provider's own.
var forwardedHeaders = []string{"accept", "content-type", "content-length", "user-agent", "x-request-id"}

// typeForwardedHeaders adds the headers a provider type's API reads from clients.
// anthropic-beta is left out on purpose: a beta can change what a request costs (the 1M
// context window is priced higher), so an operator opts in with forward_headers.
var typeForwardedHeaders = map[string][]string{
	ProviderAnthropic: {"anthropic-version"},
}

// gatewayHeaders are headers Envoy or Tollgate itself manage; never forwarded from a client.
var gatewayHeaders = []string{"openai-organization", "openai-project", "x-forwarded-for", "x-forwarded-proto",
	"x-forwarded-host", "x-forwarded-port", "x-real-ip", "forwarded", "cookie", "proxy-authorization",
	"content-encoding", "transfer-encoding", "connection", "te", "upgrade", "keep-alive"}

// forwardable builds a provider's allow-list: the defaults, its type's, and its config's.
func forwardable(typ string, extra []string) map[string]bool {
	m := map[string]bool{}
	for _, list := range [][]string{forwardedHeaders, typeForwardedHeaders[typ], extra} {
		for _, h := range list {
			m[strings.ToLower(h)] = true
		}
	}
	return m
}

// validateForwardHeader reports why a name cannot be on a forward_headers list, "" when it can.
func validateForwardHeader(h string) string {
	switch {
	case h == "" || strings.ToLower(h) != h || strings.ContainsAny(h, " :\t\r\n"):
		return "must be a lower-case header name"
	case slices.Contains(credentialHeaders[:], h):
		return "credential headers are never forwarded: the provider's own key is set"
	case strings.HasPrefix(h, InternalHeaderPrefix) || strings.HasPrefix(h, "x-envoy-") || h == "host":
		return "internal headers are never forwarded"
	case h == "openai-organization" || h == "openai-project":
		return "set providers[].organization or providers[].project instead"
	case slices.Contains(gatewayHeaders, h):
		return "this header is managed by the gateway and never forwarded from a client"
	}
	return ""
}

// removals lists the client headers (names, as Envoy sent them) that must not reach p:
// credential headers other than the one p's key is set in, client copies of internal
// headers, and every header not on p's allow-list. Headers the forward decision sets are
// left out (a set overwrites them), as are pseudo-headers, host and x-envoy-* (ext_proc's
// mutation rules forbid touching them), and x-forwarded-proto, which Envoy's route match
// still reads after ext_proc clears the route cache (removing it here leaves the request
// without a route). envoy.yaml removes x-envoy-external-address and x-forwarded-proto when the
// router builds the upstream request, after the match.
func (p *provider) removals(names []string, set []Header) []string {
	out := make([]string, 0, 8)
	for _, n := range credentialHeaders {
		if n != p.authHeader {
			out = append(out, n)
		}
	}
	for _, n := range names {
		switch {
		case n == "" || n[0] == ':' || n == "host" || strings.HasPrefix(n, "x-envoy-") || n == "x-forwarded-proto":
			continue
		case slices.Contains(out, n) || n == p.authHeader || isSet(set, n):
			continue
		case p.forward[n]:
			continue
		}
		out = append(out, n)
	}
	return out
}

func isSet(set []Header, name string) bool {
	for _, h := range set {
		if h.Key == name {
			return true
		}
	}
	return false
}

// smuggledKey returns the name of a client header that p receives and whose value holds a
// Tollgate key, "" when none does. Headers p does not receive are removed, so a key in one
// never leaves (and a stray cookie cannot refuse a request).
func (p *provider) smuggledKey(names []string, get func(string) string) string {
	if get == nil {
		return ""
	}
	for _, n := range names {
		if p.forward[n] && !isCredentialHeader(n) && hasVirtualKey(get(n)) {
			return n
		}
	}
	return ""
}
