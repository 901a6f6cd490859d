package guard

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// ProfileConfig is one named guardrail profile as written in the config
// file (keys and teams select profiles by name). cmd/tollgate unmarshals it
// with viper; Compile validates and compiles it.
type ProfileConfig struct {
	Name string `mapstructure:"name"`
	// DryRun scans and reports what the rules would do (Result.Intended and
	// the findings) but never blocks or rewrites anything.
	DryRun bool         `mapstructure:"dry_run"`
	Rules  []RuleConfig `mapstructure:"rules"`
	// Custom defines the profile's own detectors, used by rules as
	// "custom.<name>".
	Custom []CustomDetectorConfig `mapstructure:"custom_detectors"`
	// MaxScanBytes caps the text scanned per body, counted as the bytes of
	// the selected JSON string tokens (0: no cap beyond the request size
	// limit). Above it the scan fails and each rule's fail mode decides.
	MaxScanBytes int `mapstructure:"max_scan_bytes"`
}

// RuleConfig binds a detector to an action.
type RuleConfig struct {
	// ID names the rule in 403 bodies, findings and audit events.
	ID string `mapstructure:"id"`
	// Detector is a built-in id (see Detectors) or "custom.<name>".
	Detector string `mapstructure:"detector"`
	// Action is "block", "redact" or "audit".
	Action string `mapstructure:"action"`
	// FailOpen lets the body through when it cannot be scanned. The default
	// (false) is fail closed: an unscannable body is blocked.
	FailOpen bool `mapstructure:"fail_open"`
}

// CustomDetectorConfig is a detector defined in config: either a regular
// expression (RE2 syntax; use (?i) for case-insensitive matching) or a list
// of literal strings. Both match the normalized text.
type CustomDetectorConfig struct {
	// Name is [a-z0-9_]+; rules refer to the detector as "custom.<name>".
	Name     string   `mapstructure:"name"`
	Regex    string   `mapstructure:"regex"`
	Literals []string `mapstructure:"literals"`
	// CaseInsensitive makes literals match regardless of ASCII case.
	CaseInsensitive bool `mapstructure:"case_insensitive"`
	// Label is the placeholder label ([LABEL_1]); default "CUSTOM_<NAME>".
	Label string `mapstructure:"label"`
	// MaxLen bounds a regex match for streaming: a stream holds back up to
	// MaxLen-1 bytes for the expression (default 256, at most 4096).
	MaxLen int `mapstructure:"max_len"`
}

// Rule is a compiled rule.
type Rule struct {
	ID       string
	Detector string
	Action   Action
	FailOpen bool
}

// Profile is the compiled form of a ProfileConfig, as Engine.Profile
// reports it.
type Profile struct {
	Name   string
	Rules  []Rule
	DryRun bool
}

// Limits on config values.
const (
	defaultRegexMaxLen = 256
	maxRegexMaxLen     = 4096
	maxLiteralLen      = 256
)

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)
	ruleRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	labelRE = regexp.MustCompile(`^[A-Z0-9_]{1,32}$`)
)

