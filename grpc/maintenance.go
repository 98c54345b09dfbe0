package grpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/version"
)

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
