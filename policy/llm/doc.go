// Package llm holds the provider dialects Tollgate speaks to clients: which
// endpoints a client may call, how a request body is read (one strict pass that
// extracts the model, the stream flag, the output cap and whether usage was
// asked for), how the body is rewritten byte-preservingly (model,
// stream_options.include_usage, output cap), how errors and model lists are
// shaped so that OpenAI and Anthropic SDKs parse them as if they came from the
// provider, and how token usage is read from responses: JSON bodies and
// server-sent event streams, incrementally and in O(bytes).
//
// The package has no Envoy or gRPC imports; the ext_proc loop maps its results
// to protos. Nothing here logs, and no error text carries request content:
// errors name a sentinel, a field Tollgate defines, or a byte offset.
package llm
