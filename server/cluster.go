package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/metastore/metastore/raft"
)

// Membership changes as etcd's Cluster service makes them, shared by the
// gRPC service and the HTTP gateway. Membership lives in the raft package
// (replicated, validated identically on every member at apply time); this
// adds what etcd checks before proposing:
//
//   - peer URLs must be http(s)://host:port without a path (MemberBadURLs);
//   - etcd's strict reconfiguration check (on unless
//     Config.NoStrictReconfigCheck), made by the member that takes the
//     request, from its own view of the cluster:
//   - a voter may be added, removed or promoted only if the voters that
//     have started (published their name) would still be a quorum
//     (MemberNotEnoughStarted);
//   - a member (voter or learner) may be added to a cluster of two voters
//     or more only if this member has been connected, for healthInterval,
//     to enough voters to make a quorum of the cluster with the new member
//     counted as down; a voter that this member hears from now may be
//     removed only if those connected for healthInterval, less the removed
//     one, are a quorum of the voters left (Unhealthy). "Connected" is the
//     peer transport's ActiveSince: every member hears from every peer it
//     can reach at least every keepalive interval.
//
// Every call waits until the change is applied on this member, so the
// member list in the response includes it. A promotion must be decided by
// the leader (it knows how far the learner is); a follower forwards it to the
// leader's client URL, as etcd forwards it over the peer API. The caller
// was checked here (root, by the front end); the forwarded call carries its
// token (forwardAuth, auth.go) and the leader checks it again: without it
// the leader would refuse the promotion while auth is enabled.

// healthInterval is how long a peer must have been connected to count for
// the strict reconfiguration check (etcd's HealthInterval).
const healthInterval = 5 * time.Second

// Errors of membership requests.
var (
	ErrMemberBadURLs          = errors.New("server: given member URLs are invalid")
	ErrMemberNotEnoughStarted = errors.New("server: re-configuration failed due to not enough started members")
	ErrUnhealthy              = errors.New("server: unhealthy cluster")
)

// ForwardedKey marks (in gRPC metadata) a promotion a follower forwarded,
// so that it is forwarded at most once (leadership may move meanwhile).
const ForwardedKey = "metastore-forwarded"

// MemberAdd adds a voter or a learner; the new member's ID is derived from
// its peer URLs, the cluster token and the time (so a re-added member gets a
// new ID). It starts without a name; it publishes its name once it runs
// (with --initial-cluster-state existing and --member-id <the ID>).
func (s *Server) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	urls, err := checkPeerURLs(r.PeerURLs)
	if err != nil {
		return nil, err
	}
	if err := s.mayAddMember(r.IsLearner); err != nil {
		return nil, err
	}
	ctx, cancel := s.memberTimeout(ctx)
	defer cancel()
	m, err := s.node.AddMember(ctx, "", urls, r.IsLearner)
	if err != nil {
		return nil, memberErr(ctx, err)
	}
	return &pb.MemberAddResponse{
		Header:  s.headerAt(s.store.Rev()),
		Member:  &pb.Member{ID: m.ID, PeerURLs: m.PeerURLs, IsLearner: m.IsLearner},
		Members: membersOf(s.node.Members()),
	}, nil
}

// MemberRemove removes a member; a removed member stops itself.
func (s *Server) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if err := s.mayRemoveMember(r.ID); err != nil {
		return nil, err
	}
	ctx, cancel := s.memberTimeout(ctx)
	defer cancel()
	if err := s.node.RemoveMember(ctx, r.ID); err != nil {
		return nil, memberErr(ctx, err)
	}
	return &pb.MemberRemoveResponse{Header: s.headerAt(s.store.Rev()), Members: membersOf(s.node.Members())}, nil
}

// MemberUpdate replaces a member's peer URLs (only those, as in etcd: the
// name and client URLs are the member's own to publish).
func (s *Server) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	// An unknown member is reported before its URLs are checked, as etcd.
	if !s.node.HasMember(r.ID) {
		return nil, memberErr(ctx, fmt.Errorf("%w: %x", raft.ErrMemberNotFound, r.ID))
	}
	urls, err := checkPeerURLs(r.PeerURLs)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.memberTimeout(ctx)
	defer cancel()
	if err := s.node.UpdateMember(ctx, r.ID, "", urls, nil); err != nil {
		return nil, memberErr(ctx, err)
	}
	return &pb.MemberUpdateResponse{Header: s.headerAt(s.store.Rev()), Members: membersOf(s.node.Members())}, nil
}

