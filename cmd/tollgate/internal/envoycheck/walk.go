package envoycheck

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// unpack returns the message inside a, or nil when a is empty or holds a type this build
// does not know (decode already reported those and replaced them by a Struct placeholder;
// unresolvedType tells which type it was).
func unpack(a *anypb.Any) proto.Message {
	if a == nil || a.GetTypeUrl() == "" {
		return nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil
	}
	return m
}

// unresolvedType returns the type name decode recorded for an Any of unknown type, or "".
func unresolvedType(m proto.Message) string {
	s, ok := m.(*structpb.Struct)
	if !ok {
		return ""
	}
	return s.GetFields()[unresolvedTypeKey].GetStringValue()
}

// anyTypeName returns the message name of a's type, including types decode could not
// resolve.
func anyTypeName(a *anypb.Any) string {
	if a == nil {
		return ""
	}
	if t := unresolvedType(unpack(a)); t != "" {
		return t
	}
	return typeName(a.GetTypeUrl())
}

// visitor is called for every message in a tree, with its path; the contents of an Any are
// visited as their concrete type at the Any's own path. Returning false skips the message's
// children.
type visitor func(path string, m proto.Message) bool

// walk visits m and everything below it, in field order.
func walk(path string, m proto.Message, visit visitor) {
	if a, ok := m.(*anypb.Any); ok {
		if inner := unpack(a); inner != nil {
			walk(path, inner, visit)
		}
		return
	}
	if m == nil || !visit(path, m) {
		return
	}
	children(path, m, func(p string, c proto.Message) { walk(p, c, visit) })
}

// walkAnys calls fn for every Any below m (m itself included) without looking inside them.
func walkAnys(path string, m proto.Message, fn func(path string, a *anypb.Any)) {
	if a, ok := m.(*anypb.Any); ok {
		fn(path, a)
		return
	}
	if m != nil {
		children(path, m, func(p string, c proto.Message) { walkAnys(p, c, fn) })
	}
}

// children calls fn for each set message-valued field, list element and map value of m,
// with its path (field names as written in Envoy YAML).
func children(path string, m proto.Message, fn func(path string, child proto.Message)) {
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil && !(fd.IsMap() && fd.MapValue().Message() != nil) {
			return true
		}
		p := join(path, string(fd.Name()))
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				e := l.Get(i).Message()
				fn(elem(p, i, e), e.Interface())
			}
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				fn(fmt.Sprintf("%s[%s]", p, k.String()), mv.Message().Interface())
				return true
			})
		default:
			fn(p, v.Message().Interface())
		}
		return true
	})
}

// validate runs the protoc-gen-validate rules Envoy applies at load (ValidateAll) on m and
// on the contents of every typed Any below it, which ValidateAll does not open.
func validate(path string, m proto.Message, f *findings) {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			errs := []error{err}
			if me, ok := err.(interface{ AllErrors() []error }); ok {
				errs = me.AllErrors()
			}
			for _, e := range errs {
				f.add(High, "envoy-invalid", path, "Envoy rejects this config: "+e.Error(),
					"fix the field named in the message (Envoy 1.40's validation rules)")
			}
		}
	}
	walkAnys(path, m, func(p string, a *anypb.Any) {
		if inner := unpack(a); inner != nil {
			validate(p, inner, f)
		}
	})
}

// elem labels the i-th element of a list at path: by its name when it has one (listeners,
// clusters, filters, routes), else by index.
func elem(path string, i int, m protoreflect.Message) string {
	if fd := m.Descriptor().Fields().ByName(nameField); fd != nil && fd.Kind() == protoreflect.StringKind {
		if n := m.Get(fd).String(); n != "" {
			return fmt.Sprintf("%s[%s]", path, n)
		}
	}
	return fmt.Sprintf("%s[%d]", path, i)
}

// label is elem for code that walks typed lists by hand.
func label(path string, i int, m proto.Message) string { return elem(path, i, m.ProtoReflect()) }
