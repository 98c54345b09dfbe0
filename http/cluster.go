package http

import (
	"context"

	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/server"
)

// ClusterAPI is what the gateway's membership and administrative paths
// need; *server.Server implements it (the same calls the gRPC services
// make, so both front ends answer alike).
type ClusterAPI interface {
	MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error)
	MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error)
	MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error)
	MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest, forwarded bool) (*pb.MemberPromoteResponse, error)
	Defragment(ctx context.Context) error
	MoveLeader(ctx context.Context, target uint64) error
	Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error)
	// AuthorizeAdmin fails unless auth is off or the caller is root.
	AuthorizeAdmin(ctx context.Context) error
	LeaseHeader() *pb.ResponseHeader
}

var _ ClusterAPI = (*server.Server)(nil)

// adminRoute serves a gateway path that only root may use once auth is on,
// as the gRPC interceptor gates the same RPCs.
func adminRoute[T any, P interface {
	*T
	proto.Message
}, R proto.Message](call func(ClusterAPI, context.Context, P) (R, error)) func(*Handler, *fasthttp.RequestCtx) {
	return func(h *Handler, ctx *fasthttp.RequestCtx) {
		c, ok := h.kv.(ClusterAPI)
		if !ok {
			writeError(ctx, errNotFound)
			return
		}
		gateway(h, ctx, nil, func(cctx context.Context, r P) (R, error) {
			var zero R
			if err := c.AuthorizeAdmin(cctx); err != nil {
				return zero, err
			}
			return call(c, cctx, r)
		})
	}
}

func memberAdd(c ClusterAPI, ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return c.MemberAdd(ctx, r)
}

func memberRemove(c ClusterAPI, ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return c.MemberRemove(ctx, r)
}

func memberUpdate(c ClusterAPI, ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return c.MemberUpdate(ctx, r)
}

func memberPromote(c ClusterAPI, ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return c.MemberPromote(ctx, r, false)
}

func defragment(c ClusterAPI, ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := c.Defragment(ctx); err != nil {
		return nil, err
	}
	return &pb.DefragmentResponse{Header: c.LeaseHeader()}, nil
}

func moveLeader(c ClusterAPI, ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := c.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, err
	}
	return &pb.MoveLeaderResponse{Header: c.LeaseHeader()}, nil
}
