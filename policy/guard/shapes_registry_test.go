package guard

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// TestEveryEndpointHasItsSchemas: each registered endpoint that is forwarded has a request
// and a response schema for its shape, and a stream redactor for every shape that streams,
// so a descriptor cannot name a shape the guardrails would skip.
func TestEveryEndpointHasItsSchemas(t *testing.T) {
	e := allEngine(t)
	for _, ep := range llm.Endpoints() {
		sp := ep.Spec()
		if sp.Local {
			require.Nil(t, requestSchema(ep), sp.Name)
			continue
		}
		require.NotNil(t, requestSchema(ep), sp.Name)
		require.NotNil(t, responseSchema(ep), sp.Name)
		_, err := e.NewSSERedactor("redact", ep)
		if sp.Guard == llm.ShapeEmbeddings {
			require.ErrorIs(t, err, ErrUnsupportedEndpoint, "embeddings never stream")
		} else {
			require.NoError(t, err, sp.Name)
		}
	}
	require.Nil(t, requestSchema(llm.EndpointUnknown))
	require.Nil(t, responseSchema(llm.EndpointUnknown))
}
