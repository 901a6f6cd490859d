package guard

// Result is the outcome of scanning one body.
type Result struct {
	// Decision is what the caller must do. It is DecisionAllow under a dry
	// run, whatever the rules call for.
	Decision Decision
	// Intended is what the rules call for; it differs from Decision only
	// under a dry run.
	Intended Decision
	// BlockedBy is the id of the rule that blocks (or would block, under a
	// dry run): the first block rule, in profile order, that matched or
	// failed closed.
	BlockedBy string
	// Findings are the matches per rule and location, in body order. They
	// carry counts and locations, never the matched text.
	Findings []Finding
	// NewBody is the redacted body when Decision is DecisionRedact (and,
	// from ScanResponseJSON, when it is DecisionBlock, or when logprobs were
	// removed, whatever the decision), else nil. Only the JSON string
	// tokens holding a match (and removed logprobs values) differ from the
	// original body; every other byte is identical. A caller forwards
	// NewBody whenever it is set.
	NewBody []byte
	// DryRun reports that the profile is in dry-run mode.
	DryRun bool
	// ScanErr is why the body could not be scanned (ErrScanLimit,
	// ErrUnreadableResponse), nil when it was. Each rule's fail mode then
	// decided the outcome, and every rule has a Failed finding.
	ScanErr error
}

// Finding is one rule's matches at one location. It is safe to log and to put
// in an audit event: no field holds request or response content.
type Finding struct {
	RuleID   string
	Detector string
	// Action is what the rule does (or, under a dry run, would do). On a
	// streamed response Block is reported as Redact, the action taken; in
	// a request string that must not be rewritten (a tool name, an id, a
	// key) Redact is reported as Block, the action taken.
	Action Action
	// Count is the number of matches.
	Count int
	// Path locates the text: "messages[2].content", "system[0].text",
	// "messages[1].content[0].input" (strings nested in a tool input are
	// reported at the input). It is built from names Tollgate defines and
	// array indexes, never from keys in the body. Empty in Totals.
	Path string
	// Failed reports that the body could not be scanned for this rule.
	Failed bool
}

// Totals aggregates the findings per rule, in first-seen order, with an
// empty Path: the shape an audit event records (rule id, action, count).
func (r Result) Totals() []Finding {
	return totals(r.Findings)
}

func totals(fs []Finding) []Finding {
	var out []Finding
outer:
	for _, f := range fs {
		for i := range out {
			if out[i].RuleID == f.RuleID {
				out[i].Count += f.Count
				out[i].Failed = out[i].Failed || f.Failed
				if f.Action == Block {
					out[i].Action = Block
				}
				continue outer
			}
		}
		f.Path = ""
		out = append(out, f)
	}
	return out
}
