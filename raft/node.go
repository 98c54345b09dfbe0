package raft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/engine"
)

// Node is one raft member: it owns a raft.RawNode on one goroutine (the raft
// goroutine) and applies committed entries on another (the apply goroutine),
// see doc.go for the loop and its invariants.
type Node struct {
	cfg     Config
	id      uint64
	lg      *zap.Logger
	applier Applier
	store   *logStore
	tr      *Transport

	// Proposals wait in propMu.queue; propSig (capacity 1) wakes the raft
	// goroutine when the queue turns non-empty. The goroutine takes the
	// whole queue at once and steps it into raft as one MsgProp.
	propMu struct {
		sync.Mutex
		queue []proposal
		spare []proposal
	}
	propSig chan struct{}
	recvc   chan *raftpb.Message
	actc    chan func()
	applyc  chan applyJob

	stopOnce sync.Once
	stopc    chan struct{}
	donec    chan struct{}
	wg       sync.WaitGroup
	fatal    atomic.Pointer[error]

	// Published by the raft and apply goroutines for lock-free readers.
	leader    atomic.Uint64
	term      atomic.Uint64
	commit    atomic.Uint64
	applied   atomic.Uint64
	clusterID atomic.Uint64
	members   atomic.Pointer[confRecord]
	removed   atomic.Bool
	// soleVoter: this member is the configuration's only voter.
	// commitTerm: the term of the newest committed entry.
	soleVoter  atomic.Bool
	commitTerm atomic.Uint64

	notifyMu struct {
		sync.Mutex
		leaderChanged chan struct{} // closed and replaced on every leader change
		appliedC      chan struct{} // closed and replaced after every apply batch
	}

	// confWaiters maps a conf change's request id to its proposer. The apply
	// goroutine answers once the change is applied (or rejected).
	confMu      sync.Mutex
	confWaiters map[uint64]chan error
	reqSeq      atomic.Uint64

	readRounds atomic.Int64 // raft ReadIndex rounds started (tests, metrics)

	// Owned by the raft goroutine.
	rn            *raft.RawNode
	conf          confHistory
	reads         readBatcher
	pendingSnaps  map[uint64]receivedSnap
	lastCompact   uint64    // applied index at the last compaction check
	started       time.Time // when Start ran (advanceElection)
	ticksAdvanced bool      // the election clock was advanced once (advanceElection)
}

type proposal struct {
	data []byte
	done func(error) // on the raft goroutine: nil once raft took data, or why not
}

type receivedSnap struct {
	path string
	rec  *confRecord
}

// applyJob is one hand-off from the raft goroutine to the apply goroutine.
// Jobs are processed strictly in order.
type applyJob struct {
	restore *restoreMarker  // restore the Applier from this file first
	entries []*raftpb.Entry // then apply these
	results []confResult    // then answer these conf change proposers
}

type confResult struct {
	reqID uint64
	err   error
}

