package raft

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Applier is the replicated state machine; server/ implements it.
//
// The raft package calls Apply and Restore from one goroutine (the apply
// goroutine), in log order. AppliedIndex, DurableIndex and WriteSnapshot may
// be called from other goroutines at any time and must be safe for that.
type Applier interface {
	// Apply applies committed entries, in order, with contiguous indexes and
	// each index exactly once across crashes: the index of the last entry
	// must be written in the same engine batch as the state changes.
	//
	// Entries are EntryNormal (Data may be empty: raft's no-op entry at the
	// start of each term; it still advances the applied index) and conf
	// changes, which the raft package has already applied to raft and to the
	// membership (see Node.Members; DecodeConfChange decodes one). A conf
	// change the raft package rejected arrives as an empty EntryNormal.
	//
	// An error is fatal: the node stops and reports it from Err.
	Apply(entries []*raftpb.Entry) error
	// AppliedIndex is the index of the last applied entry. Read at Start:
	// raft replays the log from AppliedIndex()+1.
	AppliedIndex() uint64
	// DurableIndex is the highest index whose state survives a crash. It
	// equals AppliedIndex for a durable engine and lags it for the memory
	// engine between checkpoints. Log compaction never passes it.
	DurableIndex() uint64
	// WriteSnapshot streams the whole state (including its applied index) to
	// w. It runs concurrently with Apply, so it must read a consistent view
	// (an engine snapshot). The state must be at or past the log's
	// compaction point, which holds for any state the Applier has.
	WriteSnapshot(w io.Writer) error
	// Restore replaces the whole state with one WriteSnapshot wrote (on
	// another member). Afterwards AppliedIndex returns the index recorded in
	// the stream. The reader verifies checksums as it goes and fails with
	// ErrSnapshotCorrupt rather than return bad data.
	Restore(r io.Reader) error
}

// Propose proposes data as a new log entry and returns once raft has taken
// it (not when it is committed: callers wait for Apply themselves, by a
// request id inside data). Proposals queued while the previous Ready was
// being persisted share the next fsync.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	errc := make(chan error, 1)
	if err := n.ProposeAsync(data, func(err error) { errc <- err }); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		// Raft may still take data: the caller's wait by request id decides.
		return ctx.Err()
	case <-n.stopc:
		return ErrStopped
	}
}

// ProposeAsync queues data as a new log entry and returns at once; it fails
// only when the node has stopped. done is called exactly once, on the raft
// goroutine, with nil when raft took data or with ErrNoLeader or
// ErrProposalDropped when it did not; it must not block. If the node stops
// first, done is never called: callers also watch Done. Proposers that wait
// for the apply anyway (by a request id inside data) save a hand-off per
// request against Propose.
func (n *Node) ProposeAsync(data []byte, done func(error)) error {
	select {
	case <-n.stopc:
		return ErrStopped
	default:
	}
	n.propMu.Lock()
	n.propMu.queue = append(n.propMu.queue, proposal{data: data, done: done})
	first := len(n.propMu.queue) == 1
	n.propMu.Unlock()
	if first {
		select {
		case n.propSig <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return nil
}

// act runs f on the raft goroutine and waits for it.
func (n *Node) act(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case n.actc <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopc:
		return ErrStopped
	}
	select {
	case <-done:
		return nil
	case <-n.stopc:
		return ErrStopped
	}
}

// ReadIndex returns a commit index that is safe for a linearizable read:
// once the local state has applied it (WaitApplied), a read sees every write
// acknowledged before ReadIndex was called. Concurrent callers share one raft
// ReadIndex round: while a round is in flight, new callers queue for the next
// one. Without a reachable leader it blocks until ctx ends.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if idx, ok := n.localReadIndex(); ok {
		return idx, nil
	}
	ch := make(chan readResult, 1)
	if err := n.act(ctx, func() { n.reads.next = append(n.reads.next, ch); n.maybeStartReadRound() }); err != nil {
		return 0, err
	}
	select {
	case r := <-ch:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.stopc:
		return 0, ErrStopped
	}
}

