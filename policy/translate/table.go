package translate

import "github.com/tollgate-ai/tollgate/policy/llm"

// Translation is one client endpoint served by a provider type through another endpoint:
// the request is translated before it is forwarded, the response before the client reads
// it. The table below is the only place a pair is declared.
type Translation struct {
	// Client is the endpoint the client calls; Upstream the one the provider receives.
	Client, Upstream llm.Endpoint
	// Provider is the provider type (as in llm.Spec.Providers).
	Provider string
	// Request translates the client's body.
	Request func(body []byte, o RequestOptions) (Request, error)
	// Response starts the translation of one response, given its status and whether it is
	// an event stream.
	Response func(status int, sse bool, o ResponseOptions) Response
}

// translations are the pairs Tollgate translates.
var translations = []Translation{
	{Client: llm.ChatCompletions, Upstream: llm.Messages, Provider: "anthropic", Request: ChatToMessages, Response: NewChatResponse},
}

// Find returns the translation that serves client on a provider of type providerType, nil
// when there is none (the provider serves the endpoint itself, or not at all).
func Find(client llm.Endpoint, providerType string) *Translation {
	for i := range translations {
		if t := &translations[i]; t.Client == client && t.Provider == providerType {
			return t
		}
	}
	return nil
}
