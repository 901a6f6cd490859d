package llm

import "net/http"

// ChatCompletions is POST /v1/chat/completions: OpenAI Chat Completions, also served by Azure
// OpenAI deployments and OpenAI-compatible servers (vLLM, Ollama, ...).
var ChatCompletions = mustRegister(Spec{
	Name:      "chat_completions",
	Method:    http.MethodPost,
	Path:      "/v1/chat/completions",
	Dialect:   OpenAI,
	Operation: "chat",
	Usage:     UsageChat,
	Guard:     ShapeChat,
	// max_tokens is deprecated on OpenAI (and refused by its reasoning models), but it is
	// the cap that vLLM, Ollama and most compatible servers read.
	MaxTokens:       FieldMaxCompletionTokens,
	CompatMaxTokens: FieldMaxTokens,
	StreamUsage:     true,
	Providers:       []string{"openai", "azure-openai", "openai-compatible"},
	AzureOperation:  "chat/completions",
})
