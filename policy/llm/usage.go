package llm

// Usage is token usage normalized across providers. The four counts are disjoint, so their
// sum is the total: OpenAI's prompt_tokens includes cached tokens, which are moved to
// CachedInputTokens here; Anthropic's input_tokens already excludes cache reads and writes.
type Usage struct {
	InputTokens       int64 // uncached input tokens
	OutputTokens      int64 // output tokens (reasoning tokens included)
	CachedInputTokens int64 // input tokens read from the provider's prompt cache
	CacheWriteTokens  int64 // input tokens written to the prompt cache (Anthropic)
}

// Total is every token the request consumed.
func (u Usage) Total() int64 {
	return u.InputTokens + u.OutputTokens + u.CachedInputTokens + u.CacheWriteTokens
}
