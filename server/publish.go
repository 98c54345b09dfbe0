package server

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"go.uber.org/zap"
)

// publishAttributes makes the member's name and client URLs part of the
// replicated membership, as etcd's publish does: members of a new cluster
// know only their own client URLs at bootstrap, and a member's client URLs
// may change across restarts. It retries until the update is applied, the
// record already matches, or the node stops.
func (s *Server) publishAttributes() {
	for attempt := 0; ; attempt++ {
		if s.attributesPublished() {
			s.readyOnce.Do(func() { close(s.readyc) })
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		err := s.WaitLeader(ctx)
		cancel()
		if err == nil && attempt == 0 && s.node.Leader() != s.node.ID() {
			// A new leader publishes its own attributes at once; a
			// follower that proposed in the same moment would be dropped
			// (below), so followers first wait a moment, at random, which
			// also spreads them apart from each other.
			select {
			case <-s.node.Done():
				return
			case <-time.After(20*time.Millisecond + rand.N(100*time.Millisecond)):
			}
		}
		if err == nil {
			// NB: raft drops a conf change proposed while another is
			// pending without ever answering (members that start together
			// collide), so an attempt is short: a conf change applies within
			// a round trip and an fsync. A retry after a slow success
			// publishes the same values again, which is harmless.
			ctx, cancel = context.WithTimeout(context.Background(), 3*s.cfg.HeartbeatInterval)
			err = s.node.UpdateMember(ctx, s.node.ID(), s.cfg.Name, s.ownPeerURLs(), s.cfg.ClientURLs)
			cancel()
		}
		if err == nil {
			s.lg.Info("published member attributes", zap.String("name", s.cfg.Name), zap.Strings("client-urls", s.cfg.ClientURLs))
			s.readyOnce.Do(func() { close(s.readyc) })
			return
		}
		// Members that start together retry at random moments, so that
		// their next conf changes do not collide again: a tenth of a
		// second at random first, then 200 ms more per attempt.
		select {
		case <-s.node.Done():
			return
		case <-time.After(min(time.Duration(attempt)*200*time.Millisecond+rand.N(100*time.Millisecond), 2*time.Second)):
		}
		s.lg.Warn("publishing member attributes failed; retrying", zap.Error(err))
	}
}

// attributesPublished reports whether the replicated record of this member
// already has its name and client URLs.
func (s *Server) attributesPublished() bool {
	for _, m := range s.node.Members() {
		if m.ID == s.node.ID() {
			return m.Name == s.cfg.Name && slices.Equal(m.ClientURLs, s.cfg.ClientURLs)
		}
	}
	return false
}

// ownPeerURLs are this member's peer URLs as the membership has them (an
// attribute update must not change them).
func (s *Server) ownPeerURLs() []string {
	for _, m := range s.node.Members() {
		if m.ID == s.node.ID() {
			return m.PeerURLs
		}
	}
	return nil
}

// ReadyNotify is closed once this member's name and client URLs are part of
// the replicated membership. As etcd does, serve waits for it before it
// opens the client listeners, so that every client sees a complete member
// list (etcdctl --cluster and clientv3's endpoint sync rely on it). It is
// never closed if the member cannot reach a quorum.
func (s *Server) ReadyNotify() <-chan struct{} { return s.readyc }
