package guard

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/tollgate-ai/tollgate/policy/llm"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Engine holds compiled guardrail profiles. It is immutable after Compile
// and safe for concurrent use; a config reload compiles a new Engine.
type Engine struct {
	profiles map[string]*profile
}

// profile is a compiled profile.
type profile struct {
	Profile
	plan    *plan
	ruleOf  []int // by detID: index into Rules, or -1
	maxScan int
	// stripLogprobs: the profile rewrites responses (a redact or block
	// rule, no dry run), so logprobs, which repeat the text outside what
	// redaction rewrites, are removed from them.
	stripLogprobs bool
}

// Compile validates and compiles profiles. Every problem is reported (joined,
// wrapping ErrInvalidConfig), each naming its field path relative to the
// list: "profiles[1].rules[0].action: unknown action ...". Error text never
// holds a pattern or literal from the config.
func Compile(cfgs ...ProfileConfig) (*Engine, error) {
	var errs []error
	e := &Engine{profiles: make(map[string]*profile, len(cfgs))}
	for i, c := range cfgs {
		prefix := fmt.Sprintf("profiles[%d]", i)
		p := compileProfile(c, prefix, &errs)
		if p != nil {
			for _, r := range p.Rules {
				p.stripLogprobs = p.stripLogprobs || (!p.DryRun && r.Action != Audit)
			}
		}
		if _, dup := e.profiles[c.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: duplicate profile %q", prefix, c.Name))
		}
		e.profiles[c.Name] = p
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return e, nil
}

// Profile returns the compiled profile name.
func (e *Engine) Profile(name string) (Profile, bool) {
	p, ok := e.profiles[name]
	if !ok {
		return Profile{}, false
	}
	out := p.Profile
	out.Rules = slices.Clone(p.Rules)
	return out, true
}

// Profiles returns the profile names, sorted.
func (e *Engine) Profiles() []string {
	names := make([]string, 0, len(e.profiles))
	for n := range e.profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ScanRequest scans a request body for endpoint ep with the named profile:
// every string the provider reads, except base64 image, audio and file
// data (see the package documentation).
//
// The body is parsed once. It must be one JSON object, nested at most
// MaxDepth deep, with no duplicate key in any object, and each text-bearing
// member must have a kind the endpoint's schema knows (messages[].content a
// string, an array of parts or null, never an object); otherwise the error
// wraps ErrInvalidJSON (and ErrTooDeep), ErrNotObject, ErrDuplicateKey or
// ErrUnknownShape, and the caller should answer 400. These checks hold for
// every profile, even one without rules. ErrUnknownProfile and
// ErrUnsupportedEndpoint are caller errors. A body that parses but cannot
// be scanned (ErrScanLimit) is not an error: the rules' fail modes decide,
// and Result.ScanErr says why.
//
// Strings that must not be rewritten (tool and function names, ids, roles,
// types, signatures, object keys) are scanned too: a match of a block or
// redact rule there blocks the request, BlockedBy naming the rule.
func (e *Engine) ScanRequest(profile string, ep llm.Endpoint, body []byte) (Result, error) {
	p, ok := e.profiles[profile]
	if !ok {
		return Result{}, ErrUnknownProfile
	}
	schema := requestSchema(ep)
	if schema == nil {
		return Result{}, ErrUnsupportedEndpoint
	}
	return p.scanJSON(schema, body, false, nil)
}

// ScanResponseJSON scans a non-streaming JSON response of endpoint ep: the
// members of the dialect tables (dialects.go), the ones the stream redactor
// reads too. Actions are those of requests: a block decides DecisionBlock
// (the caller may replace the response with an error), a redaction
// rewrites it. On a block, NewBody is also set, with the matches of block
// and redact rules replaced, for a caller that can no longer refuse the
// response. A profile that rewrites responses (a block or redact rule, no
// dry run) also replaces every logprobs value (chat and completions
// choices[].logprobs by null, Responses content parts' logprobs by []):
// NewBody is then set even when Decision is DecisionAllow. A body that is
// not readable JSON (including duplicate keys) is a scan failure decided by
// the rules' fail modes, not an error; NewBody is then nil.
func (e *Engine) ScanResponseJSON(profile string, ep llm.Endpoint, body []byte) (Result, error) {
	p, ok := e.profiles[profile]
	if !ok {
		return Result{}, ErrUnknownProfile
	}
	schema := responseSchema(ep)
	if schema == nil {
		return Result{}, ErrUnsupportedEndpoint
	}
	return p.scanJSON(schema, body, true, nil)
}

// state is the scratch space of one scan, pooled so a clean scan allocates
// nothing but its result.
type state struct {
	w    walker
	dec  []byte
	z    normalizer
	sc   scan
	hits []hit
}

// hit is a match located in the decoded text of one loc.
type hit struct {
	loc        int32
	det        detID
	start, end int32
	// key is the normalized matched text, kept only for redacted matches so
	// equal values get the same placeholder. It never leaves the scan.
	key string
}

var statePool = sync.Pool{New: func() any { return new(state) }}

func getState() *state { return statePool.Get().(*state) }

// putState wipes the text buffers (they held prompt text) and returns st to
// the pool. Buffers that grew past maxPooledBuf are then dropped, so one huge
// body does not make every later scan wipe megabytes.
func putState(st *state) {
	st.dec = wipe(st.dec)
	st.z.a = wipe(st.z.a)
	st.z.out = wipe(st.z.out)
	if cap(st.z.aOffs) > maxPooledBuf {
		st.z.aOffs, st.z.offs = nil, nil
	}
	clear(st.hits)
	st.hits = st.hits[:0]
	st.w.reset(nil)
	if cap(st.w.locs) > maxPooledBuf/8 {
		st.w.locs, st.w.nodes = nil, nil
	}
	st.sc.t = nil
	statePool.Put(st)
}

// maxPooledBuf is the largest buffer kept in a pooled state.
const maxPooledBuf = 256 << 10

// wipe zeroes b up to its capacity and returns it emptied, or nil when it is
// too large to keep. Zeroing a buffer only its own scan filled costs no more
// than that scan did.
func wipe(b []byte) []byte {
	clear(b[:cap(b)])
	if cap(b) > maxPooledBuf {
		return nil
	}
	return b[:0]
}

// decode returns the decoded value of loc l: the raw bytes when they need no
// decoding, else a decoded copy in st.dec.
func (st *state) decode(body []byte, l loc) []byte {
	raw := body[l.start+1 : l.end-1]
	if l.flags == 0 || (l.flags == jsonlex.NonASCII && utf8.Valid(raw)) {
		return raw
	}
	st.dec, _ = jsonlex.Unquote(st.dec[:0], raw)
	return st.dec
}

// scanJSON walks body with schema, scans every extracted string and builds
// the result. ph numbers the placeholders of NewBody (nil: a fresh
// numbering for this body).
func (p *profile) scanJSON(schema *node, body []byte, response bool, ph *placeholders) (Result, error) {
	st := getState()
	defer putState(st)
	if err := st.w.walk(body, schema); err != nil {
		if !response {
			return Result{}, err
		}
		return p.failed(fmt.Errorf("%w: %w", ErrUnreadableResponse, err)), nil
	}
	if p.maxScan > 0 {
		total := 0
		for _, l := range st.w.locs {
			total += int(l.end - l.start - 2)
		}
		if total > p.maxScan {
			return p.failed(ErrScanLimit), nil
		}
	}
	if len(p.Rules) == 0 {
		return Result{DryRun: p.DryRun}, nil
	}
	strip := response && p.stripLogprobs && len(st.w.strips) > 0
	st.sc.p = p.plan
	for li, l := range st.w.locs {
		text := st.decode(body, l)
		norm, ident := st.z.normalize(text)
		st.sc.run(norm, true)
		for _, m := range st.sc.ms {
			h := hit{loc: int32(li), det: m.det, start: m.start, end: m.end}
			if !ident {
				s, e := st.z.origSpan(int(m.start), int(m.end))
				h.start, h.end = int32(s), int32(e)
			}
			if p.rewrites(p.Rules[p.ruleOf[m.det]].Action, response) && !p.DryRun && !l.keep {
				h.key = string(norm[m.start:m.end])
			}
			st.hits = append(st.hits, h)
		}
	}
	r := Result{DryRun: p.DryRun}
	if len(st.hits) > 0 {
		r = p.decide(st)
	}
	if r.Decision == DecisionRedact || (response && r.Decision == DecisionBlock) || strip {
		r.NewBody = p.rewrite(st, body, response, ph)
	}
	return r, nil
}

// rewrites reports whether matches of a rule with action a are replaced in
// NewBody: redact rules always, block rules too in a response, for callers
// that can no longer refuse it.
func (p *profile) rewrites(a Action, response bool) bool {
	return a == Redact || (response && a == Block)
}

// decide turns the hits into findings and a decision. A redact rule's match
// in a string that must not be rewritten (a keep loc: a tool name, an id, a
// key) cannot be redacted, so it blocks, and its finding says Block.
func (p *profile) decide(st *state) Result {
	r := Result{DryRun: p.DryRun}
	type fkey struct {
		rule, path int32
		act        Action
	}
	index := map[fkey]int{}
	blocked, redact := -1, false
	for _, h := range st.hits {
		ri := p.ruleOf[h.det]
		rule := p.Rules[ri]
		l := st.w.locs[h.loc]
		act := rule.Action
		if act == Redact && l.keep {
			act = Block
		}
		k := fkey{int32(ri), l.path, act}
		if i, ok := index[k]; ok {
			r.Findings[i].Count++
		} else {
			index[k] = len(r.Findings)
			r.Findings = append(r.Findings, Finding{
				RuleID: rule.ID, Detector: rule.Detector, Action: act,
				Count: 1, Path: st.w.pathString(l.path),
			})
		}
		switch act {
		case Block:
			if blocked < 0 || ri < blocked {
				blocked = ri
			}
		case Redact:
			redact = true
		}
	}
	switch {
	case blocked >= 0:
		r.Intended, r.BlockedBy = DecisionBlock, p.Rules[blocked].ID
	case redact:
		r.Intended = DecisionRedact
	}
	if !p.DryRun {
		r.Decision = r.Intended
	}
	return r
}

// failed is the result of a body that could not be scanned: every rule gets
// a Failed finding, and the first fail-closed rule blocks.
func (p *profile) failed(cause error) Result {
	r := Result{DryRun: p.DryRun, ScanErr: cause}
	for _, rule := range p.Rules {
		r.Findings = append(r.Findings, Finding{RuleID: rule.ID, Detector: rule.Detector, Action: rule.Action, Failed: true})
		if !rule.FailOpen && r.BlockedBy == "" {
			r.Intended, r.BlockedBy = DecisionBlock, rule.ID
		}
	}
	if !p.DryRun {
		r.Decision = r.Intended
	}
	return r
}
