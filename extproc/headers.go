package extproc

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap/zapcore"

	"github.com/tollgate-ai/tollgate/policy"
)

// Log field keys.
const (
	fieldRequestID        = "request_id"
	fieldKeyID            = "key_id"
	fieldTeam             = "team"
	fieldMethod           = "method"
	fieldPath             = "path"
	fieldEndpoint         = "endpoint"
	fieldUpstreamEndpoint = "upstream_endpoint"
	fieldModel            = "model"
	fieldUpstreamModel    = "upstream_model"
	fieldProvider         = "provider"
	fieldStream           = "stream"
	fieldStatus           = "status"
	fieldReason           = "reason"
	fieldDuration         = "duration"
	fieldFirstByte        = "first_byte"
	fieldComplete         = "complete"
	fieldRequestBytes     = "request_bytes"
	fieldResponseBytes    = "response_bytes"
	fieldReservedMicros   = "reserved_usd_micros"
	fieldCostMicros       = "cost_usd_micros"
	fieldTokens           = "tokens"
	fieldSettleRule       = "settle_rule"
	fieldInputTokens      = "input_tokens"
	fieldOutputTokens     = "output_tokens"
	fieldCachedTokens     = "cached_tokens"
	fieldGuardProfile     = "guard_profile"
	fieldGuardDecision    = "guard_decision"
	fieldGuardFindings    = "guard_findings"
	fieldAttempts         = "attempts"
)

// loggableHeaders is the allow-list of headers that may appear in a debug log. Anything else,
// credentials above all, is never logged.
var loggableHeaders = map[string]bool{
	":method": true, ":path": true, ":authority": true, ":status": true,
	"content-type": true, "content-length": true, "user-agent": true,
	"x-request-id": true, "anthropic-version": true, "openai-beta": true,
}

// headerMap is Envoy's HeaderMap read once into a slice. Lookups are linear: a request has a
// few dozen headers and we read a handful, which beats building a map.
type headerMap struct {
	keys []string
	vals []string
}

// newHeaderMap reads raw_value, which Envoy 1.27+ fills, falling back to value.
func newHeaderMap(hm *corev3.HeaderMap) headerMap {
	hs := hm.GetHeaders()
	m := headerMap{keys: make([]string, 0, len(hs)), vals: make([]string, 0, len(hs))}
	for _, h := range hs {
		v := string(h.GetRawValue())
		if v == "" {
			v = h.GetValue()
		}
		m.keys = append(m.keys, h.GetKey())
		m.vals = append(m.vals, v)
	}
	return m
}

// Get returns the first value of name (lower case), or "".
func (m headerMap) Get(name string) string {
	for i, k := range m.keys {
		if k == name {
			return m.vals[i]
		}
	}
	return ""
}

// Names returns the header names in the order received.
func (m headerMap) Names() []string { return m.keys }

// MarshalLogObject logs allow-listed headers only; the path loses its query string.
func (m headerMap) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for i, k := range m.keys {
		if !loggableHeaders[k] {
			continue
		}
		v := m.vals[i]
		if k == ":path" {
			v, _, _ = strings.Cut(v, "?") // a query string may carry tokens
		}
		enc.AddString(k, v)
	}
	return nil
}

// evidenceList logs evidence as {rule, action, count} objects.
type evidenceList []policy.GuardEvidence

func (el evidenceList) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, e := range el {
		_ = enc.AppendObject(zapcore.ObjectMarshalerFunc(func(o zapcore.ObjectEncoder) error {
			o.AddString("rule", e.Rule)
			o.AddString("action", e.Action)
			o.AddInt("count", e.Count)
			return nil
		}))
	}
	return nil
}
