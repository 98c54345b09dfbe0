package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// RangeStream answers a range as etcd 3.7's KV.RangeStream: the same
// permission check and linearizable barrier as Range, then the key-values
// handed to send in chunks, all from one revision; the returned response
// carries the header, count and more.
func (s *Server) RangeStream(ctx context.Context, r *pb.RangeRequest, send func([]*mvccpb.KeyValue) error) (*pb.RangeResponse, error) {
	defer s.logSlow("range_stream", time.Now())
	if !r.Serializable {
		if err := s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.authorizeRead(ctx, &pb.InternalRaftRequest{Range: r}); err != nil { // auth.go
		return nil, err
	}
	resp, err := s.store.RangeStream(r, func(kvs []*mvccpb.KeyValue) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return send(kvs)
	})
	if err != nil {
		return nil, err
	}
	s.fillHeader(resp.Header)
	return resp, nil
}
