package keys

import (
	"fmt"
	"strings"
)

// Errors returned by ExtractToken. They are fixed values so that no header
// value can reach them.
var (
	errUnsupportedScheme = fmt.Errorf("%w: unsupported authorization scheme", ErrNoCredential)
	errEmptyBearer       = fmt.Errorf("%w: empty bearer credential", ErrNoCredential)
)

// ExtractToken returns the credential a client presented, from the values of
// the Authorization, x-api-key and api-key headers ("" means the header is
// absent). Clients differ: OpenAI SDKs send "Authorization: Bearer <key>",
// Anthropic SDKs "x-api-key", Azure OpenAI SDKs "api-key".
//
// Surrounding spaces and tabs are trimmed from every value, and the
// Authorization scheme is matched case-insensitively. The result is not
// parsed; pass it to Parse.
//
// Errors (never containing a header value):
//   - no header carries a credential: ErrNoCredential;
//   - Authorization is present with a scheme other than Bearer, or with an
//     empty credential: an error wrapping ErrNoCredential, even if another
//     header carries a key, because the request is then ambiguous;
//   - headers carry different credentials: ErrAmbiguousCredential. The same
//     credential in several headers is accepted.
func ExtractToken(authorization, xAPIKey, apiKey string) (string, error) {
	var found string
	for i, v := range [3]string{authorization, xAPIKey, apiKey} {
		v = trimOWS(v)
		if v == "" {
			continue
		}
		if i == 0 {
			var err error
			if v, err = bearerCredential(v); err != nil {
				return "", err
			}
		}
		switch {
		case found == "":
			found = v
		case found != v:
			return "", ErrAmbiguousCredential
		}
	}
	if found == "" {
		return "", ErrNoCredential
	}
	return found, nil
}

// bearerCredential returns the credential of a trimmed, non-empty
// Authorization value of the form "Bearer <credential>".
func bearerCredential(v string) (string, error) {
	i := strings.IndexAny(v, " \t")
	if i < 0 {
		if strings.EqualFold(v, "Bearer") {
			return "", errEmptyBearer
		}
		return "", errUnsupportedScheme
	}
	if !strings.EqualFold(v[:i], "Bearer") {
		return "", errUnsupportedScheme
	}
	c := trimOWS(v[i:])
	if c == "" {
		return "", errEmptyBearer
	}
	return c, nil
}

// trimOWS trims HTTP optional whitespace (spaces and tabs).
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}
