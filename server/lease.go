package server

import (
	"context"
	"errors"
	"math"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/lease"
	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/raft"
)

// Leases, end to end:
//
//   - Grant, revoke and checkpoint are raft proposals, applied on every
//     member by the lessor into the same batch as the state (apply.go
//     dispatches them here). A revoke deletes the lease's keys in one
//     revision through mvcc's Apply.DeleteKeys.
//   - The leader's lessor is primary: it holds the deadlines and proposes
//     revokes of expired leases (rate-limited) and checkpoints of remaining
//     TTLs. It is promoted when the leader has applied its term's first
//     (empty) entry — everything of earlier terms is applied then — with
//     the election timeout as extension, and demoted at the first leader
//     change that is not to this member (etcd's rules).
//   - Keep-alives and TimeToLive are answered by the leader. A follower
//     forwards them over gRPC to the leader's client URL (published in the
//     membership, publish.go), marking the call as forwarded so that a
//     member that lost leadership answers "not leader" instead of
//     forwarding again; the follower then retries against the new leader.
//   - With auth enabled, the member that receives a keep-alive,
//     TimeToLive or Leases call checks it (authorizeLease, auth.go), as
//     etcd; a forwarded call carries the caller's token (forwardAuth) and
//     the leader checks it again.

// forwardedKey marks a lease call forwarded by a follower.
const forwardedKey = "metastore-lease-forwarded"

// leaseRetryInterval paces retries while there is no (promoted) leader.
const leaseRetryInterval = 50 * time.Millisecond

var errNoLeaderURL = errors.New("server: the leader has not published a client URL yet")

// leaseState is the server's lease machinery.
type leaseState struct {
	lessor *lease.Lessor
	// node is set once raft runs (the apply goroutine may run before).
	node atomic.Pointer[raft.Node]
	// noopTerm is the term of the last empty entry applied: a leader may
	// promote its lessor once it applied its own term's empty entry.
	noopTerm atomic.Uint64
	// promoteMu serialises the leadership checks with Promote/Demote.
	promoteMu sync.Mutex
	stopc     chan struct{}
	wg        sync.WaitGroup

	fwd struct {
		sync.Mutex
		leader uint64
		target string
		conn   *grpc.ClientConn
	}
	// minted are tokens for certificate users whose calls are forwarded
	// (auth.go, forwardAuth).
	minted mintedTokens
}

// newLessor builds the lessor with etcd's minimum TTL: 1.5 election
// timeouts (in heartbeat ticks), rounded up to whole seconds, so that a
// lease outlives a leader election.
func newLessor(cfg Config) *lease.Lessor {
	ticks := int64(cfg.ElectionTimeout / cfg.HeartbeatInterval)
	minTTL := time.Duration(3*ticks/2) * cfg.HeartbeatInterval
	return lease.New(lease.Config{
		MinTTL:             int64(math.Ceil(minTTL.Seconds())),
		CheckpointInterval: cfg.LeaseCheckpointInterval,
		RevokeRate:         cfg.LeaseRevokeRate,
		Logger:             cfg.Logger.Named("lease"),
	})
}

// loadLeases (re)builds the lessor from the state: the lease records, then
// the keys attached to them. At start and after a snapshot restore.
func (s *Server) loadLeases() error {
	le := s.leases.lessor
	if err := le.Load(s.eng); err != nil {
		return err
	}
	return s.store.LeasedKeys(func(key []byte, id int64) { le.Attach(id, key) })
}

// startLeases starts the expiry loop and the demotion watcher.
func (s *Server) startLeases() {
	s.leases.stopc = make(chan struct{})
	s.leases.node.Store(s.node)
	s.leases.lessor.Start(leaseProposer{s})
	s.maybePromoteLessor()
	s.leases.wg.Add(1)
	go s.watchLeadership()
}

func (s *Server) stopLeases() {
	if s.leases.stopc == nil {
		return
	}
	close(s.leases.stopc)
	s.leases.wg.Wait()
	s.leases.stopc = nil
	s.leases.lessor.Stop()
	s.leases.fwd.Lock()
	if s.leases.fwd.conn != nil {
		s.leases.fwd.conn.Close()
		s.leases.fwd.conn = nil
	}
	s.leases.fwd.Unlock()
}

