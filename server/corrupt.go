package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// The periodic corruption check (--corrupt-check-time), as etcd's: the
// leader hashes its keyspace at its current revision (HashKV) and asks every
// other member for the hash at the same revision over the client API. A
// member that answers a different hash with the same compaction revision
// holds different data: the leader raises a CORRUPT alarm for it, which
// stops all writes cluster-wide until an operator replaces the member and
// disarms the alarm. Members that are behind (future revision) or compacted
// differently are skipped this round.

func (s *Server) startCorruptCheck() {
	if s.cfg.CorruptCheckTime <= 0 {
		return
	}
	s.ops.wg.Add(1)
	go func() {
		defer s.ops.wg.Done()
		t := time.NewTicker(s.cfg.CorruptCheckTime)
		defer t.Stop()
		for {
			select {
			case <-s.ops.stopc:
				return
			case <-t.C:
			}
			if s.node.Leader() == s.node.ID() {
				s.checkPeerHashes()
			}
		}
	}()
}

// checkPeerHashes runs one round of the check.
func (s *Server) checkPeerHashes() {
	hash, rev, compactRev, err := s.store.HashKV(0)
	if err != nil {
		return
	}
	for _, m := range s.node.Members() {
		if m.ID == s.node.ID() || len(m.ClientURLs) == 0 || m.IsLearner {
			continue
		}
		resp, err := peerHashKV(s.cfg.RequestTimeout, grpcTarget(m.ClientURLs[0]), s.DialCredentials(m.ClientURLs[0]), rev)
		if err != nil {
			s.lg.Debug("corruption check: peer did not answer", zap.String("peer", idString(m.ID)), zap.Error(err))
			continue
		}
		if resp.CompactRevision != compactRev || resp.Hash == hash {
			continue
		}
		s.lg.Error("corruption check: member's hash differs from the leader's",
			zap.String("peer", idString(m.ID)), zap.Int64("revision", rev), zap.Int64("compact-revision", compactRev),
			zap.Uint32("leader-hash", hash), zap.Uint32("peer-hash", resp.Hash))
		s.raiseAlarm(m.ID, pb.AlarmType_CORRUPT)
	}
}

func peerHashKV(timeout time.Duration, target string, creds credentials.TransportCredentials, rev int64) (*pb.HashKVResponse, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return pb.NewMaintenanceClient(conn).HashKV(ctx, &pb.HashKVRequest{Revision: rev})
}
