package llm

import "net/http"

// Completions is POST /v1/completions: OpenAI's legacy completions, still served by Azure
// OpenAI and by OpenAI-compatible servers.
var Completions = mustRegister(Spec{
	Name:           "completions",
	Method:         http.MethodPost,
	Path:           "/v1/completions",
	Dialect:        OpenAI,
	Operation:      "text_completion",
	Usage:          UsageChat,
	Guard:          ShapeCompletions,
	MaxTokens:      FieldMaxTokens,
	StreamUsage:    true,
	Providers:      []string{"openai", "azure-openai", "openai-compatible"},
	AzureOperation: "completions",
})
