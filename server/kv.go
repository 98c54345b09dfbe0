package server

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/raft"
)

// Errors of the sequencer itself (the front ends map them to etcd's).
var (
	ErrTooManyRequests = errors.New("server: too many requests")
	ErrTimeout         = errors.New("server: request timed out")
	ErrStopped         = errors.New("server: server stopped")
)

// Range answers a range, at a linearizable point unless it is serializable.
func (s *Server) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	defer s.logSlow("range", time.Now())
	// As etcd: permissions are checked after the barrier, so a linearizable
	// read sees every permission change committed before it.
	if !r.Serializable {
		if err := s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.authorizeRead(ctx, &pb.InternalRaftRequest{Range: r}); err != nil { // auth.go
		return nil, err
	}
	resp, err := s.store.Range(r)
	if err != nil {
		return nil, err
	}
	s.fillHeader(resp.Header)
	return resp, nil
}

// Put proposes a put and waits for it to apply.
func (s *Server) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	defer s.logSlow("put", time.Now())
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.PutResponse)
	s.fillHeader(out.Header)
	return out, nil
}

// DeleteRange proposes a delete and waits for it to apply.
func (s *Server) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	defer s.logSlow("delete_range", time.Now())
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.DeleteRangeResponse)
	s.fillHeader(out.Header)
	return out, nil
}

// Txn runs a txn. A read-only txn is answered locally after a linearizable
// barrier (or at once when every range in it is serializable); a txn that
// may write goes through raft.
func (s *Server) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	defer s.logSlow("txn", time.Now())
	if mvcc.IsReadOnlyTxn(r) {
		if !isSerializableTxn(r) {
			if err := s.linearizableBarrier(ctx); err != nil {
				return nil, err
			}
		}
		if err := s.authorizeRead(ctx, &pb.InternalRaftRequest{Txn: r}); err != nil { // auth.go
			return nil, err
		}
		resp, err := s.store.ReadTxn(r)
		if err != nil {
			return nil, err
		}
		s.fillHeader(resp.Header)
		return resp, nil
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.TxnResponse)
	s.fillHeader(out.Header)
	return out, nil
}

// isSerializableTxn: a read-only txn whose ranges all ask for serializable
// reads. A txn with no ranges (compares only) is linearizable: etcd serves
// those locally; we are stricter.
func isSerializableTxn(r *pb.TxnRequest) bool {
	n := 0
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch v := op.GetRequest().(type) {
			case *pb.RequestOp_RequestRange:
				if !v.RequestRange.Serializable {
					return false
				}
				n++
			case *pb.RequestOp_RequestTxn:
				if !isSerializableTxn(v.RequestTxn) {
					return false
				}
				n++
			}
		}
	}
	return n > 0
}

