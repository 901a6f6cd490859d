package envoycheck

import (
	"fmt"
	"regexp"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	grpcalsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// operator matches one substitution command: %NAME%, %NAME(ARGS)% or %NAME(ARGS):LEN%.
var operator = regexp.MustCompile(`%([A-Z][A-Z0-9_]*)(?:\(([^)]*)\))?(?::[0-9]+)?%`)

// Access loggers whose output is code, not a format string.
var opaqueLoggers = map[string]bool{"wasm": true, "dynamic_modules": true, "lua": true}

// checkAccessLogs reports access logs anywhere in the bootstrap (connection managers,
// listeners, routers, admin) that would write credentials, bodies or secrets.
func (c *checker) checkAccessLogs() {
	walk("", c.bs, func(path string, m proto.Message) bool {
		al, ok := m.(*accesslogv3.AccessLog)
		if !ok {
			return true
		}
		c.checkAccessLog(path, al)
		return false
	})
}

// checkAccessLog checks one access log's sink config (not its filter, which is not logged).
func (c *checker) checkAccessLog(path string, al *accesslogv3.AccessLog) {
	p := join(path, "typed_config")
	cfg := unpack(al.GetTypedConfig())
	kind := anyTypeName(al.GetTypedConfig())
	if rest, ok := strings.CutPrefix(kind, "envoy.extensions.access_loggers."); ok {
		kind, _, _ = strings.Cut(rest, ".")
	}
	if opaqueLoggers[kind] || cfg == nil {
		c.f.add(Medium, "access-log-unchecked", p,
			fmt.Sprintf("access log %q is written by code (or of an unknown type), so the check cannot tell what it records", al.GetName()),
			"review it by hand: it must never record authorization, x-api-key, api-key or cookie headers, bodies or query strings")
		return
	}
	if g, ok := cfg.(*grpcalsv3.HttpGrpcAccessLogConfig); ok {
		for _, h := range g.GetAdditionalRequestHeadersToLog() {
			if isSensitive(sensitiveRequestHeaders, h) {
				c.f.add(High, "access-log-credentials", join(p, "additional_request_headers_to_log"),
					fmt.Sprintf("the gRPC access log records the %s request header, which carries a virtual or provider key", h),
					"remove it from additional_request_headers_to_log")
			}
		}
		for _, h := range g.GetAdditionalResponseHeadersToLog() {
			if isSensitive(sensitiveResponseHeaders, h) {
				c.f.add(High, "access-log-credentials", join(p, "additional_response_headers_to_log"),
					fmt.Sprintf("the gRPC access log records the %s response header", h),
					"remove it from additional_response_headers_to_log")
			}
		}
	}
	if usesDefaultFormat(cfg) {
		c.f.add(Low, "access-log-query", p,
			"the access log uses Envoy's default format, which records the path with its query string (a key smuggled in ?key=... would be logged)",
			"set an explicit log_format that uses %REQ_WITHOUT_QUERY(:PATH)% (formatter envoy.formatter.req_without_query), as envoy/envoy.yaml does")
	}
	seen := map[string]bool{}
	walk(p, cfg, func(fp string, m proto.Message) bool {
		for _, s := range stringsOf(m) {
			for _, op := range operator.FindAllStringSubmatch(s, -1) {
				if id, sev, problem, fix := judgeOperator(op[1], op[2]); id != "" && !seen[id+op[0]] {
					seen[id+op[0]] = true
					c.f.add(sev, id, fp, fmt.Sprintf("the access log format uses %s: %s", op[0], problem), fix)
				}
			}
		}
		return true
	})
}

// usesDefaultFormat reports a file or stdio logger without a format of its own.
func usesDefaultFormat(cfg proto.Message) bool {
	switch l := cfg.(type) {
	case *filev3.FileAccessLog:
		return l.GetAccessLogFormat() == nil
	case *streamv3.StdoutAccessLog:
		return l.GetLogFormat() == nil
	case *streamv3.StderrAccessLog:
		return l.GetLogFormat() == nil
	}
	return false
}

// judgeOperator returns a finding for a substitution operator that writes something a log
// must never hold, or an empty id.
func judgeOperator(name, args string) (id string, sev Severity, problem, fix string) {
	const credFix = "remove it; log the key id Tollgate writes to dynamic metadata (%DYNAMIC_METADATA(tollgate)%) instead"
	switch name {
	case "REQ", "REQ_WITHOUT_QUERY", "REQUEST_HEADER", "TRAILER":
		for _, h := range strings.Split(args, "?") {
			if isSensitive(sensitiveRequestHeaders, h) {
				return "access-log-credentials", High, "it records a request header that carries a virtual or provider key", credFix
			}
		}
		if name == "REQ" && strings.Contains(strings.ToLower(args), ":path") {
			return "access-log-query", Low, "the path with its query string is logged (a key smuggled in ?key=... would be too)",
				"use %REQ_WITHOUT_QUERY(:PATH)% (formatter envoy.formatter.req_without_query)"
		}
	case "RESP", "RESPONSE_HEADER", "RESPONSE_TRAILER":
		for _, h := range strings.Split(args, "?") {
			if isSensitive(sensitiveResponseHeaders, h) {
				return "access-log-credentials", High, "it records a response header that carries a session credential", "remove it"
			}
		}
	case "CEL":
		a := strings.ToLower(args)
		for _, h := range sensitiveRequestHeaders {
			if strings.Contains(a, h) {
				return "access-log-credentials", High, "the expression reads a header that carries a key", credFix
			}
		}
		if strings.Contains(a, "headers") && !strings.Contains(a, "[") {
			return "access-log-credentials", High, "the expression records a whole header map, credentials included", credFix
		}
		if strings.Contains(a, "body") {
			return "access-log-body", High, "the expression reads a body: prompts and completions would be logged", "remove it"
		}
	case "SECRET":
		return "access-log-secret", High, "it writes a secret's value into the log", "remove it"
	case "FILE_CONTENT":
		return "access-log-secret", Medium, "it writes a file's content into the log; make sure the file holds no secret", "remove it, or log something that is not read from a file"
	case "DYNAMIC_METADATA", "METADATA":
		// Filters that copy body fields into metadata, under their default namespaces.
		for _, ns := range []string{"envoy.filters.http.json_to_metadata", "envoy.filters.http.sse_to_metadata"} {
			if strings.Contains(args, ns) {
				return "access-log-body", High, "it records metadata that " + ns + " extracts from bodies: prompt or completion fields would be logged", "remove it"
			}
		}
	case "LOCAL_REPLY_BODY":
	default:
		if strings.Contains(name, "BODY") {
			return "access-log-body", High, "it records a request or response body: prompts and completions would be logged", "remove it"
		}
	}
	return "", 0, "", ""
}

// stringsOf returns the string values of m's own fields (singular, repeated and map values).
func stringsOf(m proto.Message) []string {
	var out []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.StringKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					out = append(out, mv.String())
					return true
				})
			}
		case fd.Kind() != protoreflect.StringKind:
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				out = append(out, v.List().Get(i).String())
			}
		default:
			out = append(out, v.String())
		}
		return true
	})
	return out
}