// watchLeadership demotes the lessor whenever the leader is not us.
func (s *Server) watchLeadership() {
	defer s.leases.wg.Done()
	for {
		ch := s.node.LeaderChanged()
		s.leases.promoteMu.Lock()
		if s.node.Leader() != s.node.ID() {
			s.leases.lessor.Demote()
		}
		s.leases.promoteMu.Unlock()
		select {
		case <-ch:
		case <-s.leases.stopc:
			return
		case <-s.node.Done():
			return
		}
	}
}

// noopApplied is called by the apply goroutine after committing a slice
// holding an empty entry of term.
func (s *Server) noopApplied(term uint64) {
	s.leases.noopTerm.Store(term)
	s.maybePromoteLessor()
}

// maybePromoteLessor promotes the lessor if this member leads and has
// applied its term's empty entry.
func (s *Server) maybePromoteLessor() {
	n := s.leases.node.Load()
	if n == nil {
		return
	}
	s.leases.promoteMu.Lock()
	defer s.leases.promoteMu.Unlock()
	if n.Leader() == n.ID() && n.Term() == s.leases.noopTerm.Load() && !s.leases.lessor.IsPrimary() {
		s.leases.lessor.Promote(s.cfg.ElectionTimeout)
		s.lg.Info("lessor promoted", zap.Uint64("term", n.Term()), zap.Int("leases", len(s.leases.lessor.Leases())))
	}
}

// applyLease applies a lease request from the log (every member).
func applyLease(a *mvcc.Apply, le *lease.Lessor, r *pb.InternalRaftRequest) (any, error) {
	hdr := func() *pb.ResponseHeader { return &pb.ResponseHeader{Revision: a.Rev()} }
	switch {
	case r.LeaseGrant != nil:
		ttl, err := le.Grant(a.Batch(), r.LeaseGrant.ID, r.LeaseGrant.TTL)
		if err != nil {
			return nil, err
		}
		return &pb.LeaseGrantResponse{Header: hdr(), ID: r.LeaseGrant.ID, TTL: ttl}, nil
	case r.LeaseRevoke != nil:
		err := le.Revoke(a.Batch(), r.LeaseRevoke.ID, func(keys [][]byte) error {
			_, err := a.DeleteKeys(keys)
			return err
		})
		if err != nil {
			return nil, err
		}
		return &pb.LeaseRevokeResponse{Header: hdr()}, nil
	case r.LeaseCheckpoint != nil:
		cps := make([]lease.Checkpoint, 0, len(r.LeaseCheckpoint.Checkpoints))
		for _, cp := range r.LeaseCheckpoint.Checkpoints {
			cps = append(cps, lease.Checkpoint{ID: cp.ID, RemainingTTL: cp.Remaining_TTL})
		}
		le.Checkpoint(a.Batch(), cps)
		return &pb.LeaseCheckpointResponse{Header: hdr()}, nil
	}
	return nil, errUnknownRequest
}

// leaseProposer is the primary lessor's way into raft.
type leaseProposer struct{ s *Server }

func (p leaseProposer) ProposeRevoke(ctx context.Context, id int64) error {
	_, err := p.s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
	return err
}

func (p leaseProposer) ProposeCheckpoint(ctx context.Context, cps []lease.Checkpoint) error {
	req := &pb.LeaseCheckpointRequest{Checkpoints: make([]*pb.LeaseCheckpoint, 0, len(cps))}
	for _, cp := range cps {
		req.Checkpoints = append(req.Checkpoints, &pb.LeaseCheckpoint{ID: cp.ID, Remaining_TTL: cp.RemainingTTL})
	}
	_, err := p.s.propose(ctx, &pb.InternalRaftRequest{LeaseCheckpoint: req})
	return err
}

// LeaseGrant grants a lease through raft. ID 0 asks the server to choose
// one: a positive id unique across members (as etcd, from the request id
// generator), chosen before proposing so every member applies the same.
func (s *Server) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if r.TTL > lease.MaxTTL {
		return nil, lease.ErrTTLTooLarge
	}
	req := &pb.LeaseGrantRequest{ID: r.ID, TTL: r.TTL}
	for req.ID == lease.NoLease {
		req.ID = int64(s.ids.id() & math.MaxInt64)
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseGrant: req})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.LeaseGrantResponse)
	s.fillHeader(out.Header)
	return out, nil
}

