package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// The periodic corruption check (--corrupt-check-time), as etcd's
// (server/etcdserver/corrupt.go, periodicCheck): the leader hashes its
// keyspace at its current revision (HashKV) and asks every other member
// (learners too, as etcd) for the hash at the same revision over the peer
// transport, all at once; then it
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

// DefaultCompactHashCheckTime is how often the leader compares the
// members' hashes at the newest compaction (etcd's --compact-hash-check-time).
const DefaultCompactHashCheckTime = time.Minute

// peerCallHashKV names the peer call (raft.Transport.Call) that answers a
// pb.HashKVRequest with this member's pb.HashKVResponse.
const peerCallHashKV = "hashkv"

func (s *Server) startCorruptCheck() {
	// Every member answers, whether or not it runs the check itself (the
	// leader's flag decides), as etcd's peers always serve /members/hashkv.
	s.tr.Handle(peerCallHashKV, s.servePeerHashKV)
	if s.cfg.CorruptCheckTime > 0 {
		s.everyAsLeader(s.cfg.CorruptCheckTime, func() {
			if err := s.checkPeerHashes(); err != nil {
				s.lg.Warn("corruption check failed", zap.Error(err))
			}
		})
	}
	if s.cfg.CompactHashCheck {
		var checked int64 // the newest compaction revision found consistent
		s.everyAsLeader(s.cfg.CompactHashCheckTime, func() { s.checkCompactHashes(&checked) })
	}
}

