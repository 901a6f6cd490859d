package guard

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

func TestCompileErrors(t *testing.T) {
	_, err := Compile(
		ProfileConfig{Name: "Bad Name", MaxScanBytes: -1, Rules: []RuleConfig{
			{ID: "", Detector: "pii.email", Action: "redact"},
			{ID: "x", Detector: "pii.nope", Action: "redact"},
			{ID: "y", Detector: "pii.phone", Action: "drop"},
			{ID: "y", Detector: "pii.card", Action: "block"},
			{ID: "z", Detector: "pii.phone", Action: "audit"},
			{ID: "c", Detector: "custom.missing", Action: "audit"},
		}},
		ProfileConfig{Name: "p2", Custom: []CustomDetectorConfig{
			{Name: "both", Regex: "a+", Literals: []string{"aa"}},
			{Name: "neither"},
			{Name: "badre", Regex: "(SECRETVALUE"},
			{Name: "empty", Regex: "a*"},
			{Name: "short", Literals: []string{"x"}},
			{Name: "unused", Regex: "abc"},
			{Name: "lbl", Regex: "abc", Label: "lower", MaxLen: 99999},
		}, Rules: []RuleConfig{
			{ID: "1", Detector: "custom.both", Action: "audit"},
			{ID: "2", Detector: "custom.neither", Action: "audit"},
			{ID: "3", Detector: "custom.badre", Action: "audit"},
			{ID: "4", Detector: "custom.empty", Action: "audit"},
			{ID: "5", Detector: "custom.short", Action: "audit"},
			{ID: "6", Detector: "custom.lbl", Action: "audit"},
		}},
		ProfileConfig{Name: "p2"},
	)
	require.ErrorIs(t, err, ErrInvalidConfig)
	msg := err.Error()
	for _, want := range []string{
		"profiles[0].name:",
		"profiles[0].max_scan_bytes:",
		"profiles[0].rules[0].id:",
		"profiles[0].rules[1].detector: unknown detector",
		"profiles[0].rules[2].action:",
		"profiles[0].rules[3].id: duplicate rule id",
		"profiles[0].rules[4].detector: detector \"pii.phone\" already used",
		"profiles[0].rules[5].detector: no custom detector",
		"profiles[1].custom_detectors[0]: set regex or literals, not both",
		"profiles[1].custom_detectors[1]: set regex or literals",
		"profiles[1].custom_detectors[2].regex: invalid regular expression: missing closing )",
		"profiles[1].custom_detectors[3].regex: must not match the empty string",
		"profiles[1].custom_detectors[4].literals[0]:",
		"profiles[1].custom_detectors[5]: custom detector \"unused\" is not used",
		"profiles[1].custom_detectors[6].label:",
		"profiles[1].custom_detectors[6].max_len:",
		"profiles[2].name: duplicate profile",
	} {
		require.Contains(t, msg, want)
	}
	require.NotContains(t, msg, "SECRETVALUE")
}

func TestActionText(t *testing.T) {
	for _, a := range []Action{Block, Redact, Audit} {
		b, err := a.MarshalText()
		require.NoError(t, err)
		var back Action
		require.NoError(t, back.UnmarshalText(b))
		require.Equal(t, a, back)
	}
	var a Action
	require.Error(t, a.UnmarshalText([]byte("Block")))
	require.Equal(t, "unknown", Action(0).String())
	require.Equal(t, "allow", DecisionAllow.String())
	require.Equal(t, "block", DecisionBlock.String())
	require.Equal(t, "redact", DecisionRedact.String())
}

func TestProfileView(t *testing.T) {
	e := newEngine(t, ProfileConfig{Name: "b", DryRun: true, Rules: []RuleConfig{{ID: "m", Detector: "pii.email", Action: "audit", FailOpen: true}}}, ProfileConfig{Name: "a"})
	require.Equal(t, []string{"a", "b"}, e.Profiles())
	p, ok := e.Profile("b")
	require.True(t, ok)
	require.Equal(t, Profile{Name: "b", DryRun: true, Rules: []Rule{{ID: "m", Detector: "pii.email", Action: Audit, FailOpen: true}}}, p)
	_, ok = e.Profile("c")
	require.False(t, ok)
}

func TestCustomDetectors(t *testing.T) {
	e := newEngine(t, ProfileConfig{Name: "c",
		Custom: []CustomDetectorConfig{
			{Name: "project", Regex: `PROJ-\d{6}`},
			{Name: "codename", Literals: []string{"Falcon Nine", "blue-heron", "$TOPSECRET", "ＳＫＹＮＥＴ"}, CaseInsensitive: true, Label: "CODENAME"},
			{Name: "ticket", Regex: `(?i)\bticket\s+#?\d{4,}`},
		},
		Rules: []RuleConfig{
			{ID: "proj", Detector: "custom.project", Action: "redact"},
			{ID: "code", Detector: "custom.codename", Action: "redact"},
			{ID: "tick", Detector: "custom.ticket", Action: "redact"},
		}})
	text := "see PROJ-123456 and falcon   nine? not falconnine, BLUE-HERON, $topsecret, skynet; Ticket #12345. PROJ-12"
	want := "see [CUSTOM_PROJECT_1] and [CODENAME_1]? not falconnine, [CODENAME_2], [CODENAME_3], [CODENAME_4]; [CUSTOM_TICKET_1]. PROJ-12"
	r, err := e.ScanRequest("c", llm.ChatCompletions, chat(text))
	require.NoError(t, err)
	require.Equal(t, []string{want}, contents(t, r.NewBody))

	// The same through a stream, split everywhere.
	for cut := 0; cut <= len(text); cut++ {
		got, _, _ := streamChunks(t, e, "c", text[:cut], text[cut:])
		require.Equal(t, want, got, "cut at %d", cut)
	}
}
