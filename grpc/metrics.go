package grpc

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// grpcHandling is go-grpc-prometheus's latency histogram, which etcd
// exports with --metrics extensive; registered only then.
var (
	grpcHandling = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "grpc_server_handling_seconds",
		Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
		Buckets: prometheus.DefBuckets,
	}, []string{"grpc_type", "grpc_service", "grpc_method"})
	registerHandling sync.Once
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
	// handling observes each call's duration; nil unless extensive.
	handling prometheus.Observer
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

// begin counts a call's start and returns what done needs: the time, only
// when the duration is observed.
func (m *methodMetrics) begin() time.Time {
	m.started.Inc()
	if m.handling == nil {
		return time.Time{}
	}
	return time.Now()
}

func (m *methodMetrics) done(err error, start time.Time) {
	if m.handling != nil {
		m.handling.Observe(time.Since(start).Seconds())
	}
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

// registerMetrics resolves the counters of every method gs serves, and
// with extensive their latency histograms (etcd's --metrics extensive).
func (cm callMetrics) register(gs *grpc.Server, extensive bool) {
	if extensive {
		registerHandling.Do(func() { prometheus.MustRegister(grpcHandling) })
	}
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
			mm := newMethodMetrics(full, typ)
			if extensive {
				mm.handling = grpcHandling.WithLabelValues(mm.typ, mm.service, mm.method)
			}
			cm[full] = mm
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
		start := m.begin()
		resp, err := handler(ctx, req)
		m.done(err, start)
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
		start := m.begin()
		err := handler(srv, ss)
		m.done(err, start)
		return err
	}
}
