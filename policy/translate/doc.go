// Package translate serves one API over another provider's: today OpenAI Chat Completions
// (POST /v1/chat/completions) over Anthropic Messages (POST /v1/messages), so a client using
// the OpenAI SDK can call a model whose provider is Anthropic. The pairs are declared once,
// in the table of table.go (Find); policy.Route and policy.Exchange apply them, around the
// same guardrails, budget and audit as any request: the client's body is scanned before it
// is translated, the response after, so what the client reads is what is guarded.
//
// # Request (ChatToMessages)
//
// Translated: messages (system and developer messages before the conversation become
// "system"; user content as a string or text and image_url parts, an image by http(s) URL
// or base64 data URL; assistant text and tool_calls, the latter as tool_use blocks whose
// input is the parsed arguments; tool messages as tool_result blocks, consecutive ones in one
// user turn), tools (function tools: name, description, parameters as input_schema),
// tool_choice (none, auto, required as any, a named function as tool),
// parallel_tool_calls false (disable_parallel_tool_use), max_tokens or
// max_completion_tokens (max_tokens; absent: RequestOptions.MaxTokens), temperature (0 to
// 1), top_p, stop (stop_sequences), stream, user or safety_identifier (metadata.user_id),
// stream_options.include_usage (remembered in Request.IncludeUsage, not sent).
//
// Accepted only with their default value (null, or the value named): n 1, logprobs false,
// top_logprobs 0, presence_penalty and frequency_penalty 0, logit_bias {}, store false,
// metadata {}, service_tier "auto", response_format {"type":"text"}, modalities ["text"].
//
// Refused with ErrUntranslatable, naming the field (FieldError): every other value of
// those; seed, audio, prediction, functions, function_call, reasoning_effort, verbosity,
// web_search_options, prompt_cache_key; message names, refusals and audio; a system
// message after the first user or assistant message; function messages; image detail other
// than auto, data URLs other than base64 image/jpeg, png, gif or webp, other URL schemes,
// content parts other than text and image_url; strict tools and tools other than function;
// tool arguments that are not a JSON object; temperature above 1; both max_tokens and
// max_completion_tokens; any unknown field. A field is never dropped silently.
//
// Text travels as the JSON string tokens the client sent, byte for byte.
//
// # Response (NewChatResponse)
//
// A JSON message becomes a chat.completion (MessageToChat), an event stream becomes
// chat.completion.chunk events as each Anthropic event completes (chatStream), any status
// outside 2xx an OpenAI error body with the same status (ErrorBody). finish_reason: end_turn
// and stop_sequence are stop, max_tokens length, tool_use tool_calls, refusal
// content_filter; model_context_window_exceeded and pause_turn are length (the answer was
// cut and is incomplete). Usage: prompt_tokens is input_tokens plus cache reads and cache
// writes (OpenAI counts cached prompt tokens in the prompt), cached_tokens the cache reads,
// completion_tokens output_tokens. The message id and model are Anthropic's; created is
// when the response began.
//
// Budget settlement does not read translated bytes: it prices the provider's own usage,
// read from the upstream response by llm.UsageParser.
package translate