// everyAsLeader runs f every d on an ops goroutine while this member leads.
func (s *Server) everyAsLeader(d time.Duration, f func()) {
	s.ops.wg.Add(1)
	go func() {
		defer s.ops.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-s.ops.stopc:
				return
			case <-t.C:
			}
			if s.node.Leader() == s.node.ID() {
				f()
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
	peers, failed := s.askPeers(rev)
	for id, err := range failed {
		// Logged, as etcd logs a failed hash request, so that a check
		// that compares nothing shows.
		s.lg.Warn("corruption check: member did not answer HashKV", zap.String("peer", idString(id)),
			zap.Int64("revision", rev), zap.Error(err))
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

// askPeers asks every other member (learners too: they hold the data) for
// its HashKV at rev, all at once, and returns the answers and the members
// that did not answer, with why.
func (s *Server) askPeers(rev int64) (answers []peerHash, failed map[uint64]error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed = map[uint64]error{}
	for _, m := range s.node.Members() {
		if m.ID == s.node.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.peerHashKV(m.ID, rev)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[m.ID] = err
				return
			}
			answers = append(answers, peerHash{id: m.ID, resp: resp})
		}()
	}
	wg.Wait()
	return answers, failed
}

// errDataInconsistency is why a member with --feature-gates
// InitialCorruptCheck=true refuses to start (etcd's words).
var errDataInconsistency = errors.New("found data inconsistency with peers")

// initialCorruptCheck is etcd's InitialCorruptCheck: a member that starts
// with data hashes its keyspace at its revision and asks every peer for
// the hash at that revision; a peer at the same compaction revision with a
// different hash means the data differ, and the member refuses to start
// (before it serves clients). Peers that do not answer, are behind it
// (the revision is in their future) or compacted past it are skipped with
// a warning, as etcd does: the check cannot tell which side is wrong, only
// that one is.
func (s *Server) initialCorruptCheck() error {
	hash, rev, compactRev, err := s.store.HashKV(0)
	if err != nil {
		return fmt.Errorf("server: initial corruption check: hashing the local keyspace: %w", err)
	}
	s.lg.Info("starting initial corruption check", zap.String("local-member-id", idString(s.node.ID())),
		zap.Int64("revision", rev), zap.Duration("timeout", s.cfg.RequestTimeout))
	answers, failed := s.askPeers(rev)
	for id, err := range failed {
		s.lg.Warn("initial corruption check: member did not answer HashKV", zap.String("peer", idString(id)),
			zap.Int64("revision", rev), zap.Error(err))
	}
	mismatch := 0
	for _, p := range answers {
		fields := []zap.Field{zap.String("local-member-id", idString(s.node.ID())),
			zap.Int64("local-member-revision", rev), zap.Int64("local-member-compact-revision", compactRev),
			zap.Uint32("local-member-hash", hash), zap.String("remote-peer-id", idString(p.id)),
			zap.Int64("remote-peer-compact-revision", p.resp.CompactRevision), zap.Uint32("remote-peer-hash", p.resp.Hash)}
		switch {
		case p.resp.Hash == hash:
		case p.resp.CompactRevision == compactRev:
			s.lg.Error("found different hash values from remote peer", fields...)
			mismatch++
		default:
			s.lg.Warn("found different compact revision values from remote peer", fields...)
		}
	}
	if mismatch > 0 {
		return fmt.Errorf("server: %s %w", idString(s.node.ID()), errDataInconsistency)
	}
	s.lg.Info("initial corruption check passed; no corruption", zap.String("local-member-id", idString(s.node.ID())),
		zap.Int("peers-checked", len(answers)), zap.Int("peers-not-answering", len(failed)))
	return nil
}

// checkCompactHashes is one round of etcd's CompactHashCheck on the
// leader: when the newest compaction revision has not been found
// consistent yet, every member's hash at it (which covers the state the
// compaction kept) is compared. Members with a different compaction
// revision, or none, are skipped, and the round is tried again at the next
// tick until all have answered. When the hashes differ, the members outside
// a majority holding one hash get a CORRUPT alarm each; without such a
// majority nobody can tell which data are right, and the alarm names
// member 0 (the whole cluster), as etcd's does.
func (s *Server) checkCompactHashes(checked *int64) {
	compactRev := s.store.CompactRev()
	if compactRev <= 0 || compactRev <= *checked {
		return
	}
	hash, _, localCompact, err := s.store.HashKV(compactRev)
	if err != nil {
		// Compacted further since the read above: the next tick takes the new one.
		s.lg.Warn("compaction hash check: hashing the local keyspace failed", zap.Int64("compact-revision", compactRev), zap.Error(err))
		return
	}
	answers, failed := s.askPeers(compactRev)
	byHash := map[uint32][]uint64{hash: {s.node.ID()}}
	checkedPeers := 0
	for _, p := range answers {
		if p.resp.CompactRevision != localCompact {
			s.lg.Warn("compaction hash check: skipped a member at another compaction revision", zap.String("peer", idString(p.id)),
				zap.Int64("leader-compact-revision", localCompact), zap.Int64("member-compact-revision", p.resp.CompactRevision))
			continue
		}
		checkedPeers++
		byHash[p.resp.Hash] = append(byHash[p.resp.Hash], p.id)
	}
	for id, err := range failed {
		s.lg.Warn("compaction hash check: member did not answer HashKV", zap.String("peer", idString(id)),
			zap.Int64("compact-revision", compactRev), zap.Error(err))
	}
	peers := len(answers) + len(failed)
	if len(byHash) == 1 {
		if checkedPeers == peers {
			*checked = compactRev
			s.lg.Info("compaction hash check: every member holds the same data", zap.Int64("compact-revision", compactRev),
				zap.Int("peers-checked", checkedPeers))
		}
		return
	}
	quorum := (peers+1)/2 + 1
	majority := uint32(0)
	found := false
	for h, ids := range byHash {
		if len(ids) >= quorum {
			majority, found = h, true
		}
	}
	for h, ids := range byHash {
		if found && h == majority {
			continue
		}
		s.lg.Error("compaction hash check: members hold different data", zap.Int64("compact-revision", compactRev),
			zap.Uint32("leader-hash", hash), zap.Uint32("member-hash", h), zap.Strings("members", idStrings(ids)),
			zap.Bool("majority-found", found))
		if found {
			for _, id := range ids {
				s.raiseAlarm(id, pb.AlarmType_CORRUPT)
			}
		}
	}
	if !found {
		s.raiseAlarm(0, pb.AlarmType_CORRUPT)
	}
	*checked = compactRev
}

func idStrings(ids []uint64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = idString(id)
	}
	return out
}
