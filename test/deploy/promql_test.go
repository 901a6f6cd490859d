package deploy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// promqlRefs is what a PromQL expression refers to: metric names (selectors), the label
// names its matchers use per metric, and the label names of its grouping and matching
// clauses (by, without, on, ignoring, group_left, group_right).
type promqlRefs struct {
	metrics  []string
	matchers map[string][]string // metric -> label names in its {...}
	grouping []string
}

var errPromQL = errors.New("promql")

// promqlKeywords are identifiers that are never metric names: operators, modifiers, the
// literals Inf and NaN, and the aggregation operators (`sum by (x) (...)` puts the clause
// between the name and its parenthesis).
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
	"sum": true, "avg": true, "count": true, "min": true, "max": true, "group": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "limitk": true, "limit_ratio": true,
}

// groupingKeywords are followed by a parenthesized list of label names.
var groupingKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// parsePromQL extracts the references of a PromQL expression. It is a tokenizer, not a
// parser: it skips strings, comments, numbers, durations and Grafana variables ($name,
// ${name}), reads `{...}` as label matchers (a `__name__` matcher names a metric) and
// `by (...)` and its kin as label lists, and takes every other identifier that is not
// followed by `(` (a function or an aggregation) and is not a keyword as a metric name.
// PromQL's syntax is checked by promtool (TestAlertRulesPromtool); this finds the names.
func parsePromQL(expr string) (promqlRefs, error) {
	refs := promqlRefs{matchers: map[string][]string{}}
	s := expr
	skipSpace := func(i int) int {
		for i < len(s) && strings.ContainsRune(" \t\r\n", rune(s[i])) {
			i++
		}
		return i
	}
	skipString := func(i int) (int, error) {
		q := s[i]
		for j := i + 1; j < len(s); j++ {
			if s[j] == '\\' && q != '`' {
				j++
				continue
			}
			if s[j] == q {
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("%w: unterminated string in %q", errPromQL, expr)
	}
	ident := func(i int) (string, int) {
		j := i
		for j < len(s) && isIdentChar(s[j]) {
			j++
		}
		return s[i:j], j
	}
	// matchers reads `{...}` starting at i (the brace), returning the label names and the
	// value of a __name__ matcher.
	matchers := func(i int) (labels []string, name string, end int, err error) {
		i++
		for {
			i = skipSpace(i)
			if i >= len(s) {
				return nil, "", 0, fmt.Errorf("%w: unterminated {} in %q", errPromQL, expr)
			}
			switch c := s[i]; {
			case c == '}':
				return labels, name, i + 1, nil
			case c == ',':
				i++
			case isIdentStart(c):
				var l string
				l, i = ident(i)
				labels = append(labels, l)
				i = skipSpace(i)
				for i < len(s) && strings.ContainsRune("=!~", rune(s[i])) {
					i++
				}
				i = skipSpace(i)
				if i >= len(s) || !strings.ContainsRune("\"'`", rune(s[i])) {
					return nil, "", 0, fmt.Errorf("%w: matcher %s without a quoted value in %q", errPromQL, l, expr)
				}
				start := i
				if i, err = skipString(i); err != nil {
					return nil, "", 0, err
				}
				if l == "__name__" {
					name = s[start+1 : i-1]
				}
			default:
				return nil, "", 0, fmt.Errorf("%w: unexpected %q in matchers of %q", errPromQL, c, expr)
			}
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case strings.ContainsRune(" \t\r\n(),+-*/%^=!<>", rune(c)):
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			var err error
			if i, err = skipString(i); err != nil {
				return refs, err
			}
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return refs, fmt.Errorf("%w: unterminated [] in %q", errPromQL, expr)
			}
			i += j + 1
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				j := strings.IndexByte(s[i:], '}')
				if j < 0 {
					return refs, fmt.Errorf("%w: unterminated ${ in %q", errPromQL, expr)
				}
				i += j + 1
				continue
			}
			_, i = ident(i)
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
				i++ // 1e6, 0x1f, 5m, 1h30m
			}
			// An exponent's sign: 1e+6.
			if i < len(s) && (s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E') {
				i++
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					i++
				}
			}
		case c == '{':
			labels, name, end, err := matchers(i)
			if err != nil {
				return refs, err
			}
			if name == "" {
				return refs, fmt.Errorf("%w: a selector without a metric name in %q", errPromQL, expr)
			}
			refs.metrics = append(refs.metrics, name)
			refs.matchers[name] = append(refs.matchers[name], labels...)
			i = end
		case isIdentStart(c):
			var id string
			id, i = ident(i)
			next := skipSpace(i)
			lower := strings.ToLower(id)
			switch {
			case groupingKeywords[lower]:
				if next >= len(s) || s[next] != '(' {
					if lower == "group_left" || lower == "group_right" {
						continue // without a label list
					}
					return refs, fmt.Errorf("%w: %s without a label list in %q", errPromQL, id, expr)
				}
				j := strings.IndexByte(s[next:], ')')
				if j < 0 {
					return refs, fmt.Errorf("%w: unterminated %s ( in %q", errPromQL, id, expr)
				}
				for _, l := range strings.Split(s[next+1:next+j], ",") {
					if l = strings.TrimSpace(l); l != "" {
						refs.grouping = append(refs.grouping, l)
					}
				}
				i = next + j + 1
			case promqlKeywords[lower]:
			case next < len(s) && s[next] == '(':
				// a function or an aggregation
			default:
				refs.metrics = append(refs.metrics, id)
				if next < len(s) && s[next] == '{' {
					labels, name, end, err := matchers(next)
					if err != nil {
						return refs, err
					}
					if name != "" {
						return refs, fmt.Errorf("%w: %s has a __name__ matcher too in %q", errPromQL, id, expr)
					}
					refs.matchers[id] = append(refs.matchers[id], labels...)
					i = end
				}
			}
		default:
			return refs, fmt.Errorf("%w: unexpected %q in %q", errPromQL, c, expr)
		}
	}
	slices.Sort(refs.metrics)
	refs.metrics = slices.Compact(refs.metrics)
	return refs, nil
}

