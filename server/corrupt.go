package server

import (
	"context"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// The periodic corruption check (--corrupt-check-time), as etcd's
// (server/etcdserver/corrupt.go, periodicCheck): the leader hashes its
// keyspace at its current revision (HashKV) and asks every other voting
// member for the hash at the same revision over the peer transport; then it
// makes sure it is still the leader (a linearizable barrier) and hashes
// again. It raises a CORRUPT alarm, through raft, for
//
//   - itself, when its own two hashes at the same revision and compaction
//     differ (its data changed under it);
//   - a member that is ahead of it (a revision or compaction revision above
//     the leader's after the barrier: impossible for a healthy follower);
//   - a member with the leader's compaction revision and a different hash:
//     it holds different data.
//
// As etcd, at most one alarm per round: the first member found. A CORRUPT
// alarm stops every write cluster-wide (reads keep working) until an
// operator replaces the member and disarms the alarm. Members that cannot
// answer (down, behind: a future revision, or compacted past the revision)
// are skipped this round. Each round ends with an info log line naming
// how many peers answered.
//
// Why the peer transport and not the client API: HashKV is root-only on the
// client API when auth is enabled, and a member has no client credentials
// of its own; etcd, too, asks its peers over the peer URLs
// (/members/hashkv), where client auth does not apply. The peer port is
// the members' own channel (mutually authenticated with
// --peer-client-cert-auth), and the only thing served there for the check
// is this hash: no client operation becomes reachable without auth, and
// minting a root token inside the server for a client call (a root-level
// credential that exists outside any user's login) is avoided.

// peerCallHashKV names the peer call (raft.Transport.Call) that answers a
// pb.HashKVRequest with this member's pb.HashKVResponse.
const peerCallHashKV = "hashkv"

func (s *Server) startCorruptCheck() {
	// Every member answers, whether or not it runs the check itself (the
	// leader's flag decides), as etcd's peers always serve /members/hashkv.
	s.tr.Handle(peerCallHashKV, s.servePeerHashKV)
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
				if err := s.checkPeerHashes(); err != nil {
					s.lg.Warn("corruption check failed", zap.Error(err))
				}
			}
		}
	}()
}

// peerHash is one member's answer in a round.
type peerHash struct {
	id   uint64
	resp *pb.HashKVResponse
}

// checkPeerHashes runs one round of the check.
func (s *Server) checkPeerHashes() error {
	hash, rev, compactRev, err := s.store.HashKV(0)
	if err != nil {
		return err
	}
	var peers []peerHash
	for _, m := range s.node.Members() {
		if m.ID == s.node.ID() || m.IsLearner {
			continue
		}
		resp, err := s.peerHashKV(m.ID, rev)
		if err != nil {
			// Logged, as etcd logs a failed hash request, so that a check
			// that compares nothing shows.
			s.lg.Warn("corruption check: member did not answer HashKV", zap.String("peer", idString(m.ID)),
				zap.Int64("revision", rev), zap.Error(err))
			continue
		}
		peers = append(peers, peerHash{id: m.ID, resp: resp})
	}
	if err := s.linearizableBarrier(context.Background()); err != nil {
		return err
	}
	hash2, rev2, compactRev2, err := s.store.HashKV(0)
	if err != nil {
		return err
	}
	alarmed := false
	mismatch := func(id uint64, why string, fields ...zap.Field) {
		if alarmed {
			return
		}
		alarmed = true
		s.lg.Error("corruption check: "+why, append(fields, zap.String("corrupt-member", idString(id)))...)
		s.raiseAlarm(id, pb.AlarmType_CORRUPT)
	}
	if rev2 == rev && compactRev2 == compactRev && hash2 != hash {
		mismatch(s.node.ID(), "the leader's own hash changed at the same revision",
			zap.Int64("revision", rev), zap.Uint32("hash-1", hash), zap.Uint32("hash-2", hash2))
	}
	for _, p := range peers {
		if p.resp.Header != nil && p.resp.Header.Revision > rev2 {
			mismatch(p.id, "member's revision is above the leader's",
				zap.Int64("leader-revision", rev2), zap.Int64("member-revision", p.resp.Header.Revision))
		}
		if p.resp.CompactRevision > compactRev2 {
			mismatch(p.id, "member's compaction revision is above the leader's",
				zap.Int64("leader-compact-revision", compactRev2), zap.Int64("member-compact-revision", p.resp.CompactRevision))
		}
		if p.resp.CompactRevision == compactRev && p.resp.Hash != hash {
			mismatch(p.id, "member's hash differs from the leader's",
				zap.Int64("revision", rev), zap.Int64("compact-revision", compactRev),
				zap.Uint32("leader-hash", hash), zap.Uint32("member-hash", p.resp.Hash))
		}
	}
	s.lg.Info("corruption check finished", zap.Int64("revision", rev), zap.Int("peers-checked", len(peers)),
		zap.Bool("alarm-raised", alarmed))
	return nil
}

// peerHashKV asks member id for its HashKV at rev over the peer transport.
func (s *Server) peerHashKV(id uint64, rev int64) (*pb.HashKVResponse, error) {
	req, err := proto.Marshal(&pb.HashKVRequest{Revision: rev})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	b, err := s.tr.Call(ctx, id, peerCallHashKV, req)
	if err != nil {
		return nil, err
	}
	resp := &pb.HashKVResponse{}
	if err := proto.Unmarshal(b, resp); err != nil {
		return nil, fmt.Errorf("server: bad HashKV answer from %s: %w", idString(id), err)
	}
	return resp, nil
}

// servePeerHashKV answers a member's peerHashKV: the hash of this member's
// keyspace at the requested revision (an error when it is compacted or in
// this member's future).
func (s *Server) servePeerHashKV(_ context.Context, _ uint64, b []byte) ([]byte, error) {
	req := &pb.HashKVRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("server: bad HashKV request: %w", err)
	}
	resp, err := s.HashKV(req.Revision)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(resp)
}
