package llm

import (
	"strings"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// clientToolTypes are the tool types the client runs: a tool call ends the provider's turn,
// so one request is one model call. Anthropic's client tools carry a dated type
// (bash_20250124), matched by prefix. Every other type (web_search, file_search,
// code_interpreter, image_generation, mcp, web_fetch_*, code_execution_*, and any type not
// known yet) runs on the provider.
var (
	clientToolTypes    = [...]string{"function", "custom", "computer_use_preview", "computer", "local_shell", "shell", "apply_patch"}
	clientToolPrefixes = [...]string{"bash_", "text_editor_", "computer_", "memory_"}
)

// hostedTool returns the type of the first tool in tools (the value of a top-level "tools"
// member, already scanned as valid JSON) that runs on the provider, "" when there is none,
// and how many tools it lists and how many of them are Anthropic-defined client tools
// (bash_*, text_editor_*, computer_*, memory_*), whose definitions Anthropic expands into
// the prompt. A tool without a type is a client tool (Anthropic's custom tools).
func hostedTool(tools []byte) (hosted string, n, defined int) {
	var l jsonlex.Lexer
	l.Reset(tools, ErrInvalidJSON, ErrInvalidJSON)
	if len(tools) == 0 || tools[0] != '[' {
		return "", 0, 0
	}
	a := l.Array()
	for a.Next() {
		n++
		if l.Pos >= len(l.B) || l.B[l.Pos] != '{' {
			if !l.Value(1) {
				return hosted, n, defined
			}
			continue
		}
		o := l.Object()
		for o.Next() {
			if string(o.Key()) != "type" || l.Pos >= len(l.B) || l.B[l.Pos] != '"' {
				if !l.Value(2) {
					return hosted, n, defined
				}
				continue
			}
			v, ok := l.StrValue()
			if !ok {
				return hosted, n, defined
			}
			switch typ := string(v); {
			case !isClientTool(typ):
				if hosted == "" {
					hosted = typ
					if typ == "" {
						hosted = `""`
					}
				}
			case isDefinedTool(typ):
				defined++
			}
		}
		if !o.Done() {
			return hosted, n, defined
		}
	}
	return hosted, n, defined
}

// isDefinedTool reports whether a client tool type is one Anthropic defines (and expands).
func isDefinedTool(typ string) bool {
	for _, p := range clientToolPrefixes {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// isClientTool reports whether a tool type is one the client runs.
func isClientTool(typ string) bool {
	for _, t := range clientToolTypes {
		if typ == t {
			return true
		}
	}
	return isDefinedTool(typ)
}
