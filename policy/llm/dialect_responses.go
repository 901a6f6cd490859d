package llm

import "net/http"

// Responses is POST /v1/responses: the OpenAI Responses API. Azure OpenAI serves it on its
// v1 API, which takes the deployment name in the body's model field.
var Responses = mustRegister(Spec{
	Name:      "responses",
	Method:    http.MethodPost,
	Path:      "/v1/responses",
	Dialect:   OpenAI,
	Operation: "chat",
	Usage:     UsageResponses,
	Guard:     ShapeResponses,
	MaxTokens: FieldMaxOutputTokens,
	Providers: []string{"openai", "azure-openai", "openai-compatible"},
	AzurePath: "/openai/v1/responses",
})
