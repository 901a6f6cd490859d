package llm

import "net/http"

// Embeddings is POST /v1/embeddings (OpenAI, Azure OpenAI, OpenAI-compatible). It produces
// no output tokens, so it has no output cap; it is never streamed.
var Embeddings = mustRegister(Spec{
	Name:           "embeddings",
	Method:         http.MethodPost,
	Path:           "/v1/embeddings",
	Dialect:        OpenAI,
	Operation:      "embeddings",
	Usage:          UsageChat,
	Guard:          ShapeEmbeddings,
	Providers:      []string{"openai", "azure-openai", "openai-compatible"},
	AzureOperation: "embeddings",
})
