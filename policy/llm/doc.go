// Package llm holds the provider dialects Tollgate speaks to clients: which
// endpoints a client may call, how a request body is read (one strict pass that
// extracts the model and the stream flag), how the model is rewritten, and how
// errors and model lists are shaped so that OpenAI and Anthropic SDKs parse
// them as if they came from the provider.
//
// The package has no Envoy or gRPC imports; the ext_proc loop maps its results
// to protos. Nothing here logs, and no error text carries request content:
// errors name a sentinel, a field Tollgate defines, or a byte offset.
package llm