// Start opens the log in cfg.LogEngine, bootstraps it when it is empty
// (ClusterState new) and starts the raft and apply goroutines. tr must be
// serving on this member's peer URL (or about to); Start attaches the node
// to it. Stop the node with Stop.
func Start(c Config, applier Applier, tr *Transport) (*Node, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, id: cfg.MemberID, lg: cfg.Logger.With(zap.String("member", fmt.Sprintf("%x", cfg.MemberID))),
		applier: applier, tr: tr,
		propSig:      make(chan struct{}, 1),
		recvc:        make(chan *raftpb.Message, 4096),
		actc:         make(chan func(), 256),
		applyc:       make(chan applyJob, 64),
		stopc:        make(chan struct{}),
		donec:        make(chan struct{}),
		confWaiters:  make(map[uint64]chan error),
		pendingSnaps: make(map[uint64]receivedSnap),
	}
	n.notifyMu.leaderChanged = make(chan struct{})
	n.notifyMu.appliedC = make(chan struct{})
	n.reqSeq.Store(uint64(time.Now().UnixNano()))
	n.started = time.Now()

	store, hist, err := openLogStore(cfg.LogEngine)
	if err != nil {
		return nil, err
	}
	n.store = store
	store.onSync = cfg.OnLogSync
	if err := n.finishInterruptedRestore(); err != nil {
		return nil, err
	}
	if cfg.ForceNewCluster && hist != nil {
		if err := forceNewCluster(store, hist, n.id, applier.AppliedIndex(), n.lg); err != nil {
			return nil, err
		}
	}
	hs := store.hardState()
	last, _ := store.LastIndex()
	fresh := hist == nil && last == 0 && raft.IsEmptyHardState(hs)

	var peers []raft.Peer
	switch {
	case fresh && cfg.ClusterState == ClusterStateNew:
		ms := cfg.InitialMembers()
		ids := make([]uint64, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
			ctx, _ := json.Marshal(&confChangeContext{Member: m})
			peers = append(peers, raft.Peer{ID: m.ID, Context: ctx})
		}
		if !containsID(ids, n.id) {
			return nil, fmt.Errorf("%w: member %x is not in the initial cluster", ErrBadConfig, n.id)
		}
		hist = confHistory{{ClusterID: ClusterID(ids)}}
	case fresh && c.MemberID == 0:
		// A member added at runtime has a time-salted ID that cannot be
		// derived from the configuration: without it this member would
		// answer to an ID the cluster does not know.
		return nil, fmt.Errorf("%w: joining an existing cluster needs the member ID that adding the member returned", ErrBadConfig)
	case fresh:
		hist = confHistory{{}}
	case hist == nil:
		return nil, fmt.Errorf("raft: log has entries but no membership record: %w", engine.ErrCorrupt)
	}
	n.conf = hist
	n.storeMembers(hist.current())
	n.clusterID.Store(hist.current().ClusterID)

	applied := applier.AppliedIndex()
	snapIdx := store.snapshotIndex()
	if applied < snapIdx {
		return nil, fmt.Errorf("raft: applier state at index %d is behind the log's compaction point %d "+
			"(DurableIndex was not respected)", applied, snapIdx)
	}
	n.applied.Store(applied)
	n.lastCompact = applied
	rcfg := &raft.Config{
		ID:                        n.id,
		ElectionTick:              cfg.electionTicks(),
		HeartbeatTick:             1,
		Storage:                   store,
		Applied:                   max(min(applied, hs.GetCommit()), snapIdx),
		MaxSizePerMsg:             cfg.MaxSizePerMsg,
		MaxInflightMsgs:           cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   !cfg.DisablePreVote,
		StepDownOnRemoval:         true,
		Logger:                    &zapRaftLogger{n.lg.Sugar()},
	}
	rn, err := raft.NewRawNode(rcfg)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	if peers != nil {
		if err := rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("raft: bootstrap: %w", err)
		}
	}
	n.rn = rn
	store.peerSnapshot = n.peerSnapshot
	n.commit.Store(hs.GetCommit())
	n.term.Store(hs.GetTerm())

	// Peers we know of: the stored membership, plus (on a fresh start) the
	// initial cluster, so that a joining member can answer the leader
	// before the log has told it who is who.
	for _, m := range hist.current().Members {
		if m.ID != n.id {
			tr.addPeer(m.ID, m.PeerURLs)
		}
	}
	if fresh {
		for name, urls := range cfg.InitialCluster {
			if name != cfg.Name {
				tr.addPeer(MemberID(urls, cfg.ClusterToken, nil), urls)
			}
		}
	}
	tr.attach(n)

	n.lg.Info("raft node started", zap.Bool("bootstrap", peers != nil), zap.Uint64("applied", applied),
		zap.Uint64("commit", hs.GetCommit()), zap.Uint64("term", hs.GetTerm()), zap.Uint64("last", last),
		zap.Uint64("compacted", snapIdx))
	n.wg.Add(2)
	go n.run()
	go n.applyLoop()
	go func() {
		n.wg.Wait()
		close(n.donec)
	}()
	return n, nil
}

// finishInterruptedRestore redoes a snapshot restore that a crash cut short
// (the marker is written with the snapshot metadata and deleted after the
// Applier restored).
func (n *Node) finishInterruptedRestore() error {
	b, err := n.cfg.LogEngine.Get(engine.RaftLog, keyRestore)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("raft: read restore marker: %w", err)
	}
	var mk restoreMarker
	if err := json.Unmarshal(b, &mk); err != nil {
		return fmt.Errorf("raft: restore marker: %w", err)
	}
	if n.applier.AppliedIndex() < mk.Index {
		n.lg.Warn("redoing an interrupted snapshot restore", zap.String("file", mk.Path), zap.Uint64("index", mk.Index))
		if err := n.restoreFrom(&mk); err != nil {
			return err
		}
	}
	return n.clearRestoreMarker(&mk)
}

