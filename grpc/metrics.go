package grpc

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// gRPC request metrics with the names of go-grpc-prometheus, which etcd
// exports (grpc_server_started_total, grpc_server_handled_total), so
// etcd's dashboards work. One stats.Handler sees unary and streaming calls
// alike; it is installed by NewServer. The counters live in the default
// Prometheus registry, which the HTTP front end's /metrics serves.
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

// metricsHandler counts RPCs as go-grpc-prometheus does.
type metricsHandler struct{}

type rpcInfoKey struct{}

// rpcInfo is what TagRPC learns from the method name, completed by Begin.
type rpcInfo struct {
	service, method, typ string
}

func (metricsHandler) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	// "/etcdserverpb.KV/Range" -> service "etcdserverpb.KV", method "Range".
	name := strings.TrimPrefix(info.FullMethodName, "/")
	svc, method, ok := strings.Cut(name, "/")
	if !ok {
		svc, method = "unknown", name
	}
	return context.WithValue(ctx, rpcInfoKey{}, &rpcInfo{service: svc, method: method, typ: "unary"})
}

func (metricsHandler) HandleRPC(ctx context.Context, s stats.RPCStats) {
	ri, _ := ctx.Value(rpcInfoKey{}).(*rpcInfo)
	if ri == nil {
		return
	}
	switch s := s.(type) {
	case *stats.Begin:
		switch {
		case s.IsClientStream && s.IsServerStream:
			ri.typ = "bidi_stream"
		case s.IsClientStream:
			ri.typ = "client_stream"
		case s.IsServerStream:
			ri.typ = "server_stream"
		}
		grpcStarted.WithLabelValues(ri.typ, ri.service, ri.method).Inc()
	case *stats.End:
		grpcHandled.WithLabelValues(ri.typ, ri.service, ri.method, status.Code(s.Error).String()).Inc()
	}
}

func (metricsHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (metricsHandler) HandleConn(context.Context, stats.ConnStats) {}

var _ stats.Handler = metricsHandler{}