// LeaseRevoke revokes a lease through raft, deleting its keys in one
// revision.
func (s *Server) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: r.ID}})
	if err != nil {
		return nil, err
	}
	out := resp.(*pb.LeaseRevokeResponse)
	s.fillHeader(out.Header)
	return out, nil
}

// LeaseRenew is one keep-alive: the leader restarts the lease's TTL (not
// through raft); a follower forwards it to the leader. The header is this
// member's, taken before the renew, as etcd does: its revision is never
// past the point at which the lease was renewed. An unknown or expired
// lease is lease.ErrNotFound (etcd answers TTL 0).
//
// With auth enabled the caller needs write permission on every key
// attached to the lease (etcd's checkLeaseRenew), checked here and, for a
// forwarded call, again on the leader.
func (s *Server) LeaseRenew(ctx context.Context, id int64) (*pb.LeaseKeepAliveResponse, error) {
	rev, err := s.authorizeLease(ctx, []int64{id}, true) // auth.go
	if err != nil {
		return nil, err
	}
	if err := s.authMoved(rev); err != nil {
		return nil, err
	}
	resp := &pb.LeaseKeepAliveResponse{ID: id, Header: s.LeaseHeader()}
	err = s.onLeader(ctx, func(ctx context.Context) error {
		if err := s.ensureLeadership(ctx); err != nil {
			return err
		}
		ttl, err := s.leases.lessor.Renew(ctx, id)
		resp.TTL = ttl
		return err
	}, func(ctx context.Context, cli pb.LeaseClient) error {
		st, err := cli.LeaseKeepAlive(ctx)
		if err != nil {
			return err
		}
		if err := st.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			return err
		}
		r, err := st.Recv()
		if err != nil {
			return err
		}
		_ = st.CloseSend()
		if r.TTL <= 0 {
			return lease.ErrNotFound
		}
		resp.TTL = r.TTL
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// LeaseTimeToLive reports a lease's granted and remaining TTL (and keys),
// from the leader, which alone knows deadlines; a follower forwards it. The
// header carries the answering leader's revision and this member's ids.
//
// With auth enabled (etcd's checkLeaseTimeToLive) any user may ask; with
// Keys it needs read permission on every attached key, and an auth change
// while the answer was made is ErrAuthOldRevision.
func (s *Server) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	var ids []int64
	if r.Keys {
		ids = []int64{r.ID}
	}
	rev, err := s.authorizeLease(ctx, ids, false) // auth.go
	if err != nil {
		return nil, err
	}
	if !r.Keys {
		rev = 0 // no keys shown: nothing to re-check
	}
	var resp *pb.LeaseTimeToLiveResponse
	err = s.onLeader(ctx, func(ctx context.Context) error {
		if err := s.ensureLeadership(ctx); err != nil {
			return err
		}
		st, err := s.leases.lessor.TimeToLive(r.ID, r.Keys)
		if err != nil {
			return err
		}
		resp = &pb.LeaseTimeToLiveResponse{Header: s.LeaseHeader(), ID: st.ID, TTL: st.TTL,
			GrantedTTL: st.GrantedTTL, Keys: st.Keys}
		return nil
	}, func(ctx context.Context, cli pb.LeaseClient) error {
		out, err := cli.LeaseTimeToLive(ctx, r)
		if err != nil {
			return err
		}
		if out.TTL == -1 {
			return lease.ErrNotFound
		}
		if out.Header == nil {
			out.Header = &pb.ResponseHeader{Revision: s.store.Rev()}
		}
		s.fillHeader(out.Header)
		resp = out
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.authMoved(rev); err != nil {
		return nil, err
	}
	return resp, nil
}

// LeaseLeases lists the lease ids, at a linearizable point. With auth
// enabled the caller needs read permission on every key attached to any
// lease (etcd's checkLeaseLeases): in practice, root.
func (s *Server) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := s.linearizableBarrier(ctx); err != nil {
		return nil, err
	}
	ids := s.leases.lessor.Leases()
	rev, err := s.authorizeLease(ctx, ids, false) // auth.go
	if err != nil {
		return nil, err
	}
	if err := s.authMoved(rev); err != nil {
		return nil, err
	}
	resp := &pb.LeaseLeasesResponse{Header: s.LeaseHeader(), Leases: make([]*pb.LeaseStatus, 0, len(ids))}
	for _, id := range ids {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
	}
	return resp, nil
}

// LeaseHeader is a response header at the current revision.
func (s *Server) LeaseHeader() *pb.ResponseHeader {
	h := &pb.ResponseHeader{Revision: s.store.Rev()}
	s.fillHeader(h)
	return h
}

// ensureLeadership confirms with a quorum that this member still leads and
// waits until it applied everything committed (a lease granted just before
// is then known), as etcd does before a renew.
func (s *Server) ensureLeadership(ctx context.Context) error {
	if err := s.linearizableBarrier(ctx); err != nil {
		return err
	}
	if s.node.Leader() != s.node.ID() {
		return raft.ErrNotLeader
	}
	return nil
}

// onLeader runs local on the leader, or remote against the leader from a
// follower, retrying while there is no leader, the leader's lessor is not
// promoted yet or leadership moves, until ctx (or the request timeout)
// ends. A forwarded call is never forwarded again.
func (s *Server) onLeader(ctx context.Context, local func(context.Context) error,
	remote func(context.Context, pb.LeaseClient) error) error {
	forwarded := isForwarded(ctx)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	for {
		var err error
		switch {
		case s.node.Leader() == s.node.ID():
			err = local(ctx)
		case forwarded:
			return raft.ErrNotLeader
		default:
			var conn *grpc.ClientConn
			if conn, err = s.leaderConn(); err == nil {
				err = s.forwardLease(ctx, conn, remote)
			}
		}
		if err == nil || !retryableLeaseErr(err) {
			return err
		}
		if ctx.Err() != nil {
			return s.mapWaitErr(ctx, ctx.Err())
		}
		select {
		case <-ctx.Done():
			return s.mapWaitErr(ctx, ctx.Err())
		case <-s.node.Done():
			return ErrStopped
		case <-time.After(leaseRetryInterval):
		}
	}
}

// forwardLease runs remote against the leader with the caller's
// credentials (forwardAuth), once more with a new minted token if the
// leader refused the one minted before.
func (s *Server) forwardLease(ctx context.Context, conn *grpc.ClientConn, remote func(context.Context, pb.LeaseClient) error) error {
	for try := 0; ; try++ {
		fctx, err := s.forwardAuth(ctx) // auth.go
		if err != nil {
			return err
		}
		err = remote(metadata.AppendToOutgoingContext(fctx, forwardedKey, "1"), pb.NewLeaseClient(conn))
		if try == 0 && s.dropMinted(ctx, err) {
			continue
		}
		return err
	}
}

// retryableLeaseErr: errors that mean "try again at the (next) leader".
func retryableLeaseErr(err error) bool {
	switch {
	case errors.Is(err, lease.ErrNotPrimary), errors.Is(err, raft.ErrNoLeader),
		errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeaderChanged),
		errors.Is(err, errNoLeaderURL), errors.Is(err, ErrTimeout):
		return true
	}
	return status.Code(err) == codes.Unavailable
}

func isForwarded(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	return ok && len(md.Get(forwardedKey)) > 0
}

// leaderConn returns a client connection to the current leader's first
// client URL, redialling when the leader (or its URL) changed.
func (s *Server) leaderConn() (*grpc.ClientConn, error) {
	lead := s.node.Leader()
	if lead == 0 {
		return nil, raft.ErrNoLeader
	}
	var target, clientURL string
	for _, m := range s.node.Members() {
		if m.ID == lead && len(m.ClientURLs) > 0 {
			clientURL = m.ClientURLs[0]
			target = grpcTarget(clientURL)
		}
	}
	if target == "" {
		return nil, errNoLeaderURL
	}
	f := &s.leases.fwd
	f.Lock()
	defer f.Unlock()
	if f.conn != nil && f.leader == lead && f.target == clientURL {
		return f.conn, nil
	}
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(s.DialCredentials(clientURL))) // tls.go
	if err != nil {
		return nil, err
	}
	f.conn, f.leader, f.target = conn, lead, clientURL
	return conn, nil
}

// grpcTarget turns a client URL (http://host:port) into a dial target.
func grpcTarget(clientURL string) string {
	u, err := url.Parse(clientURL)
	if err != nil || u.Host == "" {
		return clientURL
	}
	return u.Host
}