// Compact proposes a compaction; with physical set it also waits until the
// superseded versions are deleted.
func (s *Server) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	defer s.logSlow("compaction", time.Now())
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.CompactionResponse)
	if r.Physical {
		done := make(chan struct{})
		go func() {
			s.store.WaitCompaction(r.Revision)
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.fillHeader(out.Header)
	return out, nil
}

// linearizableBarrier waits until this member has applied everything
// committed before the call: one (batched) ReadIndex round, then the local
// apply catching up.
func (s *Server) linearizableBarrier(ctx context.Context) error {
	if s.node.ReadableNow() {
		return nil // a sole voter with everything committed applied
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	idx, err := s.node.ReadIndex(ctx)
	if err != nil {
		return s.mapWaitErr(ctx, err)
	}
	if err := s.node.WaitApplied(ctx, idx); err != nil {
		return s.mapWaitErr(ctx, err)
	}
	return nil
}

// propose sends req through raft and waits for its result.
func (s *Server) propose(ctx context.Context, req *pb.InternalRaftRequest) (any, error) {
	// A caller without a deadline of its own gets RequestTimeout, as in
	// etcd: a channel shared by all requests of the same tick
	// (deadline.go), not a timer per request.
	var timeout <-chan struct{}
	if _, ok := ctx.Deadline(); !ok {
		timeout = s.deadlines.after(s.cfg.RequestTimeout)
	}
	// During an election there is briefly no leader: wait for one, within
	// the request's deadline, rather than fail a write an election would
	// delay by a second (etcd clients expect the same).
	if err := s.waitLeader(ctx, timeout); err != nil {
		return nil, raft.ErrNoLeader
	}
	if err := s.checkQuota(req); err != nil { // quota.go
		return nil, err
	}
	id := s.ids.id()
	req.Header = &pb.RequestHeader{ID: id}
	if err := s.authorize(ctx, req); err != nil { // auth.go
		return nil, err
	}
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	// etcd's limit, on the raft request as it goes into the log (the
	// front ends refuse most larger requests earlier: mvcc.CheckSize).
	if len(data) > s.cfg.MaxRequestBytes {
		return nil, mvcc.ErrRequestTooLarge
	}
	// Backpressure, as etcd: when apply trails commit by more than
	// MaxApplyLag entries, or too many proposals wait, fail fast rather
	// than queue more work than the apply loop can drain.
	if exceedsApplyLag(s.applied.Load(), s.node.CommitIndex(), uint64(s.cfg.MaxApplyLag), req, s.cfg.PriorityRequests) {
		return nil, ErrTooManyRequests
	}
	ch, n := s.waiters.register(id)
	if n > s.cfg.MaxPendingProposals {
		s.waiters.cancel(id)
		return nil, ErrTooManyRequests
	}
	// Raft's answer comes through the waiter: a dropped proposal is
	// reported there, a taken one by its apply.
	if err := s.node.ProposeAsync(data, func(err error) {
		if err != nil {
			s.waiters.trigger(id, result{err: err, dropped: true})
		}
	}); err != nil {
		s.waiters.cancel(id)
		s.cfg.Metrics.proposalFailed()
		return nil, s.mapWaitErr(ctx, err)
	}
	select {
	case r := <-ch:
		if r.dropped {
			s.cfg.Metrics.proposalFailed()
			return nil, s.mapWaitErr(ctx, r.err)
		}
		return r.resp, r.err
	case <-ctx.Done():
		s.waiters.cancel(id)
		s.cfg.Metrics.proposalFailed()
		return nil, s.mapWaitErr(ctx, ctx.Err())
	case <-timeout:
		s.waiters.cancel(id)
		s.cfg.Metrics.proposalFailed()
		return nil, s.mapWaitErr(ctx, context.DeadlineExceeded)
	case <-s.node.Done():
		s.waiters.cancel(id)
		s.cfg.Metrics.proposalFailed()
		return nil, ErrStopped
	}
}

func (s *Server) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

// mapWaitErr turns our own deadline into etcd's "request timed out"; the
// caller's cancellation stays as it is.
func (s *Server) mapWaitErr(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, raft.ErrTimeout) {
		if s.node.Leader() == 0 {
			return raft.ErrNoLeader
		}
		return ErrTimeout
	}
	if errors.Is(err, raft.ErrStopped) {
		return ErrStopped
	}
	return err
}

// fillHeader sets the fields of a response header that the state machine
// does not know.
func (s *Server) fillHeader(h *pb.ResponseHeader) {
	if h == nil {
		return
	}
	h.ClusterId = s.node.ClusterID()
	h.MemberId = s.node.ID()
	h.RaftTerm = s.node.Term()
}

// exceedsApplyLag is etcd's exceedsRequestLimit: a proposal is refused
// when commit is more than maxLag entries ahead of apply; with priority
// requests (etcd's PriorityRequest feature gate) a LeaseRevoke still goes
// in up to twice that, so that leases keep expiring, and their keys going,
// under a load that refuses writes.
func exceedsApplyLag(applied, committed, maxLag uint64, req *pb.InternalRaftRequest, priority bool) bool {
	if committed <= applied+maxLag {
		return false
	}
	return !(priority && req.LeaseRevoke != nil && committed <= applied+2*maxLag)
}
