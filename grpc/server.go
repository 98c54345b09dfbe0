package grpc

import (
	"context"
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/metastore/metastore/raft"
	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/version"
)

// NewServer returns a gRPC server with etcd's services registered over s.
// The caller serves it on the client listeners and stops it.
func NewServer(s *server.Server) *grpc.Server {
	cfg := s.Config()
	gs := grpc.NewServer(
		// etcd allows a message up to the request limit plus gRPC overhead.
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes+512*1024),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
	)
	pb.RegisterKVServer(gs, NewKVServer(s, Limits{MaxRequestBytes: cfg.MaxRequestBytes, MaxTxnOps: cfg.MaxTxnOps}))
	pb.RegisterClusterServer(gs, &clusterServer{s: s})
	pb.RegisterMaintenanceServer(gs, &maintenanceServer{s: s})
	pb.RegisterWatchServer(gs, pb.UnimplementedWatchServer{})
	pb.RegisterLeaseServer(gs, pb.UnimplementedLeaseServer{})
	pb.RegisterAuthServer(gs, pb.UnimplementedAuthServer{})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return gs
}

type clusterServer struct {
	pb.UnimplementedClusterServer
	s *server.Server
}

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if _, err := c.s.Node().ReadIndex(ctx); err != nil {
			return nil, toGRPC(err)
		}
	}
	resp := &pb.MemberListResponse{Header: c.header(), Members: membersOf(c.s.Node().Members())}
	return resp, nil
}

func (c *clusterServer) header() *pb.ResponseHeader {
	n := c.s.Node()
	return &pb.ResponseHeader{ClusterId: n.ClusterID(), MemberId: n.ID(), RaftTerm: n.Term(), Revision: c.s.Store().Rev()}
}

func membersOf(ms []*raft.Member) []*pb.Member {
	out := make([]*pb.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out
}

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *server.Server
}

// Status is cheap: it reads counters and engine size estimates, never the
// whole database.
func (m *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	st, err := m.s.Node().Status(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	size, err := m.s.Store().Engine().DiskSize()
	if err != nil {
		return nil, toGRPC(err)
	}
	n := m.s.Node()
	return &pb.StatusResponse{
		Header:           &pb.ResponseHeader{ClusterId: n.ClusterID(), MemberId: n.ID(), RaftTerm: st.Term, Revision: m.s.Store().Rev()},
		Version:          version.EtcdAPIVersion,
		DbSize:           int64(size),
		DbSizeInUse:      int64(size),
		Leader:           st.Leader,
		RaftIndex:        st.Commit,
		RaftTerm:         st.Term,
		RaftAppliedIndex: st.Applied,
		IsLearner:        st.IsLearner,
		StorageVersion:   version.EtcdAPIVersion,
	}, nil
}

func (m *maintenanceServer) header(rev int64) *pb.ResponseHeader {
	n := m.s.Node()
	return &pb.ResponseHeader{ClusterId: n.ClusterID(), MemberId: n.ID(), RaftTerm: n.Term(), Revision: rev}
}

// Hash hashes the whole keyspace at the current revision.
func (m *maintenanceServer) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	h, rev, err := m.s.Store().Hash()
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashResponse{Header: m.header(rev), Hash: h}, nil
}

// HashKV hashes the versions up to a revision (0: current); members with
// the same history return the same hash at the same revision.
func (m *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	h, rev, compactRev, err := m.s.Store().HashKV(r.Revision)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashKVResponse{Header: m.header(m.s.Store().Rev()), Hash: h, CompactRevision: compactRev, HashRevision: rev}, nil
}
