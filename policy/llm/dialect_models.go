package llm

import "net/http"

// Models is GET /v1/models, which OpenAI and Anthropic share: Tollgate answers it from the
// key's allowed models in the client's dialect (Anthropic when it sent anthropic-version).
var Models = mustRegister(Spec{
	Name:    "models",
	Method:  http.MethodGet,
	Path:    "/v1/models",
	Dialect: OpenAI,
	Local:   true,
})