func (n *Node) restoreFrom(mk *restoreMarker) error {
	f, err := os.Open(mk.Path)
	if err != nil {
		return fmt.Errorf("raft: open snapshot %s: %w", mk.Path, err)
	}
	defer f.Close()
	sr, _, _, err := openSnapReader(f)
	if err != nil {
		return fmt.Errorf("raft: snapshot %s: %w", mk.Path, err)
	}
	if err := n.applier.Restore(sr); err != nil {
		return fmt.Errorf("raft: restore snapshot %s: %w", mk.Path, err)
	}
	return nil
}

func (n *Node) clearRestoreMarker(mk *restoreMarker) error {
	b := n.cfg.LogEngine.NewBatch()
	defer b.Close()
	b.Delete(engine.RaftLog, keyRestore)
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("raft: clear restore marker: %w", err)
	}
	os.Remove(mk.Path)
	return nil
}

// run is the raft goroutine.
func (n *Node) run() {
	defer n.wg.Done()
	// The first tick comes after a random part of the interval. raft's
	// randomized election timeout is a whole number of ticks, so members
	// started together, whose tickers would otherwise fire within a
	// millisecond of each other, stood for election at the same moment
	// whenever two followers drew the same number (one election in ten at
	// default timings) and split the vote: another round, 1-2 s more.
	first := time.NewTimer(rand.N(n.cfg.HeartbeatInterval))
	defer first.Stop()
	tickc := first.C
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case <-tickc:
			if ticker == nil {
				ticker = time.NewTicker(n.cfg.HeartbeatInterval)
				tickc = ticker.C
			}
			n.rn.Tick()
			n.advanceElection()
			n.tickReads()
		case <-n.propSig:
			n.takeProposals()
		case m := <-n.recvc:
			n.step(m)
		case f := <-n.actc:
			f()
		case <-n.stopc:
			return
		}
		// Advance may leave more work (on a single member, the leader's own
		// acknowledgement commits entries at Advance): keep handling Readys
		// until none is left, taking everything queued before each one so
		// that all proposals that arrived during the previous fsync share
		// the next.
		for {
			n.drain()
			if !n.rn.HasReady() {
				break
			}
			if err := n.handleReady(); err != nil {
				if !errors.Is(err, errStopping) {
					n.fail(err)
				}
				return
			}
			if n.removed.Load() {
				break
			}
		}
		if n.removed.Load() {
			n.lg.Warn("this member has been removed from the cluster; stopping")
			n.stopAsync()
			return
		}
	}
}

// advanceElection shortens the first election after a start, as etcd's
// --initial-election-tick-advance does (raft goroutine, once per tick):
//
//   - a member that is its configuration's only voter and knows no leader
//     stands for election at once, instead of after raft's randomized
//     election timeout (1-2 s at default timings): nobody else can lead.
//     It waits until every committed entry is applied, as raft refuses to
//     campaign before its conf changes are;
//   - any other member, within electionAdvanceWindow of its start, once it
//     hears from enough voters to make a quorum with itself and still
//     knows no leader, advances its election clock to two ticks short of
//     the timeout, once: a leader's heartbeat (every tick) arrives well
//     within those two, and otherwise a leader is elected about a timeout
//     sooner. Pre-vote keeps a member that advanced from disturbing a
//     leader it had not heard yet.
func (n *Node) advanceElection() {
	if n.cfg.DisableElectionTickAdvance || n.leader.Load() != 0 {
		return
	}
	if n.soleVoter.Load() {
		if n.applied.Load() >= n.commit.Load() {
			if err := n.rn.Campaign(); err != nil {
				n.lg.Warn("campaign as the only voter", zap.Error(err))
			}
		}
		return
	}
	if n.ticksAdvanced || time.Since(n.started) > electionAdvanceWindow {
		return
	}
	voters := n.members.Load().confState().GetVoters()
	heard := 0
	for _, v := range voters {
		if v == n.id || !n.tr.ActiveSince(v).IsZero() {
			heard++
		}
	}
	if !slices.Contains(voters, n.id) || heard <= len(voters)/2 {
		return
	}
	n.ticksAdvanced = true
	ticks := n.cfg.electionTicks() - 2
	n.lg.Info("advancing the election clock: peers heard, no leader yet", zap.Int("ticks", ticks),
		zap.Int("voters-heard", heard), zap.Int("voters", len(voters)))
	for range ticks {
		n.rn.Tick()
	}
}

