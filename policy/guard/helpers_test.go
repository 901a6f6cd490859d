package guard

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// allRules returns one rule per built-in detector with action a.
func allRules(a string) []RuleConfig {
	var rs []RuleConfig
	for _, id := range Detectors() {
		rs = append(rs, RuleConfig{ID: "r." + id, Detector: id, Action: a})
	}
	return rs
}

// newEngine compiles the profiles or fails the test.
func newEngine(tb testing.TB, cfgs ...ProfileConfig) *Engine {
	tb.Helper()
	e, err := Compile(cfgs...)
	require.NoError(tb, err)
	return e
}

// allEngine has profile "redact" (every built-in detector redacts), "block"
// and "audit".
func allEngine(tb testing.TB) *Engine {
	return newEngine(tb,
		ProfileConfig{Name: "redact", Rules: allRules("redact")},
		ProfileConfig{Name: "block", Rules: allRules("block")},
		ProfileConfig{Name: "audit", Rules: allRules("audit")},
	)
}

// detect runs the "all" plan over text (final) and returns the detector ids
// and matched substrings.
func detect(tb testing.TB, p *plan, text string) []string {
	tb.Helper()
	var z normalizer
	var sc scan
	sc.p = p
	norm, ident := z.normalize([]byte(text))
	sc.run(norm, true)
	var out []string
	for _, m := range sc.ms {
		s, e := int(m.start), int(m.end)
		if !ident {
			s, e = z.origSpan(s, e)
		}
		out = append(out, p.dets[m.det].id+"="+text[s:e])
	}
	return out
}

// allPlan returns the plan with every built-in detector on.
func allPlan(tb testing.TB) *plan {
	tb.Helper()
	return allEngine(tb).profiles["audit"].plan
}
