package envoycheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Limits on the YAML tree, so a hostile file (alias bombs, deep nesting) costs bounded work.
const (
	maxYAMLNodes = 1 << 20
	maxYAMLDepth = 256
)

// Type URLs with special handling.
const (
	typePrefix        = "type.googleapis.com/"
	udpaTypedStruct   = "udpa.type.v1.TypedStruct"
	xdsTypedStruct    = "xds.type.v3.TypedStruct"
	structType        = "google.protobuf.Struct"
	unresolvedTypeKey = "tollgate_check_unresolved_type"
)

var (
	errTooManyNodes = errors.New("YAML expands to too many nodes (alias bomb?)")
	errTooDeep      = errors.New("YAML is nested too deeply")
	errAliasCycle   = errors.New("YAML alias refers to itself")
)

// decode parses raw (YAML or JSON) strictly into a Bootstrap: every field must exist in
// Envoy 1.40's protos and every typed Any must resolve. An Any whose type is unknown is
// reported and replaced by an empty placeholder that remembers the type (see unresolvedType),
// so the rest of the file is still checked. It returns nil when the file cannot be decoded;
// the reason is a finding.
func decode(raw []byte, f *findings) *bootstrapv3.Bootstrap {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		f.add(High, "envoy-decode", "", "the Envoy file is not valid YAML: "+err.Error(),
			"fix the syntax; `envoy --mode validate -c FILE` shows the same problem")
		return nil
	}
	c := converter{}
	tree, err := c.value(&doc, 0)
	if err != nil {
		f.add(High, "envoy-decode", "", "the Envoy file cannot be read: "+err.Error(), "simplify the file")
		return nil
	}
	if tree == nil {
		tree = map[string]any{}
	}
	if _, ok := tree.(map[string]any); !ok {
		f.add(High, "envoy-decode", "", "the Envoy file is not a mapping (a bootstrap is an object)",
			"pass an Envoy bootstrap (envoy -c FILE)")
		return nil
	}
	tree = normalizeAnys(tree, "", f)
	js, err := json.Marshal(tree)
	if err != nil {
		f.add(High, "envoy-decode", "", "the Envoy file cannot be converted to JSON: "+err.Error(), "simplify the file")
		return nil
	}
	bs := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, bs); err != nil {
		f.add(High, "envoy-decode", "", "not a valid Envoy 1.40 bootstrap: "+scrubProtoError(err),
			"fix the field named in the message (names and values are checked against Envoy 1.40's protos)")
		return nil
	}
	return bs
}

// invalidValue matches protojson's "invalid value for T field F: VALUE" so VALUE (which may
// be an inline secret in the wrong place) is cut from the message.
var invalidValue = regexp.MustCompile(`(invalid value for [^:]*):.*`)

// scrubProtoError returns err's text without any value it quotes.
func scrubProtoError(err error) string {
	msg := invalidValue.ReplaceAllString(err.Error(), "$1")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

// converter turns a yaml.Node tree into the shapes encoding/json marshals: maps, slices,
// strings, bools, nil and json.Number. It expands aliases (as Envoy does) within a budget.
type converter struct {
	nodes    int
	visiting map[*yaml.Node]bool
}

func (c *converter) value(n *yaml.Node, depth int) (any, error) {
	c.nodes++
	if c.nodes > maxYAMLNodes {
		return nil, errTooManyNodes
	}
	if depth > maxYAMLDepth {
		return nil, errTooDeep
	}
	switch n.Kind {
	case 0: // an empty document
		return nil, nil
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, errAliasCycle
		}
		if c.visiting == nil {
			c.visiting = map[*yaml.Node]bool{}
		}
		if c.visiting[n.Alias] {
			return nil, errAliasCycle
		}
		c.visiting[n.Alias] = true
		defer delete(c.visiting, n.Alias)
		return c.value(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.value(e, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return c.mapping(n, depth)
	case yaml.ScalarNode:
		return scalar(n), nil
	}
	return nil, fmt.Errorf("unsupported YAML node kind %d", n.Kind)
}

// mapping converts a mapping node. A merge key ("<<") stays an ordinary key, as in Envoy,
// whose YAML loader does not merge: the bootstrap decoder then rejects it.
func (c *converter) mapping(n *yaml.Node, depth int) (any, error) {
	out := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, errors.New("YAML mapping keys must be scalars")
		}
		val, err := c.value(v, depth+1)
		if err != nil {
			return nil, err
		}
		out[k.Value] = val
	}
	return out, nil
}

// scalar converts one scalar by its resolved YAML tag. Numbers stay in their written form
// where JSON allows it (protojson range-checks them against the field); anything JSON cannot
// express as a number (.inf, .nan, hex) becomes a string, which protojson accepts for
// numeric fields or rejects with a clear error.
func scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
	case "!!float":
		var x float64
		if err := n.Decode(&x); err == nil && !math.IsInf(x, 0) && !math.IsNaN(x) {
			return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
		}
	case "!!timestamp":
		var t time.Time
		if err := n.Decode(&t); err == nil {
			return n.Value
		}
	}
	return n.Value
}

// normalizeAnys walks the JSON tree and rewrites typed Anys so protojson can decode the whole
// file: a TypedStruct becomes the message it describes, and an Any of a type this build does
// not know is reported and replaced by a Struct that records the type URL.
func normalizeAnys(v any, path string, f *findings) any {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["@type"].(string); ok {
			x = normalizeAny(x, t, path, f)
		}
		for k, e := range x {
			if k == "@type" {
				continue
			}
			x[k] = normalizeAnys(e, join(path, k), f)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeAnys(e, fmt.Sprintf("%s[%d]", path, i), f)
		}
		return x
	}
	return v
}

// normalizeAny handles one object that carries "@type".
func normalizeAny(x map[string]any, url, path string, f *findings) map[string]any {
	name := typeName(url)
	if name == udpaTypedStruct || name == xdsTypedStruct {
		inner, _ := x["type_url"].(string)
		fields, ok := x["value"].(map[string]any)
		if inner == "" || (!ok && x["value"] != nil) {
			return x // malformed: let protojson report it
		}
		out := map[string]any{"@type": inner}
		for k, e := range fields {
			if k != "@type" {
				out[k] = e
			}
		}
		url, name, x = inner, typeName(inner), out
	}
	if _, err := protoregistry.GlobalTypes.FindMessageByURL(url); err == nil {
		return x
	}
	f.add(Medium, "envoy-unknown-type", path,
		fmt.Sprintf("typed config of type %q is not an Envoy 1.40 type this check knows, so it was not checked", name),
		"use a type from Envoy 1.40's API (a contrib or custom extension cannot be checked; review it by hand)")
	return map[string]any{
		"@type": typePrefix + structType,
		"value": map[string]any{unresolvedTypeKey: name},
	}
}

// typeName returns the message name of a type URL (the part after the last slash).
func typeName(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		return url[i+1:]
	}
	return url
}

// join appends a field name to a path.
func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// nameField is the conventional "name" field of Envoy messages (listeners, clusters,
// filters, routes, virtual hosts), used to label list elements in paths.
const nameField = protoreflect.Name("name")