// electionAdvanceWindow is how long after its start a member may advance
// its election clock (etcd waits as long for its peers' connections).
const electionAdvanceWindow = 5 * time.Second

// errStopping ends the raft goroutine when Stop interrupts a Ready.
var errStopping = errors.New("raft: stopping")

// drain takes what is already queued, without blocking.
func (n *Node) drain() {
	n.takeProposals()
	for i := 0; i < 8192; i++ {
		select {
		case m := <-n.recvc:
			n.step(m)
		case f := <-n.actc:
			f()
		default:
			return
		}
	}
}

// takeProposals steps every queued proposal into raft as one MsgProp (one
// raft step and, on a follower, one forwarded message for the lot) and
// tells each proposer whether raft took it.
func (n *Node) takeProposals() {
	n.propMu.Lock()
	q := n.propMu.queue
	if len(q) == 0 {
		n.propMu.Unlock()
		return
	}
	// Double buffering: producers fill spare while q is stepped; q
	// becomes the spare afterwards.
	n.propMu.queue, n.propMu.spare = n.propMu.spare[:0], nil
	n.propMu.Unlock()
	ents := make([]*raftpb.Entry, len(q))
	for i := range q {
		ents[i] = &raftpb.Entry{Data: q[i].data}
	}
	err := n.rn.Step(&raftpb.Message{Type: raftpb.MsgProp.Enum(), From: new(n.id), Entries: ents})
	if errors.Is(err, raft.ErrProposalDropped) {
		if n.rn.BasicStatus().Lead == raft.None {
			err = ErrNoLeader
		} else {
			err = ErrProposalDropped
		}
	}
	for i := range q {
		q[i].done(err)
		q[i] = proposal{}
	}
	n.propMu.Lock()
	n.propMu.spare = q[:0]
	n.propMu.Unlock()
}

func (n *Node) step(m *raftpb.Message) {
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		n.lg.Debug("step failed", zap.Stringer("type", m.GetType()), zap.Uint64("from", m.GetFrom()), zap.Error(err))
	}
}

// mustWaitForPersist reports whether m may only be sent after this Ready's
// state is durable. These are exactly the types raft itself defers
// (raft.msgsAfterAppend): acknowledgements of appended entries and votes.
// Everything else — notably the leader's MsgApp — goes out before the local
// fsync, which overlaps the leader's disk write with the followers' (Raft
// thesis §10.2.1); the leader does not count itself until Advance.
func mustWaitForPersist(t raftpb.MessageType) bool {
	switch t {
	case raftpb.MsgAppResp, raftpb.MsgVoteResp, raftpb.MsgPreVoteResp:
		return true
	}
	return false
}

func (n *Node) handleReady() error {
	rd := n.rn.Ready()
	if rd.SoftState != nil {
		n.leaderUpdate(rd.SoftState.Lead)
	}
	if rd.HardState != nil {
		n.term.Store(rd.HardState.GetTerm())
		n.commit.Store(rd.HardState.GetCommit())
	}
	if k := len(rd.CommittedEntries); k > 0 {
		n.commitTerm.Store(rd.CommittedEntries[k-1].GetTerm())
	}

	// 1. Messages that do not depend on this Ready's persistence.
	var after []*raftpb.Message
	for _, m := range rd.Messages {
		if mustWaitForPersist(m.GetType()) {
			after = append(after, m)
			continue
		}
		n.send(m)
	}

	// 2. One batch: HardState, entries, snapshot metadata, membership.
	w := &logWrite{hs: rd.HardState, entries: rd.Entries, sync: rd.MustSync}
	var job applyJob
	if !raft.IsEmptySnap(rd.Snapshot) {
		n.installSnapshot(rd.Snapshot, w, &job)
	}
	job.entries, job.results = n.applyConfChanges(rd.CommittedEntries, w)
	if err := n.store.save(w); err != nil {
		return err
	}

	// 3. Messages that acknowledge what is now durable.
	for _, m := range after {
		n.send(m)
	}

	// 4. Committed entries to the apply goroutine, as one slice.
	if job.restore != nil || len(job.entries) > 0 || len(job.results) > 0 {
		select {
		case n.applyc <- job:
		case <-n.stopc:
			return errStopping
		}
	}
	n.handleReadStates(rd.ReadStates)
	n.rn.Advance(rd)
	return n.maybeCompact()
}

