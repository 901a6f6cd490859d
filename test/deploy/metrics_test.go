package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

const (
	dashboardFile = "examples/grafana/tollgate.json"
	rulesFile     = "examples/prometheus/tollgate-alerts.yaml"
	ruleTestsFile = "examples/prometheus/tollgate-alerts.test.yaml"
)

// query is one PromQL expression and where it is.
type query struct {
	where, expr string
}

// dashboardQueries returns every PromQL expression of the dashboard: panel targets (rows'
// nested panels too) and the templating variables' label_values(SELECTOR, LABEL) selectors.
// It also returns the label names the variables read.
func dashboardQueries(t *testing.T) (qs []query, varLabels map[string]string) {
	t.Helper()
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
				Query      any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal([]byte(readRepoFile(t, dashboardFile)), &d))
	var walk func(raw []json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p struct {
				Title   string            `json:"title"`
				Panels  []json.RawMessage `json:"panels"`
				Targets []struct {
					RefID string `json:"refId"`
					Expr  string `json:"expr"`
				} `json:"targets"`
			}
			require.NoError(t, json.Unmarshal(r, &p))
			for _, tg := range p.Targets {
				qs = append(qs, query{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	varLabels = map[string]string{}
	lv := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := lv.FindStringSubmatch(v.Definition)
		require.NotNil(t, m, "variable %s: label_values(SELECTOR, LABEL), got %q", v.Name, v.Definition)
		qs = append(qs, query{where: "variable " + v.Name, expr: m[1]})
		varLabels[m[1]] = m[2]
	}
	return qs, varLabels
}

// ruleGroups is a Prometheus rule file, decoded strictly.
type ruleGroups struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         *string           `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func decodeStrict(t *testing.T, rel string, v any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readRepoFile(t, rel))))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(v), rel)
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	var g ruleGroups
	decodeStrict(t, rulesFile, &g)
	var out []rule
	for _, grp := range g.Groups {
		out = append(out, grp.Rules...)
	}
	return out
}

// ruleTests is promtool's rule unit-test file.
type ruleTests struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	Tests              []struct {
		Name        string `yaml:"name"`
		Interval    string `yaml:"interval"`
		InputSeries []struct {
			Series string `yaml:"series"`
			Values string `yaml:"values"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// checkRefs fails unless every metric expr names is exported (or recorded by Prometheus for
// every target), every label its matchers use exists on that metric (or is a target label),
// and every label it groups or matches by exists on one of its metrics.
func checkRefs(t *testing.T, exp exported, q query) {
	t.Helper()
	refs, err := parsePromQL(q.expr)
	require.NoError(t, err, q.where)
	require.NotEmpty(t, refs.metrics, "%s: %s names no metric", q.where, q.expr)
	all := map[string]bool{}
	for l := range targetLabels {
		all[l] = true
	}
	for _, m := range refs.metrics {
		labels, ok := exp[m]
		if !ok {
			labels, ok = synthetic[m]
		}
		require.True(t, ok, "%s: %s is not a metric Tollgate exports (%s)", q.where, m, q.expr)
		for l := range labels {
			all[l] = true
		}
		for _, l := range refs.matchers[m] {
			require.True(t, labels[l] || targetLabels[l] || l == "__name__", "%s: %s has no label %s (it has %v)", q.where, m, l, keys(labels))
		}
	}
	for _, l := range refs.grouping {
		require.True(t, all[l], "%s: no metric of %q has the label %s", q.where, q.expr, l)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestMetricNamesAreExported scrapes a live `tollgate serve` (the image's binary) after
// driving traffic through it, and checks every metric and label that the Grafana dashboard,
// the alert rules and the alert rules' unit tests name against what it exports.
func TestMetricNamesAreExported(t *testing.T) {
	exp := scrapeAll(t)

	t.Run("dashboard", func(t *testing.T) {
		qs, varLabels := dashboardQueries(t)
		require.NotEmpty(t, qs)
		for _, q := range qs {
			checkRefs(t, exp, q)
		}
		for sel, label := range varLabels {
			refs, err := parsePromQL(sel)
			require.NoError(t, err)
			for _, m := range refs.metrics {
				require.True(t, exp[m][label] || targetLabels[label], "variable label_values(%s, %s): no such label", sel, label)
			}
		}
	})
	t.Run("alert rules", func(t *testing.T) {
		rules := alertRules(t)
		require.NotEmpty(t, rules)
		for _, r := range rules {
			checkRefs(t, exp, query{where: "rule " + r.Alert + r.Record, expr: r.Expr})
		}
	})
	t.Run("alert rule tests' input series", func(t *testing.T) {
		var rt ruleTests
		decodeStrict(t, ruleTestsFile, &rt)
		n := 0
		for _, tc := range rt.Tests {
			for _, in := range tc.InputSeries {
				checkRefs(t, exp, query{where: "test " + tc.Name, expr: in.Series})
				n++
			}
		}
		require.Positive(t, n)
	})
	t.Run("the checks can fail", func(t *testing.T) {
		// The names a typo or a renamed metric would leave behind are not exported, so
		// checkRefs would reject them.
		for _, name := range []string{"tollgate_cost_usd_total", "tollgate_extproc_phase_seconds", "tollgate_request_total"} {
			_, ok := exp[name]
			require.False(t, ok, name)
		}
	})
}

// TestDashboardCoversTheFailClosedDependencies checks the dashboard shows what issue 12 asks
// of it, and that the alert rules watch every fail-closed dependency.
func TestDashboardCoversTheFailClosedDependencies(t *testing.T) {
	named := func(qs []query) map[string]bool {
		out := map[string]bool{}
		for _, q := range qs {
			refs, err := parsePromQL(q.expr)
			require.NoError(t, err)
			for _, m := range refs.metrics {
				out[m] = true
			}
		}
		return out
	}
	qs, _ := dashboardQueries(t)
	dash := named(qs)
	for _, m := range []string{
		"tollgate_cost_usd_micros_total",           // spend by team, provider and model
		"tollgate_requests_total",                  // refusals by reason
		"tollgate_guardrail_findings_total",        // guardrail findings
		"tollgate_extproc_phase_seconds_bucket",    // latency per ext_proc phase
		"tollgate_budget_ledger_ready",             // ledger
		"tollgate_budget_ledger_unavailable_total", // ledger errors
		"tollgate_audit_sink_up",                   // audit sink errors
		"tollgate_audit_sink_records_total",
		"tollgate_budget_settle_retries_total", // settle retries
		"tollgate_tls_clients_refused_total",   // TLS refusals
		"tollgate_config_reloads_total",        // config reloads
		"tollgate_config_reload_failures_total",
	} {
		require.True(t, dash[m], "the dashboard shows %s", m)
	}
	var rq []query
	for _, r := range alertRules(t) {
		rq = append(rq, query{expr: r.Expr})
	}
	rules := named(rq)
	for _, m := range []string{
		"tollgate_budget_ledger_ready",                  // ledger down
		"tollgate_audit_sink_up",                        // audit sink failing
		"tollgate_config_current",                       // config reload failing
		"tollgate_budget_settle_dropped_total",          // settle queue dropping
		"tollgate_tls_cert_not_after_timestamp_seconds", // certificate expiring
	} {
		require.True(t, rules[m], "an alert rule watches %s", m)
	}
}

// TestDashboardStructure checks the dashboard imports as it is: one datasource variable
// every query uses, unique panel ids and target refIds, panels inside the 24-column grid that
// do not overlap.
func TestDashboardStructure(t *testing.T) {
	var d struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		ID            any    `json:"id"`
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				Type string `json:"type"`
				UID  string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Panels  []json.RawMessage        `json:"panels"`
			Targets []struct {
				RefID      string `json:"refId"`
				Expr       string `json:"expr"`
				Datasource *struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	raw := readRepoFile(t, dashboardFile)
	dec := json.NewDecoder(strings.NewReader(raw))
	require.NoError(t, dec.Decode(&d))
	require.Equal(t, "tollgate-overview", d.UID)
	require.Equal(t, "Tollgate", d.Title)
	require.GreaterOrEqual(t, d.SchemaVersion, 36)
	require.Nil(t, d.ID, "id is null: Grafana assigns it on import")
	require.NotEmpty(t, d.Templating.List)
	require.Equal(t, "datasource", d.Templating.List[0].Name)
	require.Equal(t, "datasource", d.Templating.List[0].Type)
	require.Equal(t, "prometheus", d.Templating.List[0].Query)

	ids := map[int]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	for _, p := range d.Panels {
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		require.Empty(t, p.Panels, "rows are expanded: panel %q holds no collapsed panels", p.Title)
		require.True(t, p.GridPos.W > 0 && p.GridPos.H > 0 && p.GridPos.X >= 0 && p.GridPos.X+p.GridPos.W <= 24,
			"panel %q is outside the 24-column grid: %+v", p.Title, p.GridPos)
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				require.Empty(t, used[cell{x, y}], "panels %q and %q overlap", used[cell{x, y}], p.Title)
				used[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Title)
		require.NotNil(t, p.Datasource, p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			require.False(t, refs[tg.RefID], "panel %q: refId %s twice", p.Title, tg.RefID)
			refs[tg.RefID] = true
			require.NotEmpty(t, tg.Expr, p.Title)
			require.NotNil(t, tg.Datasource, p.Title)
			require.Equal(t, "${datasource}", tg.Datasource.UID, p.Title)
			require.Contains(t, tg.Expr, `job=~"$job",instance=~"$instance"`, "panel %q follows the job and instance variables", p.Title)
		}
	}
}

// TestAlertRulesStructure decodes the rule file strictly into the rule-group shape: every
// rule is an alert named Tollgate..., with an expression, an explicit `for`, a severity
// label (critical pages, warning does not), a summary and a description; and each alert
// has a unit test in which it fires.
func TestAlertRulesStructure(t *testing.T) {
	rules := alertRules(t)
	require.NotEmpty(t, rules)
	names := map[string]bool{}
	for _, r := range rules {
		require.Regexp(t, `^Tollgate[A-Z][A-Za-z]+$`, r.Alert, "every rule is an alert named Tollgate...: %+v", r)
		require.Empty(t, r.Record, r.Alert)
		require.False(t, names[r.Alert], "alert %s twice", r.Alert)
		names[r.Alert] = true
		require.NotEmpty(t, strings.TrimSpace(r.Expr), r.Alert)
		require.NotNil(t, r.For, "%s: `for` is explicit (0m fires at once)", r.Alert)
		require.Regexp(t, `^[0-9]+[smh]$`, *r.For, r.Alert)
		require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], r.Alert)
		require.Len(t, r.Labels, 1, "%s: severity is its only label", r.Alert)
		require.NotEmpty(t, r.Annotations["summary"], r.Alert)
		require.NotEmpty(t, r.Annotations["description"], r.Alert)
	}

	var rt ruleTests
	decodeStrict(t, ruleTestsFile, &rt)
	require.Equal(t, []string{filepath.Base(rulesFile)}, rt.RuleFiles)
	fires := map[string]bool{}
	for _, tc := range rt.Tests {
		for _, a := range tc.AlertRuleTest {
			require.True(t, names[a.Alertname], "test %q: no alert %s", tc.Name, a.Alertname)
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for name := range names {
		require.True(t, fires[name], "%s has a unit test in %s where it fires", name, ruleTestsFile)
	}
}

// promtool returns the promtool binary: $PROMTOOL, the copy test/tools/promtool.sh puts in
// .tools/, or promtool on PATH. Without one the test skips, or fails with CI=true.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	if p := filepath.Join(testutil.RepoRoot(t), ".tools", "prometheus", "usr", "bin", "promtool"); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	msg := "promtool not found (test/tools/promtool.sh installs it; or set PROMTOOL)"
	if v := strings.TrimSpace(os.Getenv("CI")); strings.EqualFold(v, "true") || v == "1" {
		t.Fatalf("%s (CI=true: missing tools are failures)", msg)
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// grafanaVars are the dashboard's built-in interval variables, with values promtool accepts.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// TestAlertRulesPromtool runs promtool: `check rules` on the alert rules, `test rules` on
// their unit tests, and `check rules` on every dashboard query wrapped in a recording rule
// (promtool has no other offline PromQL check).
func TestAlertRulesPromtool(t *testing.T) {
	bin := promtool(t)
	root := testutil.RepoRoot(t)
	run := func(t *testing.T, dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	t.Run("check rules", func(t *testing.T) {
		out := run(t, root, "check", "rules", rulesFile)
		require.Contains(t, out, fmt.Sprintf("SUCCESS: %d rules found", len(alertRules(t))))
	})
	t.Run("test rules", func(t *testing.T) {
		out := run(t, filepath.Join(root, filepath.Dir(ruleTestsFile)), "test", "rules", filepath.Base(ruleTestsFile))
		require.Contains(t, out, "SUCCESS")
	})
	t.Run("dashboard queries parse", func(t *testing.T) {
		qs, _ := dashboardQueries(t)
		type rec struct {
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		}
		var recs []rec
		for i, q := range qs {
			recs = append(recs, rec{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: grafanaVars.Replace(q.expr)})
		}
		b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": recs}}})
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
		require.NoError(t, os.WriteFile(path, b, 0o600))
		out := run(t, root, "check", "rules", path)
		require.Contains(t, out, fmt.Sprintf("SUCCESS: %d rules found", len(qs)))
	})
}
