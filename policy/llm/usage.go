package llm

// Usage is token usage normalized across providers. The four counts are disjoint, so their
// sum is the total: OpenAI's prompt_tokens includes cached tokens, which are moved to
// CachedInputTokens here; Anthropic's input_tokens already excludes cache reads and writes.
type Usage struct {
	InputTokens       int64 // uncached input tokens
	OutputTokens      int64 // output tokens (reasoning tokens included)
	CachedInputTokens int64 // input tokens read from the provider's prompt cache
	CacheWriteTokens  int64 // input tokens written to the prompt cache (Anthropic)
	// CacheWrite1hTokens is the part of CacheWriteTokens written with a one-hour lifetime
	// (Anthropic's cache_creation.ephemeral_1h_input_tokens), priced higher than the
	// five-minute default. Not counted again in Total.
	CacheWrite1hTokens int64
}

// Total is every token the request consumed.
func (u Usage) Total() int64 {
	return u.InputTokens + u.OutputTokens + u.CachedInputTokens + u.CacheWriteTokens
}
