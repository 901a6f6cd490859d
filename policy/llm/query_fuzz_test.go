package llm

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzQueryAllowed: a query string passes only when every parameter, decoded, is one its
// endpoint's Spec allows with an allowed value; nothing panics on malformed escapes.
func FuzzQueryAllowed(f *testing.F) {
	for _, q := range []string{"", "?", "?beta=true", "?beta=true&beta=false", "?b%65ta=true", "?beta=yes", "?x", "?%zz", "?beta=true;x=1"} {
		f.Add(uint8(Messages), "/v1/messages"+q)
		f.Add(uint8(ChatCompletions), "/v1/chat/completions"+q)
	}
	f.Fuzz(func(t *testing.T, ep uint8, path string) {
		e := Endpoint(ep % 8)
		if !e.QueryAllowed(path) || e.Spec().Local {
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
			allowed, ok := e.Spec().Query[name]
			if !ok {
				t.Fatalf("%q: parameter %q accepted on %v", raw, name, e)
			}
			for _, v := range vals {
				if !slices.Contains(allowed, v) {
					t.Fatalf("%q: value %q of %q accepted", raw, v, name)
				}
			}
		}
	})
}
