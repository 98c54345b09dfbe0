package grpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/mvcc"
)

// KVBackend is what the KV service needs from the server: every call is
// linearizable unless the request says serializable, and fills the header.
type KVBackend interface {
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	RangeStream(ctx context.Context, r *pb.RangeRequest, send func([]*mvccpb.KeyValue) error) (*pb.RangeResponse, error)
	Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error)
}

// Limits are the request limits the front end enforces before proposing.
type Limits struct {
	MaxRequestBytes int
	MaxTxnOps       int
}

type kvServer struct {
	pb.UnimplementedKVServer
	b      KVBackend
	limits Limits
}

// NewKVServer returns etcd's KV service over b.
func NewKVServer(b KVBackend, limits Limits) pb.KVServer {
	return &kvServer{b: b, limits: limits}
}

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := mvcc.CheckRange(r); err != nil {
		return nil, toGRPC(err)
	}
	resp, err := s.b.Range(ctx, r)
	return resp, toGRPC(err)
}

// RangeStream answers one range as a stream of chunks from one revision
// (etcd 3.7): the key-values in order across chunks, then a last message
// with header, count and more.
func (s *kvServer) RangeStream(r *pb.RangeRequest, stream pb.KV_RangeStreamServer) error {
	if err := mvcc.CheckRange(r); err != nil {
		return toGRPC(err)
	}
	final, err := s.b.RangeStream(stream.Context(), r, func(kvs []*mvccpb.KeyValue) error {
		return stream.Send(&pb.RangeStreamResponse{RangeResponse: &pb.RangeResponse{Kvs: kvs}})
	})
	if err != nil {
		return toGRPC(err)
	}
	return toGRPC(stream.Send(&pb.RangeStreamResponse{RangeResponse: final}))
}

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := mvcc.CheckPut(r); err != nil {
		return nil, toGRPC(err)
	}
	if err := mvcc.CheckSize(r, s.limits.MaxRequestBytes); err != nil {
		return nil, toGRPC(err)
	}
	resp, err := s.b.Put(ctx, r)
	return resp, toGRPC(err)
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := mvcc.CheckDeleteRange(r); err != nil {
		return nil, toGRPC(err)
	}
	resp, err := s.b.DeleteRange(ctx, r)
	return resp, toGRPC(err)
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := mvcc.CheckTxn(r, s.limits.MaxTxnOps); err != nil {
		return nil, toGRPC(err)
	}
	if err := mvcc.CheckTxnSize(r, s.limits.MaxRequestBytes); err != nil {
		return nil, toGRPC(err)
	}
	resp, err := s.b.Txn(ctx, r)
	return resp, toGRPC(err)
}

func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.b.Compact(ctx, r)
	return resp, toGRPC(err)
}
