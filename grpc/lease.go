package grpc

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/lease"
)

// LeaseBackend is what the Lease service needs from the server; every
// call fills the response header. Unknown leases are lease.ErrNotFound.
type LeaseBackend interface {
	LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error)
	LeaseRenew(ctx context.Context, id int64) (*pb.LeaseKeepAliveResponse, error)
	LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error)
	// LeaseHeader is a filled header for answers made here (unknown leases).
	LeaseHeader() *pb.ResponseHeader
}

type leaseServer struct {
	pb.UnimplementedLeaseServer
	b LeaseBackend
}

// NewLeaseServer returns etcd's Lease service over b.
func NewLeaseServer(b LeaseBackend) pb.LeaseServer { return &leaseServer{b: b} }

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	resp, err := s.b.LeaseGrant(ctx, r)
	return resp, toGRPC(err)
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.b.LeaseRevoke(ctx, r)
	return resp, toGRPC(err)
}

// LeaseTimeToLive answers an unknown lease with TTL -1 rather than an
// error, as etcd does (clientv3 reports it that way).
func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := s.b.LeaseTimeToLive(ctx, r)
	if errors.Is(err, lease.ErrNotFound) {
		return &pb.LeaseTimeToLiveResponse{Header: s.b.LeaseHeader(), ID: r.ID, TTL: -1}, nil
	}
	return resp, toGRPC(err)
}

func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	resp, err := s.b.LeaseLeases(ctx, r)
	return resp, toGRPC(err)
}

// LeaseKeepAlive answers each keep-alive in order. An unknown or expired
// lease gets TTL 0 (etcd's answer); other errors end the stream.
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := s.b.LeaseRenew(ctx, req.ID)
		if errors.Is(err, lease.ErrNotFound) {
			resp, err = &pb.LeaseKeepAliveResponse{Header: s.b.LeaseHeader(), ID: req.ID, TTL: 0}, nil
		}
		if err != nil {
			return toGRPC(err)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