// localReadIndex answers a read index without a round through raft when
// this member is the only voter, leads, and has committed an entry of its
// term: no other member can commit anything or be elected without its
// vote, so its commit index (which every acknowledged write is at or
// below: commit is published before the entries go to the apply
// goroutine) is what raft's ReadIndex would answer. The term condition is
// raft's own (a new leader's commit index may trail until its first entry
// commits).
func (n *Node) localReadIndex() (uint64, bool) {
	if !n.soleVoter.Load() || n.leader.Load() != n.id {
		return 0, false
	}
	idx := n.commit.Load()
	if t := n.term.Load(); t == 0 || n.commitTerm.Load() != t {
		return 0, false
	}
	return idx, true
}

// ReadableNow reports whether a linearizable read may be served from the
// local state at once: the read index is local (localReadIndex) and
// already applied. Otherwise use ReadIndex and WaitApplied.
func (n *Node) ReadableNow() bool {
	idx, ok := n.localReadIndex()
	return ok && n.applied.Load() >= idx
}

type readResult struct {
	index uint64
	err   error
}

// readBatcher is owned by the raft goroutine.
type readBatcher struct {
	seq     uint64            // id of the current round
	cur     []chan readResult // waiting on the current round
	next    []chan readResult // waiting for the next round
	started time.Time         // when the current round started
	active  bool              // a round is in flight
}

func (n *Node) maybeStartReadRound() {
	if n.reads.active || len(n.reads.next) == 0 || n.leader.Load() == raft.None {
		return
	}
	n.reads.seq++
	n.reads.cur, n.reads.next = n.reads.next, nil
	n.reads.active = true
	n.reads.started = time.Now()
	var rctx [8]byte
	binary.BigEndian.PutUint64(rctx[:], n.reads.seq)
	n.readRounds.Add(1)
	n.rn.ReadIndex(rctx[:])
}

// restartReadRound abandons the round in flight (its request or answer may
// be lost) and asks again for all waiters.
func (n *Node) restartReadRound() {
	if !n.reads.active {
		n.maybeStartReadRound()
		return
	}
	n.reads.next = append(n.reads.cur, n.reads.next...)
	n.reads.cur = nil
	n.reads.active = false
	n.maybeStartReadRound()
}

func (n *Node) tickReads() {
	if n.reads.active && time.Since(n.reads.started) > n.cfg.ElectionTimeout {
		n.restartReadRound()
	} else if !n.reads.active {
		n.maybeStartReadRound()
	}
}

func (n *Node) handleReadStates(rss []raft.ReadState) {
	for _, rs := range rss {
		if !n.reads.active || len(rs.RequestCtx) != 8 || binary.BigEndian.Uint64(rs.RequestCtx) != n.reads.seq {
			continue
		}
		for _, ch := range n.reads.cur {
			ch <- readResult{index: rs.Index}
		}
		n.reads.cur = nil
		n.reads.active = false
	}
	n.maybeStartReadRound()
}

// WaitApplied blocks until the apply goroutine has applied index (or ctx ends).
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		n.notifyMu.Lock()
		ch := n.notifyMu.appliedC
		n.notifyMu.Unlock()
		if n.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stopc:
			return ErrStopped
		}
	}
}

// LeaderChanged returns a channel that is closed at the next leader change;
// the server uses it to fail in-flight requests with ErrLeaderChanged.
func (n *Node) LeaderChanged() <-chan struct{} {
	n.notifyMu.Lock()
	defer n.notifyMu.Unlock()
	return n.notifyMu.leaderChanged
}

// Leader is the current leader's ID, 0 if none is known.
func (n *Node) Leader() uint64 { return n.leader.Load() }

// ID is this member's ID.
func (n *Node) ID() uint64 { return n.id }

// ClusterID is the cluster's ID (0 on a joining member until it learned it).
func (n *Node) ClusterID() uint64 { return n.clusterID.Load() }

// Term is the current raft term.
func (n *Node) Term() uint64 { return n.term.Load() }

// AppliedIndex is the index of the last entry the Applier applied.
func (n *Node) AppliedIndex() uint64 { return n.applied.Load() }

