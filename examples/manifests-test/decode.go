// Package manifests decodes the Kubernetes, Istio and Envoy Gateway manifests of the examples
// strictly into their API types. It is a module of its own, so that Tollgate's module does not
// depend on Kubernetes, Istio or Envoy Gateway.
package manifests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	istionetv1alpha3 "istio.io/api/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Sentinel errors of the decoder.
var (
	// ErrUnknownKind is a manifest whose apiVersion and kind this package does not know.
	ErrUnknownKind = errors.New("unknown apiVersion/kind")
	// ErrUnknownField is a field the API type does not have (or, in an Istio spec, a field
	// spelt otherwise than the CRD schema spells it).
	ErrUnknownField = errors.New("unknown field")
)

// Doc is one decoded manifest.
type Doc struct {
	// File and Index say where it came from (Index counts the documents of File from 0).
	File  string
	Index int
	// Kind is "apiVersion/kind", e.g. "apps/v1/Deployment".
	Kind string
	// Object is a pointer to the typed object: a Kubernetes or Envoy Gateway API type, or an
	// *IstioObject.
	Object any
}

// IstioObject is an Istio resource: the Kubernetes envelope and the spec as Istio's proto.
type IstioObject struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Spec proto.Message
}

// kinds maps "apiVersion/kind" to a constructor of the typed object. Istio kinds construct
// their spec message.
var kinds = map[string]func() any{
	"v1/Namespace":                       func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                          func() any { return &corev1.Secret{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                  func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },

	"gateway.networking.k8s.io/v1/Gateway":      func() any { return &gwapiv1.Gateway{} },
	"gateway.networking.k8s.io/v1/GatewayClass": func() any { return &gwapiv1.GatewayClass{} },
	"gateway.networking.k8s.io/v1/HTTPRoute":    func() any { return &gwapiv1.HTTPRoute{} },

	"gateway.envoyproxy.io/v1alpha1/EnvoyGateway":         func() any { return &egv1a1.EnvoyGateway{} },
	"gateway.envoyproxy.io/v1alpha1/EnvoyProxy":           func() any { return &egv1a1.EnvoyProxy{} },
	"gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy": func() any { return &egv1a1.EnvoyExtensionPolicy{} },
	"gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy":  func() any { return &egv1a1.ClientTrafficPolicy{} },
	"gateway.envoyproxy.io/v1alpha1/Backend":              func() any { return &egv1a1.Backend{} },
	"gateway.envoyproxy.io/v1alpha1/HTTPRouteFilter":      func() any { return &egv1a1.HTTPRouteFilter{} },

	"networking.istio.io/v1alpha3/EnvoyFilter":  func() any { return &istionetv1alpha3.EnvoyFilter{} },
	"networking.istio.io/v1/Gateway":            func() any { return &istionetv1alpha3.Gateway{} },
	"networking.istio.io/v1/VirtualService":     func() any { return &istionetv1alpha3.VirtualService{} },
	"networking.istio.io/v1/ServiceEntry":       func() any { return &istionetv1alpha3.ServiceEntry{} },
	"networking.istio.io/v1/DestinationRule":    func() any { return &istionetv1alpha3.DestinationRule{} },
	"networking.istio.io/v1alpha3/Gateway":      func() any { return &istionetv1alpha3.Gateway{} },
	"networking.istio.io/v1alpha3/ServiceEntry": func() any { return &istionetv1alpha3.ServiceEntry{} },
}

// DecodeFile decodes every document of a YAML file (documents separated by "---" lines).
func DecodeFile(path string) ([]Doc, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	docs, err := splitDocs(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Doc
	for i, doc := range docs {
		d, err := Decode(doc)
		if err != nil {
			return nil, fmt.Errorf("%s, document %d: %w", path, i, err)
		}
		d.File, d.Index = path, i
		out = append(out, d)
	}
	return out, nil
}

// splitDocs splits a YAML stream into its documents that hold more than comments.
func splitDocs(raw []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if hasContent(doc) {
			docs = append(docs, doc)
		}
	}
}

// hasContent reports whether a document has anything but comments, blank lines and "---".
func hasContent(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t != "" && t != "---" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// Decode decodes one YAML document into its API type. Unknown fields, duplicate fields and
// unknown kinds are errors.
func Decode(doc []byte) (Doc, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil { // only to pick the type
		return Doc{}, err
	}
	kind := tm.APIVersion + "/" + tm.Kind
	mk, ok := kinds[kind]
	if !ok {
		return Doc{}, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	obj := mk()
	if spec, ok := obj.(proto.Message); ok {
		istio, err := decodeIstio(doc, spec)
		if err != nil {
			return Doc{}, fmt.Errorf("%s: %w", kind, err)
		}
		return Doc{Kind: kind, Object: istio}, nil
	}
	if err := unmarshalStrict(doc, obj); err != nil {
		return Doc{}, fmt.Errorf("%s: %w", kind, err)
	}
	return Doc{Kind: kind, Object: obj}, nil
}

// unmarshalStrict decodes YAML into obj as the Kubernetes API server does with strict field
// validation: field names are case-sensitive, and unknown or duplicate fields are errors.
// (encoding/json, and so sigs.k8s.io/yaml's UnmarshalStrict, would take "failopen" for
// "failOpen".)
func unmarshalStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnknownField, err)
	}
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return fmt.Errorf("%w: %v", ErrUnknownField, errors.Join(strict...))
	}
	return nil
}

