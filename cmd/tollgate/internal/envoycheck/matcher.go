package envoycheck

import (
	"strings"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	matcherxds "github.com/cncf/xds/go/xds/type/matcher/v3"
	networkinputsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/matching/common_inputs/network/v3"
	metadatamatchv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/matching/input_matchers/metadata/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Type names the skip analysis looks for.
const (
	skipFilterType = "envoy.extensions.filters.common.matcher.action.v3.SkipFilter"
	responseInput  = "envoy.type.matcher.v3.HttpResponse" // ...HeaderMatchInput, StatusCodeMatchInput, ...
	viaUpstream    = "via_upstream"
)

// checkSkipMatcher reports an ExtensionWithMatcher around Tollgate's ext_proc filter that can
// skip it. Skipping on anything known before the response is a full bypass; skipping a
// response Tollgate forwarded loses its usage (the budget is never settled). A skip that
// needs a response and also excludes upstream responses (response code details
// "via_upstream", or no tollgate dynamic metadata) is the pattern envoy/envoy.yaml documents.
func (c *checker) checkSkipMatcher(fp string, fi filterInfo) {
	if fi.wrapper == nil {
		return
	}
	p := join(fp, "typed_config")
	//lint:ignore SA1019 deprecated but still accepted by Envoy 1.40, so it must be checked
	if fi.wrapper.GetMatcher() != nil {
		c.f.add(Medium, "extproc-skippable", join(p, "matcher"),
			"Tollgate's ext_proc filter is wrapped in a matcher (deprecated matcher field) the check cannot evaluate",
			"use xds_matcher, and skip only replies Envoy makes itself (see envoy/README.md)")
		return
	}
	var worst Severity
	var visit func(m *matcherxds.Matcher, guard skipGuard)
	visit = func(m *matcherxds.Matcher, guard skipGuard) {
		if m == nil {
			return
		}
		onMatch := func(om *matcherxds.Matcher_OnMatch, g skipGuard) {
			if isSkip(om.GetAction()) {
				worst = worse(worst, g.severity())
			}
			visit(om.GetMatcher(), g)
		}
		for _, fm := range m.GetMatcherList().GetMatchers() {
			onMatch(fm.GetOnMatch(), guard.and(guardOf(fm.GetPredicate(), c.opt.MetadataNamespace)))
		}
		if t := m.GetMatcherTree(); t != nil {
			g := guard.and(skipGuard{response: strings.HasPrefix(anyTypeName(t.GetInput().GetTypedConfig()), responseInput)})
			for _, om := range t.GetExactMatchMap().GetMap() {
				onMatch(om, g)
			}
			for _, om := range t.GetPrefixMatchMap().GetMap() {
				onMatch(om, g)
			}
			if t.GetCustomMatch() != nil && containsSkip(t) {
				worst = worse(worst, g.severity())
			}
		}
		onMatch(m.GetOnNoMatch(), guard)
	}
	visit(fi.wrapper.GetXdsMatcher(), skipGuard{})
	switch worst {
	case High:
		c.f.add(High, "extproc-skippable", join(p, "xds_matcher"),
			"a matcher can skip Tollgate's ext_proc filter on a condition known before the response: such requests reach providers unchecked",
			"skip ext_proc only on response conditions that exclude upstream responses (see envoy/README.md), or remove the matcher")
	case Medium:
		c.f.add(Medium, "extproc-skippable", join(p, "xds_matcher"),
			"a matcher can skip Tollgate's ext_proc filter for responses without excluding responses from providers: their usage is never settled",
			"add a condition that excludes upstream responses (response.code_details != 'via_upstream'), as envoy/envoy.yaml does")
	}
}

// skipGuard is what a skip's conditions establish.
type skipGuard struct {
	// response: the skip needs a response (so request processing always runs).
	response bool
	// notUpstream: the skip excludes responses that came from an upstream.
	notUpstream bool
}

func (g skipGuard) and(o skipGuard) skipGuard {
	return skipGuard{response: g.response || o.response, notUpstream: g.notUpstream || o.notUpstream}
}

func (g skipGuard) severity() Severity {
	switch {
	case !g.response:
		return High
	case !g.notUpstream:
		return Medium
	}
	return Low
}

// worse returns the more severe of a and b (0 means none).
func worse(a, b Severity) Severity {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// guardOf returns what a predicate guarantees when it matches.
func guardOf(p *matcherxds.Matcher_MatcherList_Predicate, ns string) skipGuard {
	switch {
	case p.GetSinglePredicate() != nil:
		sp := p.GetSinglePredicate()
		return skipGuard{
			response:    strings.HasPrefix(anyTypeName(sp.GetInput().GetTypedConfig()), responseInput),
			notUpstream: excludesUpstream(sp, ns),
		}
	case p.GetAndMatcher() != nil:
		var g skipGuard
		for _, q := range p.GetAndMatcher().GetPredicate() {
			g = g.and(guardOf(q, ns))
		}
		return g
	case p.GetOrMatcher() != nil:
		preds := p.GetOrMatcher().GetPredicate()
		if len(preds) == 0 {
			return skipGuard{}
		}
		g := skipGuard{response: true, notUpstream: true}
		for _, q := range preds {
			o := guardOf(q, ns)
			g = skipGuard{response: g.response && o.response, notUpstream: g.notUpstream && o.notUpstream}
		}
		return g
	}
	return skipGuard{} // not_matcher and anything else: assume nothing
}

// excludesUpstream reports whether a single predicate only matches responses Envoy made
// itself: a CEL expression comparing response code details with "via_upstream", or an
// inverted presence match on Tollgate's dynamic metadata namespace (Tollgate writes it only
// on requests it forwards).
func excludesUpstream(sp *matcherxds.Matcher_MatcherList_Predicate_SinglePredicate, namespace string) bool {
	if text := protojson.Format(sp); strings.Contains(text, viaUpstream) && strings.Contains(text, "_!=_") {
		return true
	}
	in, ok := unpack(sp.GetInput().GetTypedConfig()).(*networkinputsv3.DynamicMetadataInput)
	if !ok || in.GetFilter() != namespace {
		return false
	}
	md, ok := unpack(sp.GetCustomMatch().GetTypedConfig()).(*metadatamatchv3.Metadata)
	return ok && md.GetInvert() && md.GetValue().GetPresentMatch()
}

// isSkip reports whether an action skips the wrapped filter.
func isSkip(a *xdscorev3.TypedExtensionConfig) bool {
	return a != nil && anyTypeName(a.GetTypedConfig()) == skipFilterType
}

// containsSkip reports whether a SkipFilter action appears anywhere in m.
func containsSkip(m proto.Message) bool {
	return strings.Contains(protojson.Format(m), skipFilterType)
}