// MemberPromote turns a learner into a voter once it is in sync with the
// leader (LearnerNotReady before that). On a follower it is forwarded to the
// leader once (forwarded: this request already was).
func (s *Server) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest, forwarded bool) (*pb.MemberPromoteResponse, error) {
	if err := s.mayPromoteMember(); err != nil {
		return nil, err
	}
	ctx, cancel := s.memberTimeout(ctx)
	defer cancel()
	err := s.node.PromoteMember(ctx, r.ID)
	if errors.Is(err, raft.ErrNotLeader) && !forwarded {
		return s.forwardPromote(ctx, r)
	}
	if err != nil {
		return nil, memberErr(ctx, err)
	}
	return &pb.MemberPromoteResponse{Header: s.headerAt(s.store.Rev()), Members: membersOf(s.node.Members())}, nil
}

// forwardPromote asks the leader, through its client URL, to promote.
func (s *Server) forwardPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	leader := findMember(s.node.Members(), s.node.Leader())
	if leader == nil || len(leader.ClientURLs) == 0 {
		return nil, raft.ErrNoLeader
	}
	u, err := url.Parse(leader.ClientURLs[0])
	if err != nil {
		return nil, raft.ErrNoLeader
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(s.DialCredentials(leader.ClientURLs[0])))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var resp *pb.MemberPromoteResponse
	for try := 0; ; try++ {
		fctx, err := s.forwardAuth(ctx) // auth.go
		if err != nil {
			return nil, err
		}
		resp, err = pb.NewClusterClient(conn).MemberPromote(metadata.AppendToOutgoingContext(fctx, ForwardedKey, "1"), r)
		if try == 0 && s.dropMinted(ctx, err) {
			continue // the leader did not know the token minted before
		}
		if err != nil {
			return nil, err // already etcd's error (a gRPC status), from the leader
		}
		break
	}
	resp.Header = s.headerAt(s.store.Rev())
	return resp, nil
}

// memberTimeout bounds a membership change by the request timeout when the
// caller set no deadline. NB: raft silently drops a conf change proposed
// while another is pending (it becomes an empty entry), so without a bound
// such a caller would wait forever.
func (s *Server) memberTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, s.cfg.RequestTimeout, ErrTimeout)
}

// memberErr turns our own deadline into etcd's "request timed out" (the
// caller's own deadline stays DeadlineExceeded).
func memberErr(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(context.Cause(ctx), ErrTimeout) {
		return ErrTimeout
	}
	return err
}