// istioEnvelope is an Istio resource with its spec kept raw.
type istioEnvelope struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              json.RawMessage `json:"spec"`
}

// decodeIstio decodes an Istio resource. Istio's generated UnmarshalJSON accepts unknown
// fields (jsonpb with AllowUnknownFields), so the spec is decoded with protojson, which
// refuses them, after checking that every key is spelt as the CRD schema spells it (protojson
// would also take the proto names, which the API server prunes or refuses).
func decodeIstio(doc []byte, spec proto.Message) (*IstioObject, error) {
	var env istioEnvelope
	if err := unmarshalStrict(doc, &env); err != nil {
		return nil, err
	}
	if len(env.Spec) == 0 {
		return nil, errors.New("no spec")
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(env.Spec))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the spec")
	}
	if err := checkJSONNames("spec", tree, spec.ProtoReflect().Descriptor()); err != nil {
		return nil, err
	}
	if err := protojson.Unmarshal(env.Spec, spec); err != nil {
		return nil, fmt.Errorf("%w: spec: %v", ErrUnknownField, err)
	}
	return &IstioObject{TypeMeta: env.TypeMeta, ObjectMeta: env.ObjectMeta, Spec: spec}, nil
}

// freeForm are message types whose JSON is not checked against a descriptor: their content
// is free (an EnvoyFilter patch value is Envoy config, checked in Tollgate's own module).
var freeForm = map[protoreflect.FullName]bool{
	"google.protobuf.Struct":    true,
	"google.protobuf.Value":     true,
	"google.protobuf.ListValue": true,
	"google.protobuf.Any":       true,
}

// checkJSONNames walks a JSON value alongside a message descriptor and reports every key
// that is not the JSON name of a field.
func checkJSONNames(path string, v any, md protoreflect.MessageDescriptor) error {
	if freeForm[md.FullName()] {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil // a well-known type written as a scalar (Duration, wrappers): protojson checks it
	}
	fields := md.Fields()
	var errs []error
	for key, val := range obj {
		fd := fieldByJSONName(fields, key)
		if fd == nil {
			errs = append(errs, fmt.Errorf("%w: %s.%s", ErrUnknownField, path, key))
			continue
		}
		p := path + "." + key
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				if m, ok := val.(map[string]any); ok {
					for k, e := range m {
						errs = append(errs, checkJSONNames(p+"["+k+"]", e, fd.MapValue().Message()))
					}
				}
			}
		case fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind:
		case fd.IsList():
			if l, ok := val.([]any); ok {
				for i, e := range l {
					errs = append(errs, checkJSONNames(fmt.Sprintf("%s[%d]", p, i), e, fd.Message()))
				}
			}
		default:
			errs = append(errs, checkJSONNames(p, val, fd.Message()))
		}
	}
	return errors.Join(errs...)
}

func fieldByJSONName(fields protoreflect.FieldDescriptors, name string) protoreflect.FieldDescriptor {
	for i := 0; i < fields.Len(); i++ {
		if fields.Get(i).JSONName() == name {
			return fields.Get(i)
		}
	}
	return nil
}