func (n *Node) send(m *raftpb.Message) {
	if m.GetType() == raftpb.MsgSnap {
		idx := m.GetSnapshot().GetMetadata().GetIndex()
		rec := n.conf.at(idx).clone()
		rec.Index = idx
		n.tr.sendSnapshot(m, rec)
		return
	}
	n.tr.send(m)
}

func (n *Node) leaderUpdate(lead uint64) {
	old := n.leader.Swap(lead)
	if old == lead {
		return
	}
	n.lg.Info("leader changed", zap.String("from", fmt.Sprintf("%x", old)),
		zap.String("to", fmt.Sprintf("%x", lead)), zap.Uint64("term", n.rn.BasicStatus().GetTerm()))
	n.notifyMu.Lock()
	close(n.notifyMu.leaderChanged)
	n.notifyMu.leaderChanged = make(chan struct{})
	n.notifyMu.Unlock()
	if n.cfg.OnLeaderChange != nil {
		n.cfg.OnLeaderChange(old, lead, n.rn.BasicStatus().GetTerm())
	}
	// A read round in flight may have been lost with the old leader.
	n.restartReadRound()
}

// installSnapshot handles a snapshot raft accepted from the leader: the log
// is replaced (in this Ready's batch, with a restore marker) and the Applier
// restores from the saved file, ordered before any later entry.
func (n *Node) installSnapshot(s *raftpb.Snapshot, w *logWrite, job *applyJob) {
	md := s.GetMetadata()
	idx := md.GetIndex()
	rs, ok := n.pendingSnaps[idx]
	if !ok {
		panic(fmt.Sprintf("raft: invariant broken: raft installed snapshot %d that was not received through the transport", idx))
	}
	delete(n.pendingSnaps, idx)
	for i, other := range n.pendingSnaps {
		os.Remove(other.path)
		delete(n.pendingSnaps, i)
	}
	rec := rs.rec.clone()
	rec.Index = idx
	rec.ConfState = mustMarshal(md.GetConfState())
	if rec.ClusterID == 0 {
		rec.ClusterID = n.clusterID.Load()
	}
	n.conf = confHistory{rec}
	n.storeMembers(rec)
	if n.clusterID.Load() == 0 {
		n.clusterID.Store(rec.ClusterID)
	}
	for _, m := range rec.Members {
		if m.ID != n.id {
			n.tr.addPeer(m.ID, m.PeerURLs)
		}
	}
	mk := &restoreMarker{Path: rs.path, Index: idx}
	w.snap = md
	w.restore = mk
	w.conf = n.conf
	job.restore = mk
	n.lg.Info("installing snapshot from leader", zap.Uint64("index", idx), zap.Uint64("term", md.GetTerm()),
		zap.String("file", rs.path))
}

// storeMembers publishes the membership rec (raft goroutine).
func (n *Node) storeMembers(rec *confRecord) {
	n.members.Store(rec)
	cs := rec.confState()
	n.soleVoter.Store(len(cs.GetVoters()) == 1 && cs.GetVoters()[0] == n.id && len(cs.GetVotersOutgoing()) == 0)
}

