package grpc

import (
	"math"
	"runtime"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/metastore/metastore/server"
)

// NewServer returns a gRPC server with etcd's services registered over s.
// The caller serves it on the client listeners and stops it.
func NewServer(s *server.Server) *grpc.Server {
	cfg := s.Config()
	cm := callMetrics{} // metrics.go: filled below, once every service is registered
	gs := grpc.NewServer(
		// etcd allows a message up to the request limit plus gRPC overhead.
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes+512*1024),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(maxStreams(cfg.MaxConcurrentStreams)),
		// Calls run on a pool of long-lived goroutines whose stacks have
		// already grown, instead of a fresh goroutine per call: a fresh
		// one copied its stack while growing it (15% of the CPU of small
		// ranges in a profile).
		grpc.NumStreamWorkers(uint32(max(256, 64*runtime.GOMAXPROCS(0)))),
		// Fixed flow-control windows. With gRPC's default (a window that
		// grows by estimating the bandwidth-delay product), the server
		// pinged a client after each request it received and read the
		// client's ack: at 100 put clients that was 4.2 socket reads per
		// put instead of 2.3, and 9% of the server's CPU per put
		// (docs/BENCHMARKS.md, fourth round). 1 MiB per stream and 16 MiB
		// per connection are far above what a LAN round trip needs.
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		// etcd's keep-alive policy. gRPC's own would close a client's
		// connection that pings more often than every 5 minutes
		// (clientv3 users commonly ping every 10-30 s).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: orDefault(cfg.GRPCKeepAliveMinTime, 5*time.Second)}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: orDefault(cfg.GRPCKeepAliveInterval, 2*time.Hour),
			Timeout: orDefault(cfg.GRPCKeepAliveTimeout, 20*time.Second)}),
		// metrics.go: grpc_server_started/handled_total; auth.go: each
		// call's token into its context; admin-only methods.
		grpc.ChainUnaryInterceptor(cm.unaryInterceptor(), AuthUnaryInterceptor(s)),
		grpc.ChainStreamInterceptor(cm.streamInterceptor(), AuthStreamInterceptor(s)),
		grpc.Creds(terminatedTLS{}), // TLS peer info on TLS client listeners: tls.go
		codecOption(),               // watch_encode.go: pre-encoded watch responses
	)
	pb.RegisterKVServer(gs, NewKVServer(s, Limits{MaxRequestBytes: cfg.MaxRequestBytes, MaxTxnOps: cfg.MaxTxnOps}))
	pb.RegisterClusterServer(gs, &clusterServer{s: s})
	pb.RegisterMaintenanceServer(gs, &maintenanceServer{s: s})
	pb.RegisterWatchServer(gs, NewWatchServer(s, WatchOptions{MaxRequestBytes: cfg.MaxRequestBytes, MaxWatchersPerStream: cfg.MaxWatchersPerStream,
		ProgressNotifyInterval: cfg.WatchProgressNotifyInterval, BatchDelay: cfg.WatchBatchDelay}))
	pb.RegisterLeaseServer(gs, NewLeaseServer(s))
	pb.RegisterAuthServer(gs, NewAuthServer(s))
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	serveLockElection(gs) // last: lock.go
	cm.register(gs, cfg.ExtensiveMetrics)
	return gs
}

// The fixed flow-control windows of client connections (see NewServer).
const (
	streamWindow = 1 << 20
	connWindow   = 16 << 20
)

// maxStreams is etcd's --max-concurrent-streams: 0 means its default, no
// practical limit.
func maxStreams(n uint32) uint32 {
	if n == 0 {
		return math.MaxUint32
	}
	return n
}

// orDefault is d, or def when d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
