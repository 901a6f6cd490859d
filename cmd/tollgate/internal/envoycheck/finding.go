package envoycheck

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// Severity ranks a finding. High means a promise Tollgate makes (fail closed, every provider
// request through ext_proc, no secret in logs) does not hold, and `tollgate check` exits
// non-zero; medium and low are weaker or could not be checked.
type Severity int

// Severities, most severe first.
const (
	High Severity = iota + 1
	Medium
	Low
)

// String returns "high", "medium" or "low".
func (s Severity) String() string {
	switch s {
	case High:
		return "high"
	case Medium:
		return "medium"
	case Low:
		return "low"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText encodes the severity as its name, so JSON output says "high", not 1.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a severity name, so a JSON report reads back.
func (s *Severity) UnmarshalText(b []byte) error {
	for _, v := range []Severity{High, Medium, Low} {
		if string(b) == v.String() {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", b)
}

// Finding is one problem: a stable ID (one per kind of check, for scripts and tests), where
// it is (a field path in the Envoy bootstrap or the Tollgate config), what is wrong and how to
// fix it. No field ever holds a secret value: only references and field paths.
type Finding struct {
	Severity Severity `json:"severity"`
	ID       string   `json:"id"`
	// File is "envoy" or "config": which of the two inputs Path belongs to.
	File    string `json:"file"`
	Path    string `json:"path"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
}

// Sort orders findings by severity (high first), then file, then path, then ID, so output
// is stable.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Severity, b.Severity), cmp.Compare(a.File, b.File),
			cmp.Compare(a.Path, b.Path), cmp.Compare(a.ID, b.ID))
	})
}

// Counts tallies findings per severity.
type Counts struct {
	High   int `json:"high"`
	Medium int `json:"medium"`
	Low    int `json:"low"`
}

// Count tallies fs.
func Count(fs []Finding) Counts {
	var c Counts
	for _, f := range fs {
		switch f.Severity {
		case High:
			c.High++
		case Medium:
			c.Medium++
		case Low:
			c.Low++
		}
	}
	return c
}

// Report is the --json output of `tollgate check`.
type Report struct {
	Findings []Finding `json:"findings"`
	Counts   Counts    `json:"counts"`
}

// MarshalJSON keeps an empty report's findings a list ([]), not null.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	return json.Marshal(plain(r))
}

// findings collects findings for one file.
type findings struct {
	file string
	list []Finding
}

func (f *findings) add(sev Severity, id, path, problem, fix string) {
	f.list = append(f.list, Finding{Severity: sev, ID: id, File: f.file, Path: path, Problem: problem, Fix: fix})
}
