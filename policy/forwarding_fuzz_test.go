package policy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// FuzzCheckQuery: a query string passes only when every parameter, decoded, is one its
// endpoint allows with an allowed value; nothing panics on malformed escapes.
func FuzzCheckQuery(f *testing.F) {
	for _, q := range []string{"", "?", "?beta=true", "?beta=true&beta=false", "?b%65ta=true", "?beta=yes", "?x", "?%zz", "?beta=true;x=1"} {
		f.Add(uint8(llm.Messages), "/v1/messages"+q)
		f.Add(uint8(llm.ChatCompletions), "/v1/chat/completions"+q)
	}
	f.Fuzz(func(t *testing.T, ep uint8, path string) {
		e := llm.Endpoint(ep % 8)
		if !checkQuery(e, path) || e == llm.Models {
			return
		}
		_, raw, found := strings.Cut(path, "?")
		if !found {
			return
		}
		q, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("%q accepted but does not parse: %v", raw, err)
		}
		for name, vals := range q {
			allowed, ok := queryAllowed[e][name]
			if !ok {
				t.Fatalf("%q: parameter %q accepted on %v", raw, name, e)
			}
			for _, v := range vals {
				if !contains(allowed, v) {
					t.Fatalf("%q: value %q of %q accepted", raw, v, name)
				}
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
