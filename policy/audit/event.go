package audit

import "time"

// SchemaVersion is the value of the "v" member of every record this package
// writes. It changes only when a field changes meaning or disappears; new
// optional fields do not bump it.
const SchemaVersion = 1

// Decision is the outcome class of a request.
type Decision string

// Decisions. A request is either allowed (forwarded upstream, whatever the
// upstream then answered), denied by policy, or ended by an error on the
// gateway or upstream side.
const (
	DecisionAllow Decision = "allow"
	DecisionDeny  Decision = "deny"
	DecisionError Decision = "error"
)

// Event is one audit record: one per request, on every ending (success,
// denial, upstream error, client abort, timeout). It is minimized by design:
// it never holds prompt or completion text, credential headers or keys, only
// the public key id and, when the content policy asks for it, HMACs or an age
// ciphertext of the content.
//
// JSON members, in the order they are written (see SCHEMA.md):
//
//	v                    schema version, always 1 (set by Emit)
//	time                 end of the request, RFC 3339 with nanoseconds, UTC (Emit stamps it when zero)
//	request_id           the gateway's request id (x-request-id)
//	key_id               public id of the virtual key; absent when no key was identified
//	team                 the key's team; absent when unknown
//	endpoint             normalized endpoint, e.g. "chat_completions"
//	upstream_endpoint    the endpoint the provider received when the gateway translated the
//	                     request to its API (e.g. "messages"); absent otherwise
//	provider             upstream provider name; absent when not routed
//	model_requested      model named by the client; absent when none
//	model_served         model reported by the upstream; absent when none
//	stream               the client asked for a streamed response
//	status               HTTP status sent to the client (0 when none was sent)
//	decision             allow, deny or error
//	reason               closed-set reason code supplied by the caller (never free text)
//	complete             the response reached its end (false on client abort, timeout, upstream cut)
//	tokens               {input, output, cached_input, cache_write}
//	cost_usd_micros      settled cost in millionths of a US dollar
//	reserved_usd_micros  amount reserved before forwarding; absent when 0
//	settle_rule          how the cost was settled ("usage", "incomplete", "full_reservation",
//	                     "upstream_error"); absent when the request was not forwarded
//	latency_ms           {total, first_byte, upstream} in whole milliseconds
//	guardrails           [{rule, action, count}] findings; absent when none
//	limits               limit kinds consulted, e.g. ["key_usd_day"]; absent when none
//	bytes_in             request body bytes received from the client
//	bytes_out            response body bytes sent to the client
//	client_addr          client address already truncated with TruncateAddr; absent when dropped
//	attempts             [{n, provider, model, status, outcome}] of a request with fallback targets; absent otherwise
//	content              {prompt_hmac, completion_hmac} or {sealed}; absent in content mode off
//	seq                  position in the emitter's chain, from 1 (set by the chain)
//	prev                 mac of the previous record, or a random chain id for seq 1 (set by the chain)
//	mac                  HMAC-SHA256 of the record without mac, hex (set by the chain)
type Event struct {
	V                 int                `json:"v"`
	Time              time.Time          `json:"time"`
	RequestID         string             `json:"request_id"`
	KeyID             string             `json:"key_id,omitempty"`
	Team              string             `json:"team,omitempty"`
	Endpoint          string             `json:"endpoint"`
	UpstreamEndpoint  string             `json:"upstream_endpoint,omitempty"`
	Provider          string             `json:"provider,omitempty"`
	ModelRequested    string             `json:"model_requested,omitempty"`
	ModelServed       string             `json:"model_served,omitempty"`
	Stream            bool               `json:"stream"`
	Status            int                `json:"status"`
	Decision          Decision           `json:"decision"`
	Reason            string             `json:"reason"`
	Complete          bool               `json:"complete"`
	Tokens            Tokens             `json:"tokens"`
	CostUSDMicros     int64              `json:"cost_usd_micros"`
	ReservedUSDMicros int64              `json:"reserved_usd_micros,omitempty"`
	SettleRule        string             `json:"settle_rule,omitempty"`
	Latency           Latency            `json:"latency_ms"`
	Guardrails        []GuardrailFinding `json:"guardrails,omitempty"`
	Limits            []string           `json:"limits,omitempty"`
	BytesIn           int64              `json:"bytes_in"`
	BytesOut          int64              `json:"bytes_out"`
	ClientAddr        string             `json:"client_addr,omitempty"`
	Attempts          []Attempt          `json:"attempts,omitempty"`
	Content           *Content           `json:"content,omitempty"`

	// Chain fields. The Emitter sets them; values set by the caller are ignored.
	// They stay last so that the mac can be appended to the serialized record
	// (see doc.go).
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
	MAC  string `json:"mac,omitempty"`
}

// Tokens counts the tokens of one request as the upstream reported them (or as
// estimated when it did not; see SettleRule).
type Tokens struct {
	Input       int64 `json:"input"`
	Output      int64 `json:"output"`
	CachedInput int64 `json:"cached_input"`
	CacheWrite  int64 `json:"cache_write"`
}

// Latency holds durations in whole milliseconds. FirstByte and Upstream are 0
// when the request never reached the upstream.
type Latency struct {
	// Total is from the first request header to the end of the stream.
	Total int64 `json:"total"`
	// FirstByte is from the first request header to the first response byte
	// sent to the client.
	FirstByte int64 `json:"first_byte"`
	// Upstream is the time spent waiting on the upstream.
	Upstream int64 `json:"upstream"`
}

// GuardrailFinding is one guardrail rule that matched: its id, the action taken
// and how many times it matched. It never carries the matched text.
type GuardrailFinding struct {
	Rule   string `json:"rule"`
	Action string `json:"action"`
	Count  int    `json:"count"`
}

// Attempt is one attempt of a request with fallback targets: its number (1, 2, ...), the
// provider and upstream model it went to, the status it answered (0 when none) and its
// outcome, one of served, failed, no_answer, refused and cut. It never names a cluster, an
// address or a key.
type Attempt struct {
	N        int    `json:"n"`
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Status   int    `json:"status,omitempty"`
	Outcome  string `json:"outcome"`
}

// Content is the optional content member, set by ContentPolicy.Apply. In hash
// mode it holds HMAC-SHA256 digests (hex); in sealed mode it holds one age
// ciphertext (ASCII armored) of both texts. It is never plaintext.
type Content struct {
	PromptHMAC     string `json:"prompt_hmac,omitempty"`
	CompletionHMAC string `json:"completion_hmac,omitempty"`
	Sealed         string `json:"sealed,omitempty"`
}

// Millis converts d to whole milliseconds for the Latency fields, rounding
// down; negative durations give 0.
func Millis(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return d.Milliseconds()
}
