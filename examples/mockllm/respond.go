package mockllm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// apiError is one client error in a dialect-neutral form; writeError renders it in the
// endpoint's provider shape. Messages never quote credentials or request bodies.
type apiError struct {
	// openAIType and anthropicType are the provider "type" values.
	openAIType    string
	anthropicType string
	// code is OpenAI's "code" (empty renders as null); param is OpenAI's "param".
	code    string
	param   string
	message string
}

var (
	errBodyTooLarge = apiError{
		openAIType: "invalid_request_error", anthropicType: "request_too_large", code: "request_too_large",
		message: "Request exceeds the maximum allowed number of bytes.",
	}
	errUnreadableBody = apiError{
		openAIType: "invalid_request_error", anthropicType: "invalid_request_error",
		message: "The request body could not be read.",
	}
	errBadJSON = apiError{
		openAIType: "invalid_request_error", anthropicType: "invalid_request_error",
		message: "We could not parse the JSON body of your request. The API expects a JSON payload.",
	}
	errContentType = apiError{
		openAIType: "invalid_request_error", anthropicType: "invalid_request_error",
		message: "Invalid content-type header: expected application/json.",
	}
	errOpenAIKeyWrong = apiError{
		openAIType: "invalid_request_error", code: "invalid_api_key",
		message: "Incorrect API key provided.",
	}
	errOpenAIKeyMissing = apiError{
		openAIType: "invalid_request_error", code: "invalid_api_key",
		message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
	}
	errAnthropicKey = apiError{anthropicType: "authentication_error", message: "invalid x-api-key"}
	errNoVersion    = apiError{anthropicType: "invalid_request_error", message: "anthropic-version: header is required"}
)

func errNotFound(method, path string) apiError {
	return apiError{
		openAIType: "invalid_request_error", anthropicType: "not_found_error", code: "unknown_url",
		message: fmt.Sprintf("Unknown request URL: %s %s.", method, truncate(path, 200)),
	}
}

func errMethod(method, path string) apiError {
	return apiError{
		openAIType: "invalid_request_error", anthropicType: "invalid_request_error", code: "method_not_supported",
		message: fmt.Sprintf("Invalid method for URL (%s %s).", method, truncate(path, 200)),
	}
}

// errParam is a 400 for a missing or mistyped field, naming the field like the providers do.
func errParam(param, message string) apiError {
	return apiError{
		openAIType: "invalid_request_error", anthropicType: "invalid_request_error",
		param: param, message: message,
	}
}

type openAIErrorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

type anthropicErrorBody struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes e with status in the provider shape of d.
func writeError(w http.ResponseWriter, d dialect, status int, e apiError) {
	if d == dialectAnthropic {
		var b anthropicErrorBody
		b.Type = "error"
		b.Error.Type = e.anthropicType
		if b.Error.Type == "" {
			b.Error.Type = "invalid_request_error"
		}
		b.Error.Message = e.message
		writeJSON(w, status, b)
		return
	}
	var b openAIErrorBody
	b.Error.Message = e.message
	b.Error.Type = e.openAIType
	if b.Error.Type == "" {
		b.Error.Type = "invalid_request_error"
	}
	if e.param != "" {
		b.Error.Param = &e.param
	}
	if e.code != "" {
		b.Error.Code = &e.code
	}
	writeJSON(w, status, b)
}

// writeJSON writes v as a complete JSON response with an exact content-length.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable with the mock's own types; still answer with valid JSON.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"The mock failed to encode its response.","type":"server_error","param":null,"code":null}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// truncate keeps error messages short when they quote client input such as a path.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