// applyConfChanges applies the conf changes among ents to raft and to the
// membership, and returns the entries for the Applier (a rejected change
// becomes an empty entry) plus the proposers to answer.
func (n *Node) applyConfChanges(ents []*raftpb.Entry, w *logWrite) ([]*raftpb.Entry, []confResult) {
	var out []*raftpb.Entry
	var results []confResult
	copied := false
	for i, e := range ents {
		t := e.GetType()
		if t != raftpb.EntryConfChange && t != raftpb.EntryConfChangeV2 {
			continue
		}
		if e.GetIndex() <= n.conf.current().Index {
			continue // replayed after a restart: already in the stored ConfState
		}
		cc, ctx, err := decodeConfChange(e)
		if err == nil {
			err = validateConfChange(n.conf.current(), cc, ctx)
		}
		if err != nil {
			n.lg.Warn("rejecting conf change", zap.Uint64("index", e.GetIndex()), zap.Error(err))
			// Cancel: raft must still see a conf change; NodeId 0 is its no-op.
			n.rn.ApplyConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(0))})
			if !copied {
				out, copied = append([]*raftpb.Entry(nil), ents...), true
			}
			out[i] = &raftpb.Entry{Index: new(e.GetIndex()), Term: new(e.GetTerm()), Type: raftpb.EntryNormal.Enum()}
			if ctx != nil && ctx.ReqID != 0 {
				results = append(results, confResult{reqID: ctx.ReqID, err: fmt.Errorf("%w: %w", ErrConfChangeFailed, err)})
			}
			continue
		}
		cs := n.rn.ApplyConfChange(cc)
		prev := n.conf.current()
		rec := applyMembership(prev, cc, ctx, e.GetIndex(), cs)
		n.conf = append(n.conf, rec)
		w.conf = n.conf
		n.storeMembers(rec)
		n.syncPeers(prev, rec)
		n.lg.Info("applied conf change", zap.Uint64("index", e.GetIndex()),
			zap.String("change", raftpb.ConfChangesToString(cc.GetChanges())), zap.String("conf", raft.DescribeConfState(cs)))
		if ctx.ReqID != 0 {
			results = append(results, confResult{reqID: ctx.ReqID})
		}
	}
	if !copied {
		out = ents
	}
	return out, results
}

// syncPeers updates the transport after a membership change.
func (n *Node) syncPeers(prev, next *confRecord) {
	for _, m := range next.Members {
		if m.ID != n.id && len(m.PeerURLs) > 0 {
			n.tr.addPeer(m.ID, m.PeerURLs)
		}
	}
	for _, m := range prev.Members {
		if next.member(m.ID) == nil {
			if m.ID == n.id {
				n.removed.Store(true)
				continue
			}
			n.tr.removePeer(m.ID)
		}
	}
}

// peerSnapshot is raft's Storage.Snapshot: the metadata of the snapshot
// sent to a follower whose next entry was compacted away. Rather than the
// compaction point it names the newest index the Applier has applied (the
// streamed state is at least that new), with the ConfState in force there.
// NB: this matters for a member added after the last compaction: a snapshot
// whose ConfState predates its addition would be refused by its raft.
func (n *Node) peerSnapshot() (*raftpb.Snapshot, error) {
	idx := max(min(n.applied.Load(), n.commit.Load()), n.store.snapshotIndex())
	term, err := n.store.Term(idx)
	if err != nil {
		return nil, err
	}
	cs := n.conf.at(idx).confState()
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(idx), Term: new(term), ConfState: cs}}, nil
}

// maybeCompact compacts the log once SnapshotCount entries were applied
// since the last compaction, keeping SnapshotCatchUpEntries, and never past
// what the Applier has made durable.
func (n *Node) maybeCompact() error {
	applied := n.applied.Load()
	if applied < n.lastCompact+n.cfg.SnapshotCount {
		return nil
	}
	n.lastCompact = applied
	if applied <= n.cfg.SnapshotCatchUpEntries {
		return nil
	}
	target := min(applied-n.cfg.SnapshotCatchUpEntries, n.applier.DurableIndex(), n.commit.Load())
	if target <= n.store.snapshotIndex() {
		return nil
	}
	rec := n.conf.at(target)
	n.conf = n.conf.prune(target)
	if err := n.store.compact(target, rec.confState(), n.conf); err != nil {
		return err
	}
	n.lg.Info("compacted raft log", zap.Uint64("index", target), zap.Uint64("applied", applied))
	return nil
}