func TestParsePromQL(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expr     string
		metrics  []string
		matchers map[string][]string
		grouping []string
		err      string
	}{
		{name: "rate with grouping and grafana variables",
			expr:     `sum by (provider, model) (rate(tollgate_cost_usd_micros_total{job=~"$job",instance=~"$instance"}[$__rate_interval])) * 3600 / 1e6`,
			metrics:  []string{"tollgate_cost_usd_micros_total"},
			matchers: map[string][]string{"tollgate_cost_usd_micros_total": {"job", "instance"}},
			grouping: []string{"provider", "model"}},
		{name: "histogram quantile",
			expr:     `histogram_quantile(0.99, sum without (instance) (rate(tollgate_extproc_phase_seconds_bucket[5m])))`,
			metrics:  []string{"tollgate_extproc_phase_seconds_bucket"},
			grouping: []string{"instance"}},
		{name: "binary operators, keywords and offset",
			expr:    "a_total / on (x) group_left b_info unless c offset 1h and bool d > Inf or NaN",
			metrics: []string{"a_total", "b_info", "c", "d"}, grouping: []string{"x"}},
		{name: "name matcher and comment",
			expr:     "{__name__=\"up\", job='x'} # trailing {comment}\n== 0",
			metrics:  []string{"up"},
			matchers: map[string][]string{"up": {"__name__", "job"}}},
		{name: "time arithmetic", expr: `(tollgate_tls_cert_not_after_timestamp_seconds - time()) / 86400 < 1.5e+1`,
			metrics: []string{"tollgate_tls_cert_not_after_timestamp_seconds"}},
		{name: "strings are skipped", expr: `label_replace(m, "dst", "$1", "src", "(tollgate_.*)")`, metrics: []string{"m"}},
		{name: "duplicates", expr: `a + a{x="1"} + ${var} + $other`, metrics: []string{"a"}, matchers: map[string][]string{"a": {"x"}}},
		{name: "unterminated string", expr: `a{x="1}`, err: "unterminated"},
		{name: "selector without name", expr: `{job="x"}`, err: "without a metric name"},
		{name: "by without list", expr: `sum by a`, err: "without a label list"},
		{name: "stray character", expr: `a ; b`, err: "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refs, err := parsePromQL(tc.expr)
			if tc.err != "" {
				require.ErrorIs(t, err, errPromQL)
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.metrics, refs.metrics)
			if tc.matchers == nil {
				tc.matchers = map[string][]string{}
			}
			require.Equal(t, tc.matchers, refs.matchers)
			require.Equal(t, tc.grouping, refs.grouping)
		})
	}
}

// FuzzParsePromQL: any input gives names or an error, never a panic, and every metric name
// found is an identifier.
func FuzzParsePromQL(f *testing.F) {
	for _, s := range []string{`sum by (a) (rate(x{y="z"}[5m]))`, `{__name__="up"}`, `a / on(b) group_left c`, `"`, `${x`, `1e+`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		refs, err := parsePromQL(expr)
		if err != nil {
			return
		}
		for _, m := range refs.metrics {
			if m == "" {
				continue // {__name__=""}
			}
			if !isIdentStart(m[0]) && !strings.Contains(expr, `"`+m) && !strings.Contains(expr, `'`+m) && !strings.Contains(expr, "`"+m) {
				t.Fatalf("metric %q from %q is not an identifier", m, expr)
			}
		}
	})
}