// Progress is a follower's replication state as the leader sees it.
type Progress struct {
	Match, Next  uint64
	IsLearner    bool
	RecentActive bool
}

// Status is a point-in-time view of the node.
type Status struct {
	ID, Leader, Term, Commit, Applied uint64
	State                             string // StateLeader, StateFollower, ...
	IsLearner                         bool
	// Progress of every member (leader only; nil elsewhere).
	Progress map[uint64]Progress
	// FirstIndex, LastIndex bound the entries held in the log.
	FirstIndex, LastIndex uint64
}

// Status returns the node's status (one round trip to the raft goroutine).
func (n *Node) Status(ctx context.Context) (Status, error) {
	var st Status
	err := n.act(ctx, func() {
		rs := n.rn.Status()
		st = Status{ID: n.id, Leader: rs.Lead, Term: rs.GetTerm(), Commit: rs.GetCommit(),
			Applied: n.applied.Load(), State: rs.RaftState.String()}
		_, st.IsLearner = rs.Config.Learners[n.id]
		if rs.Progress != nil {
			st.Progress = make(map[uint64]Progress, len(rs.Progress))
			for id, pr := range rs.Progress {
				st.Progress[id] = Progress{Match: pr.Match, Next: pr.Next, IsLearner: pr.IsLearner, RecentActive: pr.RecentActive}
			}
		}
		st.FirstIndex, _ = n.store.FirstIndex()
		st.LastIndex, _ = n.store.LastIndex()
	})
	return st, err
}

// PeerActiveSince is since when this member has been hearing from member id
// without a gap (Transport.ActiveSince); zero if it does not hear from it
// now (always for this member's own ID).
func (n *Node) PeerActiveSince(id uint64) time.Time {
	return n.tr.ActiveSince(id)
}

// Members returns the current membership, sorted by ID.
func (n *Node) Members() []*Member {
	rec := n.members.Load()
	out := make([]*Member, 0, len(rec.Members))
	for _, m := range rec.Members {
		out = append(out, m.clone())
	}
	return out
}

// HasMember reports whether id is a member (voter or learner) now.
func (n *Node) HasMember(id uint64) bool {
	return slices.ContainsFunc(n.members.Load().Members, func(m *Member) bool { return m.ID == id })
}

// TransferLeadership asks the leader (this node) to hand leadership to
// member to, and waits until to is leader or ctx ends.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) error {
	var err error
	if e := n.act(ctx, func() {
		if n.rn.BasicStatus().RaftState != raft.StateLeader {
			err = ErrNotLeader
			return
		}
		n.rn.TransferLeader(to)
	}); e != nil {
		return e
	}
	if err != nil {
		return err
	}
	for n.leader.Load() != to {
		select {
		case <-n.LeaderChanged():
		case <-time.After(n.cfg.HeartbeatInterval):
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stopc:
			return ErrStopped
		}
	}
	return nil
}

// ProposeConfChange proposes cc and waits until it is applied (or rejected
// at apply time, ErrConfChangeFailed) or ctx ends. cc.Context may hold a
// JSON-encoded Member for additions and URL updates. Promoting a learner
// (ConfChangeAddNode for a learner) must be done on the leader and is
// refused while the learner is behind (ErrLearnerNotReady).
func (n *Node) ProposeConfChange(ctx context.Context, cc *raftpb.ConfChangeV2) error {
	var m *Member
	if len(cc.GetContext()) > 0 {
		m = &Member{}
		if err := json.Unmarshal(cc.GetContext(), m); err != nil {
			return fmt.Errorf("%w: conf change context is not a member record: %v", ErrConfChangeFailed, err)
		}
	}
	return n.proposeConfChange(ctx, cc, m)
}