// compileProfile validates and compiles one profile; problems are appended
// to errs, each naming its path under prefix ("profiles[0]").
func compileProfile(cfg ProfileConfig, prefix string, errs *[]error) *profile {
	add := func(path, format string, a ...any) {
		*errs = append(*errs, fmt.Errorf("%s%s: %s", prefix, path, fmt.Sprintf(format, a...)))
	}
	if !nameRE.MatchString(cfg.Name) {
		add(".name", "must match [a-z0-9_]{1,40}")
	}
	if cfg.MaxScanBytes < 0 {
		add(".max_scan_bytes", "must not be negative")
	}
	dets := append([]detInfo(nil), builtins[:]...)
	customs := map[string]int{}
	for k, c := range cfg.Custom {
		path := fmt.Sprintf(".custom_detectors[%d]", k)
		if !nameRE.MatchString(c.Name) {
			add(path+".name", "must match [a-z0-9_]{1,40}")
		} else if _, dup := customs[c.Name]; dup {
			add(path+".name", "duplicate custom detector %q", c.Name)
		}
		label := c.Label
		if label == "" {
			label = "CUSTOM_" + strings.ToUpper(c.Name)
		}
		if !labelRE.MatchString(label) {
			add(path+".label", "must match [A-Z0-9_]{1,32}")
		}
		maxLen := c.MaxLen
		if maxLen == 0 {
			maxLen = defaultRegexMaxLen
		}
		if maxLen < 0 || maxLen > maxRegexMaxLen {
			add(path+".max_len", "must be between 1 and %d", maxRegexMaxLen)
		}
		for _, l := range c.Literals {
			maxLen = max(maxLen, len(l))
		}
		customs[c.Name] = len(dets)
		dets = append(dets, detInfo{id: "custom." + c.Name, label: label, maxLen: maxLen})
	}

	p := &profile{Profile: Profile{Name: cfg.Name, DryRun: cfg.DryRun}, maxScan: cfg.MaxScanBytes}
	p.ruleOf = make([]int, len(dets))
	for i := range p.ruleOf {
		p.ruleOf[i] = -1
	}
	ids := map[string]bool{}
	on := make([]bool, len(dets))
	for j, r := range cfg.Rules {
		path := fmt.Sprintf(".rules[%d]", j)
		if !ruleRE.MatchString(r.ID) {
			add(path+".id", "must match [A-Za-z0-9_.-]{1,64}")
		} else if ids[r.ID] {
			add(path+".id", "duplicate rule id %q", r.ID)
		}
		ids[r.ID] = true
		act, err := ParseAction(r.Action)
		if err != nil {
			add(path+".action", "%v", err)
		}
		var det int
		if name, ok := strings.CutPrefix(r.Detector, "custom."); ok {
			d, found := customs[name]
			if !found {
				add(path+".detector", "no custom detector %q in this profile", name)
				continue
			}
			det = d
		} else {
			d, found := builtinByID(r.Detector)
			if !found {
				add(path+".detector", "unknown detector %q", r.Detector)
				continue
			}
			det = int(d)
		}
		if p.ruleOf[det] >= 0 {
			add(path+".detector", "detector %q already used by rule %q", r.Detector, p.Rules[p.ruleOf[det]].ID)
			continue
		}
		p.ruleOf[det] = len(p.Rules)
		on[det] = true
		p.Rules = append(p.Rules, Rule{ID: r.ID, Detector: dets[det].id, Action: act, FailOpen: r.FailOpen})
	}
	pl := newPlan(dets, on)
	for k, c := range cfg.Custom {
		path := fmt.Sprintf(".custom_detectors[%d]", k)
		det := customs[c.Name]
		if d, ok := customs[c.Name]; !ok || d != len(builtins)+k {
			continue // duplicate name, reported above
		}
		if !on[det] {
			add(path, "custom detector %q is not used by any rule", c.Name)
			continue
		}
		switch {
		case c.Regex != "" && len(c.Literals) > 0:
			add(path, "set regex or literals, not both")
		case c.Regex != "":
			addRegex(pl, c, detID(det), dets[det].maxLen, path, add)
		case len(c.Literals) > 0:
			addLiterals(pl, c, detID(det), path, add)
		default:
			add(path, "set regex or literals")
		}
	}
	pl.finish()
	p.plan = pl
	return p
}

// addRegex compiles a custom expression. Error text carries only the RE2
// error code, never the expression: a deny pattern may embed a secret.
func addRegex(pl *plan, c CustomDetectorConfig, det detID, maxLen int, path string, add func(string, string, ...any)) {
	re, err := compileCustomRegex(c.Regex)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			add(path+".regex", "invalid regular expression: %s", se.Code)
		} else {
			add(path+".regex", "invalid regular expression")
		}
		return
	}
	if re.Match(nil) {
		add(path+".regex", "must not match the empty string")
		return
	}
	prefix, _ := re.LiteralPrefix()
	pl.regexes = append(pl.regexes, customRegex{re: re, prefix: []byte(prefix), det: det, maxLen: maxLen})
}

// addLiterals normalizes each literal and files it under its first two
// bytes. Error text names the literal's index, never its value.
func addLiterals(pl *plan, c CustomDetectorConfig, det detID, path string, add func(string, string, ...any)) {
	var z normalizer
	for k, raw := range c.Literals {
		norm, _ := z.normalize([]byte(raw))
		text := []byte(strings.Join(strings.Fields(string(norm)), " "))
		if c.CaseInsensitive {
			for i, b := range text {
				text[i] = lower(b)
			}
		}
		if len(text) < 2 || len(text) > maxLiteralLen {
			add(fmt.Sprintf("%s.literals[%d]", path, k), "must be 2 to %d bytes after normalization", maxLiteralLen)
			continue
		}
		pl.lits = append(pl.lits, literal{text: text, fold: c.CaseInsensitive, det: det})
		pl.addAnchor(string(text[:2]), c.CaseInsensitive, anchor{kind: akLiteral, det: det, idx: int32(len(pl.lits) - 1)})
	}
}
