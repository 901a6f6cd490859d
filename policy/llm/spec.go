package llm

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Spec describes one client-facing API operation: everything the gateway needs to know about
// it. Each endpoint family is declared in one file (dialect_*.go); adding an endpoint is one
// such file plus its golden tests, and Register refuses a Spec that leaves a part out.
type Spec struct {
	// Name is the stable snake_case name of logs, metrics labels and audit events.
	Name string
	// Method and Path are what Classify matches, exactly (Envoy normalizes paths first).
	Method, Path string
	// Dialect is the clients' wire format: error bodies and model lists.
	Dialect Dialect
	// Operation is the OpenTelemetry gen_ai.operation.name of the operation ("chat",
	// "text_completion", "embeddings"); required for every forwarded endpoint.
	Operation string
	// Local reports an endpoint Tollgate answers itself (the model list): never forwarded.
	Local bool
	// Usage says how the provider reports token usage in responses (UsageNone: none).
	Usage UsageKind
	// Guard is the shape of the request and response bodies, which says where the text that
	// guardrails scan sits, in JSON and in SSE (policy/guard holds one table per shape). It
	// is required for every forwarded endpoint.
	Guard Shape
	// MaxTokens is the request field that caps output tokens ("" when the operation produces
	// none, as embeddings); CompatMaxTokens the one OpenAI-compatible servers read, when it
	// differs (vLLM and Ollama read max_tokens on chat).
	MaxTokens, CompatMaxTokens string
	// StreamUsage reports that a streamed response carries usage only when the request sets
	// stream_options.include_usage, which Tollgate then adds (OpenAI style).
	StreamUsage bool
	// Query lists the query parameters a client may send, with their allowed values; any
	// other is refused, since the APIs carry their parameters in the body and a provider
	// feature switched on by the query would be one policy never saw. The query is never
	// forwarded. A Local endpoint ignores its query.
	Query map[string][]string
	// Providers lists the provider types that serve it (openai, anthropic, azure-openai,
	// openai-compatible).
	Providers []string
	// AzureOperation is the operation's path under an Azure OpenAI deployment
	// (/openai/deployments/{deployment}/{AzureOperation}?api-version=...), or AzurePath the
	// whole path of an Azure v1 API that takes the deployment in the body; "" for both when
	// Azure does not serve it.
	AzureOperation, AzurePath string
}

// UsageKind says how a response reports usage.
type UsageKind uint8

// Usage kinds.
const (
	UsageNone      UsageKind = iota // no usage (the model list)
	UsageChat                       // OpenAI Chat Completions, Completions, Embeddings: "usage" {prompt_tokens, ...}
	UsageResponses                  // OpenAI Responses: response.usage {input_tokens, ...}
	UsageMessages                   // Anthropic Messages: message_start and message_delta usage
)

// Shape is the wire shape of an endpoint's bodies, as the guardrails read them.
type Shape uint8

// Shapes.
const (
	ShapeNone        Shape = iota // no body (the model list)
	ShapeChat                     // OpenAI Chat Completions: messages in, choices[].message and deltas out
	ShapeCompletions              // OpenAI legacy Completions: prompt in, choices[].text out
	ShapeEmbeddings               // OpenAI Embeddings: input in, vectors out
	ShapeResponses                // OpenAI Responses: input items in, output items and typed events out
	ShapeMessages                 // Anthropic Messages: content blocks in and out
	shapeCount
)

var (
	usageNames = [...]string{UsageNone: "none", UsageChat: "chat", UsageResponses: "responses", UsageMessages: "messages"}
	shapeNames = [...]string{ShapeNone: "none", ShapeChat: "chat", ShapeCompletions: "completions", ShapeEmbeddings: "embeddings",
		ShapeResponses: "responses", ShapeMessages: "messages"}
)

// String names the usage kind ("chat", "responses", "messages", "none").
func (k UsageKind) String() string {
	if int(k) < len(usageNames) {
		return usageNames[k]
	}
	return "unknown"
}

// String names the shape ("chat", "completions", ...).
func (s Shape) String() string {
	if int(s) < len(shapeNames) {
		return shapeNames[s]
	}
	return "unknown"
}

// registry holds the registered Specs, indexed by Endpoint; index 0 is EndpointUnknown. It is
// replaced whole on Register (copy on write), so Classify reads it without a lock. The
// built-in endpoints register during package variable initialization, before any init
// function, so an empty registry reads as the base one.
var (
	registry   atomic.Pointer[[]Spec]
	registerMu sync.Mutex
	baseSpecs  = []Spec{{Name: "unknown"}}
)

