package grpc

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// gRPC request metrics with the names of go-grpc-prometheus, which etcd
// exports (grpc_server_started_total, grpc_server_handled_total), so
// etcd's dashboards work. They are counted by two interceptors (as
// go-grpc-prometheus does) rather than a stats.Handler: a stats handler
// makes grpc-go build and deliver an event for every header and payload
// of every call, which cost several percent of the server's CPU on small
// requests. The counters live in the default Prometheus registry, which
// the HTTP front end's /metrics serves.
var (
	grpcStarted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_server_started_total",
		Help: "Total number of RPCs started on the server.",
	}, []string{"grpc_type", "grpc_service", "grpc_method"})
	grpcHandled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_server_handled_total",
		Help: "Total number of RPCs completed on the server, regardless of success or failure.",
	}, []string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"})
)

func init() {
	prometheus.MustRegister(grpcStarted, grpcHandled)
}

// maxCode bounds the gRPC status codes counted one by one (0..16).
const maxCode = codes.Unauthenticated

// methodMetrics holds one method's counters, resolved once, so a call
// costs two atomic adds and no label lookup.
type methodMetrics struct {
	typ, service, method string
	started              prometheus.Counter
	handled              [maxCode + 1]atomic.Pointer[prometheus.Counter]
}

func newMethodMetrics(fullMethod, typ string) *methodMetrics {
	// "/etcdserverpb.KV/Range" -> service "etcdserverpb.KV", method "Range".
	name := strings.TrimPrefix(fullMethod, "/")
	svc, method, ok := strings.Cut(name, "/")
	if !ok {
		svc, method = "unknown", name
	}
	return &methodMetrics{typ: typ, service: svc, method: method,
		started: grpcStarted.WithLabelValues(typ, svc, method)}
}

func (m *methodMetrics) done(err error) {
	code := status.Code(err)
	if code > maxCode {
		grpcHandled.WithLabelValues(m.typ, m.service, m.method, code.String()).Inc()
		return
	}
	c := m.handled[code].Load()
	if c == nil {
		// Racing first calls resolve the same child counter: harmless.
		cc := grpcHandled.WithLabelValues(m.typ, m.service, m.method, code.String())
		c = &cc
		m.handled[code].Store(c)
	}
	(*c).Inc()
}

// callMetrics maps every method the server registered to its counters. It
// is filled by registerMetrics after all services are registered and only
// read afterwards, so lookups need no lock.
type callMetrics map[string]*methodMetrics

// registerMetrics resolves the counters of every method gs serves.
func (cm callMetrics) register(gs *grpc.Server) {
	for svc, info := range gs.GetServiceInfo() {
		for _, m := range info.Methods {
			typ := "unary"
			switch {
			case m.IsClientStream && m.IsServerStream:
				typ = "bidi_stream"
			case m.IsClientStream:
				typ = "client_stream"
			case m.IsServerStream:
				typ = "server_stream"
			}
			full := "/" + svc + "/" + m.Name
			cm[full] = newMethodMetrics(full, typ)
		}
	}
}

func (cm callMetrics) lookup(fullMethod, typ string) *methodMetrics {
	if m := cm[fullMethod]; m != nil {
		return m
	}
	return newMethodMetrics(fullMethod, typ) // not registered: counted, not cached
}

// unaryInterceptor counts a unary call's start and its outcome.
func (cm callMetrics) unaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		m := cm.lookup(info.FullMethod, "unary")
		m.started.Inc()
		resp, err := handler(ctx, req)
		m.done(err)
		return resp, err
	}
}

// streamInterceptor does the same for streams (Watch, LeaseKeepAlive,
// Snapshot, Observe).
func (cm callMetrics) streamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		typ := "bidi_stream"
		switch {
		case info.IsClientStream && !info.IsServerStream:
			typ = "client_stream"
		case !info.IsClientStream && info.IsServerStream:
			typ = "server_stream"
		}
		m := cm.lookup(info.FullMethod, typ)
		m.started.Inc()
		err := handler(srv, ss)
		m.done(err)
		return err
	}
}