// applyLoop is the apply goroutine.
func (n *Node) applyLoop() {
	defer n.wg.Done()
	for {
		var job applyJob
		select {
		case job = <-n.applyc:
		case <-n.stopc:
			return
		}
		if job.restore != nil {
			if err := n.restoreFrom(job.restore); err != nil {
				n.fail(err)
				return
			}
			if err := n.clearRestoreMarker(job.restore); err != nil {
				n.fail(err)
				return
			}
			n.applied.Store(n.applier.AppliedIndex())
		}
		ents := job.entries
		applied := n.applied.Load()
		for len(ents) > 0 && ents[0].GetIndex() <= applied {
			ents = ents[1:]
		}
		if len(ents) > 0 {
			if err := n.applier.Apply(ents); err != nil {
				n.fail(fmt.Errorf("raft: apply entries [%d, %d]: %w", ents[0].GetIndex(), ents[len(ents)-1].GetIndex(), err))
				return
			}
			n.applied.Store(ents[len(ents)-1].GetIndex())
		}
		n.confMu.Lock()
		for _, r := range job.results {
			if ch, ok := n.confWaiters[r.reqID]; ok {
				ch <- r.err
				delete(n.confWaiters, r.reqID)
			}
		}
		n.confMu.Unlock()
		n.notifyMu.Lock()
		close(n.notifyMu.appliedC)
		n.notifyMu.appliedC = make(chan struct{})
		n.notifyMu.Unlock()
	}
}

// fail stops the node because of an error on the durability path.
func (n *Node) fail(err error) {
	if n.fatal.CompareAndSwap(nil, &err) {
		n.lg.Error("raft node failed; stopping", zap.Error(err))
	}
	n.stopAsync()
}

func (n *Node) stopAsync() {
	n.stopOnce.Do(func() { close(n.stopc) })
}

// Stop stops the node and waits for its goroutines. It does not close the
// Transport (the caller owns it). Stop is idempotent.
func (n *Node) Stop() {
	n.stopAsync()
	<-n.donec
	n.tr.detach(n)
}

// Done is closed when the node has stopped (Stop, removal or a fatal error).
func (n *Node) Done() <-chan struct{} { return n.donec }

// Err returns the fatal error that stopped the node, ErrRemoved if it was
// removed from the cluster, or nil.
func (n *Node) Err() error {
	if p := n.fatal.Load(); p != nil {
		return *p
	}
	if n.removed.Load() {
		return ErrRemoved
	}
	return nil
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// zapRaftLogger adapts zap to raft.Logger.
type zapRaftLogger struct{ *zap.SugaredLogger }

func (l *zapRaftLogger) Warning(v ...any)                 { l.Warn(v...) }
func (l *zapRaftLogger) Warningf(format string, v ...any) { l.Warnf(format, v...) }

var _ raft.Logger = (*zapRaftLogger)(nil)

// receive hands a message from the transport to the raft goroutine.
func (n *Node) receive(ctx context.Context, m *raftpb.Message) error {
	select {
	case n.recvc <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopc:
		return ErrStopped
	}
}

// receiveSnapshot steps a MsgSnap whose state was saved (and verified) at
// path; if raft accepts it, the next Ready installs it (installSnapshot).
func (n *Node) receiveSnapshot(ctx context.Context, m *raftpb.Message, rec *confRecord, path string) error {
	idx := m.GetSnapshot().GetMetadata().GetIndex()
	f := func() {
		if old, ok := n.pendingSnaps[idx]; ok && old.path != path {
			os.Remove(old.path)
		}
		n.pendingSnaps[idx] = receivedSnap{path: path, rec: rec}
		n.step(m)
	}
	select {
	case n.actc <- f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopc:
		return ErrStopped
	}
}

// reportUnreachable never blocks (it may run on the raft goroutine itself):
// a lost report only delays raft's probing.
func (n *Node) reportUnreachable(id uint64) {
	select {
	case n.actc <- func() { n.rn.ReportUnreachable(id) }:
	default:
	}
}

// reportSnapshot must reach raft (the follower's progress waits for it), so
// it is delivered from its own goroutine when the queue is full.
func (n *Node) reportSnapshot(id uint64, ok bool) {
	st := raft.SnapshotFinish
	if !ok {
		st = raft.SnapshotFailure
	}
	f := func() { n.rn.ReportSnapshot(id, st) }
	select {
	case n.actc <- f:
	default:
		go func() {
			select {
			case n.actc <- f:
			case <-n.stopc:
			}
		}()
	}
}

// removedByPeer is called when a peer refuses our stream because the
// cluster removed us (we may have missed the conf change itself).
func (n *Node) removedByPeer(peer uint64) {
	if n.removed.CompareAndSwap(false, true) {
		n.lg.Warn("peer reports this member was removed from the cluster; stopping",
			zap.String("peer", fmt.Sprintf("%x", peer)))
		n.stopAsync()
	}
}