// specs returns the registered Specs.
func specs() []Spec {
	if p := registry.Load(); p != nil {
		return *p
	}
	return baseSpecs
}

// ErrIncompleteSpec means a Spec leaves out a part every endpoint must declare.
var ErrIncompleteSpec = errors.New("incomplete endpoint spec")

// Register validates spec and adds it, returning its Endpoint. Register the built-in
// endpoints at package initialization and others before serving: an Endpoint is valid for
// the life of the process.
func Register(spec Spec) (Endpoint, error) {
	if err := spec.validate(); err != nil {
		return EndpointUnknown, err
	}
	registerMu.Lock()
	defer registerMu.Unlock()
	old := specs()
	for _, sp := range old[1:] {
		if sp.Name == spec.Name || sp.Path == spec.Path {
			return EndpointUnknown, fmt.Errorf("%w: %s: name or path already registered", ErrIncompleteSpec, spec.Name)
		}
	}
	next := append(append(make([]Spec, 0, len(old)+1), old...), spec)
	registry.Store(&next)
	return Endpoint(len(next) - 1), nil
}

// mustRegister registers a built-in endpoint.
func mustRegister(spec Spec) Endpoint {
	e, err := Register(spec)
	if err != nil {
		panic(err) // a broken built-in table: caught by every test run
	}
	return e
}

// validate refuses a Spec that leaves out a part (see Spec).
func (s Spec) validate() error {
	var missing []string
	if s.Name == "" {
		missing = append(missing, "name")
	}
	if s.Method != http.MethodGet && s.Method != http.MethodPost {
		missing = append(missing, "method (GET or POST)")
	}
	if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, "?#") {
		missing = append(missing, "path")
	}
	if len(s.Providers) == 0 && !s.Local {
		missing = append(missing, "providers")
	}
	if !s.Local {
		if s.Method != http.MethodPost {
			missing = append(missing, "a forwarded endpoint takes a POST body")
		}
		if s.Operation == "" {
			missing = append(missing, "gen_ai operation")
		}
		if s.Guard == ShapeNone || s.Guard >= shapeCount {
			missing = append(missing, "guard shape")
		}
		if s.Usage == UsageNone {
			missing = append(missing, "usage kind")
		}
		if s.StreamUsage && s.Usage != UsageChat {
			missing = append(missing, "stream usage needs chat usage")
		}
	}
	if s.MaxTokens != "" && maxFieldIndex(s.MaxTokens) < 0 || s.CompatMaxTokens != "" && (s.MaxTokens == "" || maxFieldIndex(s.CompatMaxTokens) < 0) {
		missing = append(missing, "a max-tokens field ParseRequest reads")
	}
	if s.AzureOperation != "" && s.AzurePath != "" {
		missing = append(missing, "one of azure operation or azure path")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrIncompleteSpec, s.Name, strings.Join(missing, ", "))
	}
	return nil
}

// Spec returns the endpoint's description (the "unknown" Spec when e is not registered).
func (e Endpoint) Spec() *Spec {
	all := specs()
	if e <= EndpointUnknown || int(e) >= len(all) {
		return &all[0]
	}
	return &all[e]
}

// Endpoints lists the registered endpoints.
func Endpoints() []Endpoint {
	n := len(specs())
	out := make([]Endpoint, 0, n-1)
	for i := 1; i < n; i++ {
		out = append(out, Endpoint(i))
	}
	return out
}

// Serves reports whether a provider type serves the endpoint.
func (e Endpoint) Serves(providerType string) bool {
	return slices.Contains(e.Spec().Providers, providerType)
}

// QueryAllowed reports whether path's query string (if any) holds only parameters the
// endpoint allows, with allowed values. A Local endpoint ignores its query.
func (e Endpoint) QueryAllowed(path string) bool {
	i := strings.IndexByte(path, '?')
	sp := e.Spec()
	if i < 0 || sp.Local {
		return true
	}
	q, err := url.ParseQuery(path[i+1:])
	if err != nil {
		return false
	}
	for name, vals := range q {
		ok, known := sp.Query[name]
		if !known {
			return false
		}
		for _, v := range vals {
			if !slices.Contains(ok, v) {
				return false
			}
		}
	}
	return true
}