func (n *Node) proposeConfChange(ctx context.Context, cc *raftpb.ConfChangeV2, m *Member) error {
	cctx := &confChangeContext{ReqID: n.reqSeq.Add(1), Member: m}
	if n.cfg.MaxLearners > 0 && n.cfg.MaxLearners != DefaultMaxLearners {
		cctx.MaxLearners = n.cfg.MaxLearners
	}
	if err := validateConfChange(n.members.Load(), cc, cctx); err != nil {
		return err
	}
	b, err := json.Marshal(cctx)
	if err != nil {
		return err
	}
	prop := &raftpb.ConfChangeV2{Transition: cc.Transition, Changes: cc.GetChanges(), Context: b}
	waitc := make(chan error, 1)
	n.confMu.Lock()
	n.confWaiters[cctx.ReqID] = waitc
	n.confMu.Unlock()
	defer func() {
		n.confMu.Lock()
		delete(n.confWaiters, cctx.ReqID)
		n.confMu.Unlock()
	}()
	var perr error
	if err := n.act(ctx, func() { perr = n.proposeConfChangeLocked(prop) }); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	select {
	case err := <-waitc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopc:
		return ErrStopped
	}
}

// proposeConfChangeLocked runs on the raft goroutine.
func (n *Node) proposeConfChangeLocked(cc *raftpb.ConfChangeV2) error {
	st := n.rn.BasicStatus()
	rec := n.members.Load()
	for _, ch := range cc.GetChanges() {
		if ch.GetType() != raftpb.ConfChangeAddNode {
			continue
		}
		if m := rec.member(ch.GetNodeId()); m == nil || !m.IsLearner {
			continue
		}
		if st.RaftState != raft.StateLeader {
			return ErrNotLeader
		}
		var leaderMatch, learnerMatch uint64
		n.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			switch id {
			case n.id:
				leaderMatch = pr.Match
			case ch.GetNodeId():
				learnerMatch = pr.Match
			}
		})
		if float64(learnerMatch) < float64(leaderMatch)*learnerReadyPercent {
			return fmt.Errorf("%w: match %d, leader %d", ErrLearnerNotReady, learnerMatch, leaderMatch)
		}
	}
	err := n.rn.ProposeConfChange(cc)
	if errors.Is(err, raft.ErrProposalDropped) {
		if st.Lead == raft.None {
			return ErrNoLeader
		}
		return fmt.Errorf("%w (another conf change may be pending)", ErrProposalDropped)
	}
	return err
}

// AddMember adds a member with peerURLs (as a learner if learner is set),
// waits until the change is applied and returns the new member, whose ID is
// derived from the URLs, the cluster token and the time as etcd does.
func (n *Node) AddMember(ctx context.Context, name string, peerURLs []string, learner bool) (*Member, error) {
	now := time.Now()
	m := &Member{ID: MemberID(peerURLs, n.cfg.ClusterToken, &now), Name: name, PeerURLs: sortedCopy(peerURLs), IsLearner: learner}
	typ := raftpb.ConfChangeAddNode
	if learner {
		typ = raftpb.ConfChangeAddLearnerNode
	}
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(m.ID)}}}
	if err := n.proposeConfChange(ctx, cc, m); err != nil {
		return nil, err
	}
	return m, nil
}

// RemoveMember removes member id. A removed member stops itself.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(id)}}}
	return n.proposeConfChange(ctx, cc, nil)
}

// PromoteMember turns learner id into a voter; ErrLearnerNotReady while it
// is behind, ErrNotLearner if it is a voter already.
func (n *Node) PromoteMember(ctx context.Context, id uint64) error {
	m := n.members.Load().member(id)
	if m == nil {
		return fmt.Errorf("%w: %x", ErrMemberNotFound, id)
	}
	if !m.IsLearner {
		return fmt.Errorf("%w: %x", ErrNotLearner, id)
	}
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(id)}}}
	return n.proposeConfChange(ctx, cc, nil)
}

// UpdateMember replaces member id's peer URLs (and its name and client URLs
// when set); used both for etcd's MemberUpdate and to publish a member's
// name and client URLs after it starts.
func (n *Node) UpdateMember(ctx context.Context, id uint64, name string, peerURLs, clientURLs []string) error {
	m := &Member{ID: id, Name: name, PeerURLs: sortedCopy(peerURLs), ClientURLs: slices.Clone(clientURLs)}
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeUpdateNode.Enum(), NodeId: new(id)}}}
	return n.proposeConfChange(ctx, cc, m)
}
