package llm

import "net/http"

// Messages is POST /v1/messages: Anthropic Messages. The Anthropic SDKs' beta client adds
// ?beta=true, which is accepted (and not forwarded: the beta itself travels in the
// anthropic-beta header).
var Messages = mustRegister(Spec{
	Name:      "messages",
	Method:    http.MethodPost,
	Path:      "/v1/messages",
	Dialect:   Anthropic,
	Operation: "chat",
	Usage:     UsageMessages,
	Guard:     ShapeMessages,
	MaxTokens: FieldMaxTokens,
	Query:     map[string][]string{"beta": {"true", "false"}},
	Providers: []string{"anthropic"},
})