func membersOf(ms []*raft.Member) []*pb.Member {
	out := make([]*pb.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out
}

func findMember(ms []*raft.Member, id uint64) *raft.Member {
	for _, m := range ms {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// checkPeerURLs applies etcd's rules (types.NewURLs): at least one URL, each
// http or https with host:port and no path. It returns them normalized.
func checkPeerURLs(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, ErrMemberBadURLs
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
			return nil, ErrMemberBadURLs
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return nil, ErrMemberBadURLs
		}
		out = append(out, u.String())
	}
	return out, nil
}

// countVoters counts the voters other than except (0: none; no member has
// ID 0), and those of them that
// have started (published a name).
func countVoters(ms []*raft.Member, except uint64) (voters, started int) {
	for _, m := range ms {
		if m.IsLearner || m.ID == except {
			continue
		}
		voters++
		if m.Name != "" {
			started++
		}
	}
	return voters, started
}

// readyToAddVoter is etcd's RaftCluster.IsReadyToAddVotingMember: after the
// addition, the started voters (those with a published name) must still be
// a quorum; adding a second member to a one-member cluster is allowed.
func readyToAddVoter(ms []*raft.Member) bool {
	voters, started := countVoters(ms, 0)
	voters++ // the new member, not started yet
	if started == 1 && voters == 2 {
		return true
	}
	return started >= voters/2+1
}

// readyToRemoveVoter is etcd's IsReadyToRemoveVotingMember: the started
// voters that remain must be a quorum of the remaining voters.
func readyToRemoveVoter(ms []*raft.Member, id uint64) bool {
	voters, started := countVoters(ms, id)
	return started >= voters/2+1
}

// readyToPromote is etcd's IsReadyToPromoteMember: the started voters and
// the learner (counted as started) must be a quorum of the voters after the
// promotion.
func readyToPromote(ms []*raft.Member) bool {
	voters, started := countVoters(ms, 0)
	return started+1 >= (voters+1)/2+1
}

// mayAddMember is etcd's strict reconfiguration check for MemberAdd.
func (s *Server) mayAddMember(learner bool) error {
	if s.cfg.NoStrictReconfigCheck {
		return nil
	}
	ms := s.node.Members()
	if !learner && !readyToAddVoter(ms) {
		return ErrMemberNotEnoughStarted
	}
	voters := votersOf(ms)
	if len(voters) > 1 && !healthyToAdd(len(voters), s.connectedSince(voters, time.Now().Add(-healthInterval))) {
		s.lg.Warn("rejecting member add request; this member has not been connected to enough voters to keep a quorum with the new member down",
			zap.Int("voters", len(voters)), zap.Bool("learner", learner), zap.Error(ErrUnhealthy))
		return ErrUnhealthy
	}
	return nil
}

// mayRemoveMember is etcd's strict reconfiguration check for MemberRemove.
// Removing a learner, or a voter this member does not hear from (it is not
// part of the active quorum), needs no connectivity.
func (s *Server) mayRemoveMember(id uint64) error {
	if s.cfg.NoStrictReconfigCheck {
		return nil
	}
	ms := s.node.Members()
	if m := findMember(ms, id); m != nil && m.IsLearner {
		return nil
	}
	if !readyToRemoveVoter(ms, id) {
		return ErrMemberNotEnoughStarted
	}
	if id != s.node.ID() && s.node.PeerActiveSince(id).IsZero() {
		return nil
	}
	voters := votersOf(ms)
	if active := s.connectedSince(voters, time.Now().Add(-healthInterval)); !healthyToRemove(len(voters), active) {
		s.lg.Warn("rejecting member remove request; the voters left connected to this member would not be a quorum",
			zap.String("member", fmt.Sprintf("%x", id)), zap.Int("connected", active), zap.Error(ErrUnhealthy))
		return ErrUnhealthy
	}
	return nil
}

// mayPromoteMember is etcd's strict reconfiguration check for MemberPromote
// (whether the learner is in sync is the leader's to say: raft.Node).
func (s *Server) mayPromoteMember() error {
	if s.cfg.NoStrictReconfigCheck || readyToPromote(s.node.Members()) {
		return nil
	}
	return ErrMemberNotEnoughStarted
}

// connectedSince counts the voters this member has heard from without a gap
// since before t, itself included.
func (s *Server) connectedSince(voters []*raft.Member, t time.Time) int {
	n := 0
	for _, m := range voters {
		if m.ID == s.node.ID() {
			n++
			continue
		}
		if since := s.node.PeerActiveSince(m.ID); !since.IsZero() && since.Before(t) {
			n++
		}
	}
	return n
}

// healthyToAdd is etcd's isConnectedToQuorumAfterAddingNewMemberSince: with
// the new member counted as down, the voters connected (this member
// included) are a quorum of voters+1. A one-voter cluster always grows.
func healthyToAdd(voters, connected int) bool {
	return voters == 1 || connected >= (voters+1)/2+1
}

// healthyToRemove is the rule of etcd's mayRemoveMember for a voter this
// member hears from: the connected voters less the removed one are a quorum
// of the voters left.
func healthyToRemove(voters, connected int) bool {
	return connected-1 >= (voters-1)/2+1
}

func votersOf(ms []*raft.Member) []*raft.Member {
	out := make([]*raft.Member, 0, len(ms))
	for _, m := range ms {
		if !m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}
