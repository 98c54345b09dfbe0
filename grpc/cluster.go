package grpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/metadata"

	"github.com/metastore/metastore/server"
)

// clusterServer is etcd's Cluster service over the server's membership
// calls (server/cluster.go, shared with the HTTP gateway).
type clusterServer struct {
	pb.UnimplementedClusterServer
	s *server.Server
}

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	resp, err := c.s.MemberList(ctx, r.Linearizable)
	return resp, toGRPC(err)
}

func (c *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	resp, err := c.s.MemberAdd(ctx, r)
	return resp, toGRPC(err)
}

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	resp, err := c.s.MemberRemove(ctx, r)
	return resp, toGRPC(err)
}

func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	resp, err := c.s.MemberUpdate(ctx, r)
	return resp, toGRPC(err)
}

// MemberPromote: a promotion forwarded by a follower carries
// server.ForwardedKey, so it is not forwarded again.
func (c *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	resp, err := c.s.MemberPromote(ctx, r, len(md.Get(server.ForwardedKey)) > 0)
	return resp, toGRPC(err)
}
