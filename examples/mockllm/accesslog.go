package mockllm

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Access-log field keys. The line is allow-listed: no header other than x-request-id, no query
// string (some clients put keys there), no body.
const (
	logMethod     = "method"
	logPath       = "path"
	logStatus     = "status"
	logBytes      = "bytes"
	logDurationMS = "duration_ms"
	logRequestID  = "request_id"
)

// accessWriter notes the status and body size for the access log. Unwrap lets
// http.ResponseController reach the real writer's Flush.
type accessWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (a *accessWriter) WriteHeader(code int) {
	if !a.wroteHeader {
		a.status = code
		a.wroteHeader = true
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *accessWriter) Write(b []byte) (int, error) {
	a.wroteHeader = true
	n, err := a.ResponseWriter.Write(b)
	a.bytes += int64(n)
	return n, err
}

func (a *accessWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (s *Server) logAccess(r *http.Request, a *accessWriter, d time.Duration) {
	status := a.status
	if !a.wroteHeader {
		status = 0 // the client left before an answer, for example during Latency
	}
	s.opts.Logger.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelInfo, "mock request",
		slog.String(logMethod, r.Method),
		slog.String(logPath, truncate(r.URL.Path, 200)),
		slog.Int(logStatus, status),
		slog.Int64(logBytes, a.bytes),
		slog.Float64(logDurationMS, float64(d.Microseconds())/1000),
		slog.String(logRequestID, truncate(r.Header.Get("X-Request-Id"), 200)),
	)
}
