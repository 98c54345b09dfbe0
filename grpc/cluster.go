package grpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/raft"
	"github.com/metastore/metastore/server"
)

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
