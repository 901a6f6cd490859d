// Package llm holds the provider dialects Tollgate speaks to clients: which
// endpoints a client may call, how a request body is read (one strict pass that
// extracts the model, the stream flag, the output cap and whether usage was
// asked for), how the body is rewritten byte-preservingly (model,
// stream_options.include_usage, output cap), how errors and model lists are
// shaped so that OpenAI and Anthropic SDKs parse them as if they came from the
// provider, and how token usage is read from responses: JSON bodies and
// server-sent event streams, incrementally and in O(bytes).
//
// Each endpoint family is one descriptor (a Spec), declared in its own file
// (dialect_chat.go, dialect_messages.go, ...): path and method, the client
// dialect (error shape), the output cap field, whether usage must be asked for
// on streams, the usage parser, the body shape the guardrails read (policy/guard
// holds one table per shape, for JSON and SSE alike), the query parameters
// allowed, the provider types that serve it and its Azure OpenAI path. Nothing
// else in Tollgate switches on an endpoint: adding one is a new dialect file and
// a line in testdata/endpoints.golden, and Register refuses a descriptor that
// leaves a part out (TestRegisterRefusesIncompleteSpec).
//
// The package has no Envoy or gRPC imports; the ext_proc loop maps its results
// to protos. Nothing here logs, and no error text carries request content:
// errors name a sentinel, a field Tollgate defines, or a byte offset.
package llm
