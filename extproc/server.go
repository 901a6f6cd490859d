// Package extproc speaks Envoy's external-processing protocol: it runs the Process loop,
// keeps per-stream state and maps policy decisions onto ProcessingResponses. It holds no
// business rules and no storage; every decision comes from package policy.
package extproc

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/tollgate-ai/tollgate/policy"
)

// MaxMessageBytes bounds one gRPC message in either direction. Envoy sends a BUFFERED request
// body as a single message, so it must exceed envoy.yaml's request_body_buffer_limit (16 MiB)
// plus the headers; it matches the filter's max_receive_message_length (32 MiB).
const MaxMessageBytes = 32 << 20

// Source returns the config snapshot in force. A stream loads it once, at its start.
type Source interface {
	Snapshot() *policy.Snapshot
}

// Server implements the ext_proc service.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	src     Source
	log     *zap.Logger
	now     func() time.Time
	metrics *Metrics
	audit   *AuditConfig
	tracer  trace.Tracer // nil: tracing off

	mu      sync.Mutex
	streams int
	idle    chan struct{} // closed when streams drops to zero while draining
}

// Option configures a Server.
type Option func(*Server)

// WithClock injects the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New returns a Server deciding with the snapshots of src.
func New(src Source, log *zap.Logger, opts ...Option) *Server {
	s := &Server{src: src, log: log.Named("extproc"), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(prometheus.NewRegistry())
	}
	return s
}

// GRPCServerOptions are the settings Envoy's ext_proc client needs: messages as large as a
// buffered body, and keepalive enforcement that accepts envoy.yaml's 30 s HTTP/2 pings (the
// grpc-go default of 5 min would answer them with GOAWAY too_many_pings and kill every
// stream on the connection). Streams are served by GOMAXPROCS worker goroutines whose stacks
// stay grown (a stream arriving while all are busy still gets a goroutine of its own): one
// new goroutine per stream had to grow its stack to the handler's depth every time, and
// runtime.morestack/copystack were 4.6% of Tollgate's CPU under make bench.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
	}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { extprocv3.RegisterExternalProcessorServer(g, s) }

// Active reports the number of open streams.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

// Idle returns a channel closed once no stream is open.
func (s *Server) Idle() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	if s.streams == 0 {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
	return s.idle
}

func (s *Server) enter() {
	s.mu.Lock()
	if s.streams == 0 {
		s.idle = nil // the next Idle call waits for this stream
	}
	s.streams++
	s.mu.Unlock()
}

func (s *Server) leave() {
	s.mu.Lock()
	s.streams--
	if s.streams == 0 && s.idle != nil {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
	s.mu.Unlock()
}

// Process handles one HTTP request's ext_proc stream: one reply per message, in order.
func (s *Server) Process(srv extprocv3.ExternalProcessor_ProcessServer) (err error) {
	s.enter()
	defer s.leave()
	snap := s.src.Snapshot()
	if snap == nil {
		// No config has ever loaded: refuse, Envoy fails closed (status_on_error).
		return status.Error(codes.Unavailable, "no configuration loaded")
	}
	switch stage, err := stageOf(srv); {
	case err != nil:
		return err
	case stage == stageUpstream:
		return s.processUpstream(srv, snap)
	}
	x := snap.NewExchange(srv.Context(), policy.ExchangeOptions{
		Now: s.now, CaptureContent: s.captureContent(), AuditUnavailable: s.auditUnavailable,
	})
	st := &stream{x: x, log: s.log}
	if s.tracer != nil {
		st.span = streamSpan{tracer: s.tracer, ctx: srv.Context(), began: s.now()}
	}
	defer func() {
		sum := st.finish()
		s.metrics.observe(sum)
		st.span.end(sum, err, s.now)
		s.emitAudit(st)
	}()

	for {
		req, err := srv.Recv()
		if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
			return nil
		}
		if err != nil {
			st.log.Debug("receive failed", zap.Error(err))
			return err
		}
		x.SetClient(clientAddr(req))
		st.observeAttempts(req)
		if pc := req.GetProtocolConfig(); pc != nil {
			if err := checkProtocol(pc); err != nil {
				x.Fail()
				s.log.Error("envoy ext_proc filter misconfigured", zap.Error(err))
				return status.Error(codes.FailedPrecondition, err.Error())
			}
			if hidesResponseBodies(pc) {
				x.ResponseBodiesHidden()
			}
		}
		began := time.Now()
		if b := req.GetResponseBody(); b != nil {
			// Streamed response chunk: unless guardrails apply, it goes at once and is
			// inspected after, so the token stream is delayed by one round trip only.
			if err := st.responseBody(b, srv.Send); err != nil {
				return err
			}
			s.metrics.observePhase(phaseResponseBody, time.Since(began))
			continue
		}
		resp, err := st.handle(req)
		if err != nil {
			return err
		}
		s.metrics.observePhase(phaseOf(req), time.Since(began))
		if err := srv.Send(resp); err != nil {
			return err
		}
	}
}

// phaseOf maps a message to its phase label.
func phaseOf(req *extprocv3.ProcessingRequest) phaseLabel {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return phaseRequestHeaders
	case *extprocv3.ProcessingRequest_RequestBody:
		return phaseRequestBody
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return phaseResponseHeaders
	default:
		return phaseTrailers
	}
}
