package policy

// Reason is a closed set of decision codes. It feeds log fields, metric labels, the audit
// reason and the client error code, so it never carries free text.
type Reason string

// Reasons. Adding one is an API change: metrics dashboards and audit consumers key on them.
const (
	ReasonOK                   Reason = "ok"
	ReasonNoCredential         Reason = "no_credential"
	ReasonAmbiguousCredential  Reason = "ambiguous_credential"
	ReasonInvalidKey           Reason = "invalid_key"
	ReasonKeyDisabled          Reason = "key_disabled"
	ReasonKeyExpired           Reason = "key_expired"
	ReasonTeamDisabled         Reason = "team_disabled"
	ReasonUnknownEndpoint      Reason = "unknown_endpoint"
	ReasonMethodNotAllowed     Reason = "method_not_allowed"
	ReasonUnsupportedMediaType Reason = "unsupported_media_type"
	ReasonMissingBody          Reason = "missing_body"
	ReasonBodyTooLarge         Reason = "body_too_large"
	ReasonInvalidJSON          Reason = "invalid_json"
	ReasonInvalidRequest       Reason = "invalid_request"
	ReasonMissingModel         Reason = "missing_model"
	ReasonUnknownModel         Reason = "unknown_model"
	ReasonModelNotAllowed      Reason = "model_not_allowed"
	ReasonWrongAPI             Reason = "endpoint_not_supported_by_model"
	ReasonProviderUnavailable  Reason = "provider_unavailable"
	ReasonLimitExceeded        Reason = "limit_exceeded"
	ReasonStreamingNotAllowed  Reason = "streaming_not_allowed"
	ReasonTooManyMessages      Reason = "too_many_messages"
	ReasonTooManyChoices       Reason = "too_many_choices"
	ReasonMaxTokensExceeded    Reason = "max_tokens_exceeded"
	ReasonGuardrailBlocked     Reason = "guardrail_blocked"
	ReasonGuardrailUnreadable  Reason = "guardrail_unreadable"
	ReasonVirtualKeyInBody     Reason = "virtual_key_in_body"
	ReasonAuditUnavailable     Reason = "audit_unavailable"
	ReasonLedgerUnavailable    Reason = "ledger_unavailable"
	ReasonInternal             Reason = "internal_error"
	// ReasonAttemptRefused marks a fallback attempt Tollgate's upstream filter refused to send:
	// it did not match the request's plan (see Snapshot.NewAttempt).
	ReasonAttemptRefused Reason = "attempt_refused"
	// ReasonIncomplete marks a stream that ended before any decision: the client went away
	// during the headers, or the proxy stopped before the body arrived.
	ReasonIncomplete Reason = "incomplete"
	// ReasonEnvoyLocalReply marks a reply Envoy made itself (a malformed request it refused)
	// and Tollgate passed through: nothing was forwarded.
	ReasonEnvoyLocalReply Reason = "envoy_local_reply"
)
