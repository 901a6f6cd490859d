package envoycheck

import (
	"regexp"
	"strings"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// matchString reports whether Envoy's StringMatcher m matches s. A custom matcher is
// treated as not matching: the check cannot evaluate it.
func matchString(m *matcherv3.StringMatcher, s string) bool {
	if m == nil {
		return false
	}
	fold := func(x string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(x)
		}
		return x
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return fold(s) == fold(p.Exact)
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(fold(s), fold(p.Prefix))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(fold(s), fold(p.Suffix))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(fold(s), fold(p.Contains))
	case *matcherv3.StringMatcher_SafeRegex:
		// Envoy's safe_regex must match the whole string (RE2, which Go's regexp implements).
		re, err := regexp.Compile(`^(?:` + p.SafeRegex.GetRegex() + `)$`)
		return err == nil && re.MatchString(s)
	}
	return false
}

// removedBy reports whether the header mutations, applied in order, leave no
// client-supplied value of header name: the last mutation that touches it removes it.
func removedBy(muts []*mutationv3.HeaderMutation, name string) bool {
	name = strings.ToLower(name)
	removed := false
	for _, m := range muts {
		switch a := m.GetAction().(type) {
		case *mutationv3.HeaderMutation_Remove:
			if strings.EqualFold(a.Remove, name) {
				removed = true
			}
		case *mutationv3.HeaderMutation_RemoveOnMatch_:
			if matchString(a.RemoveOnMatch.GetKeyMatcher(), name) {
				removed = true
			}
		case *mutationv3.HeaderMutation_Append:
			if strings.EqualFold(a.Append.GetHeader().GetKey(), name) {
				removed = false
			}
		}
	}
	return removed
}

// sensitiveRequestHeaders carry credentials (virtual keys, provider keys, sessions): none may
// reach a log.
var sensitiveRequestHeaders = []string{
	"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "x-goog-api-key",
}

// sensitiveResponseHeaders carry credentials on the way back.
var sensitiveResponseHeaders = []string{"set-cookie"}

// isSensitive reports whether header name (any case) is in list.
func isSensitive(list []string, name string) bool {
	name = strings.TrimSpace(strings.ToLower(name))
	for _, s := range list {
		if name == s {
			return true
		}
	}
	return false
}
