package raft

import (
	"fmt"
	"math"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// forceNewCluster rewrites the log of a member whose cluster lost its
// quorum so that it starts as the only voter of the same cluster (etcd's
// --force-new-cluster): the entries after the last commit index the member
// knows are dropped (they may never have been committed), and conf changes
// are appended and marked committed that promote this member if it is a
// learner and remove every other member. The node applies them like any
// conf change when it starts; the cluster ID, the data and the revision
// history stay. applied is the Applier's index.
//
// A member that already is the only member is left as it is: every entry
// in its log is committed by its own vote, so none may be dropped (with
// the flag left on across restarts, the second start changes nothing).
func forceNewCluster(store *logStore, hist confHistory, id, applied uint64, lg *zap.Logger) error {
	hs := store.hardState()
	commit := hs.GetCommit()
	if applied > commit {
		return fmt.Errorf("%w: applied index %d is past the log's commit index %d", ErrBadConfig, applied, commit)
	}
	cur := hist.current()
	if cur.isRemoved(id) {
		return fmt.Errorf("%w (member %x): --force-new-cluster needs the data of a current member", ErrRemoved, id)
	}
	// Conf changes committed after the stored history are applied when the
	// node starts (a forced start that crashed before applying its own
	// changes left some): the membership they lead to is the one to shrink.
	learners, err := committedMembers(store, cur, commit)
	if err != nil {
		return err
	}
	learner, ok := learners[id]
	if !ok {
		return fmt.Errorf("%w: member %x is not in the membership its log records", ErrBadConfig, id)
	}
	var others []uint64
	for x := range learners {
		if x != id {
			others = append(others, x)
		}
	}
	slices.Sort(others)
	if len(others) == 0 && !learner {
		lg.Info("--force-new-cluster: this member already is the cluster's only member; nothing to change",
			zap.Uint64("commit", commit))
		return nil
	}

	var changes []raftpb.ConfChangeSingle
	if learner {
		// An AddNode without a member record promotes a learner.
		changes = append(changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(id)})
	}
	for _, x := range others {
		changes = append(changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(x)})
	}
	// One change per entry: raft applies a single voter change without a
	// joint configuration.
	term := hs.GetTerm()
	ents := make([]*raftpb.Entry, 0, len(changes))
	for i := range changes {
		cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{&changes[i]}}
		data, err := proto.Marshal(cc)
		if err != nil {
			return fmt.Errorf("raft: encode conf change: %w", err)
		}
		ents = append(ents, &raftpb.Entry{Index: new(commit + uint64(i) + 1), Term: new(term),
			Type: raftpb.EntryConfChangeV2.Enum(), Data: data})
	}
	last, _ := store.LastIndex()
	next := proto.Clone(hs).(*raftpb.HardState)
	next.Commit = new(ents[len(ents)-1].GetIndex())
	if err := store.save(&logWrite{hs: next, entries: ents, sync: true}); err != nil {
		return err
	}
	lg.Warn("--force-new-cluster: restarting as the cluster's only member",
		zap.String("cluster", fmt.Sprintf("%x", cur.ClusterID)), zap.Uint64("commit", commit),
		zap.Uint64("dropped-uncommitted-entries", last-commit), zap.Int("removed-members", len(others)),
		zap.Bool("promoted-from-learner", learner))
	return nil
}

// committedMembers returns the members as of commit, each with whether
// it is a learner: cur's, changed by the committed conf changes in
// (cur.Index, commit]. A change the apply will refuse may be counted; the
// forced changes that follow from it are then refused too, and change
// nothing.
func committedMembers(store *logStore, cur *confRecord, commit uint64) (map[uint64]bool, error) {
	learners := map[uint64]bool{}
	for _, m := range cur.Members {
		learners[m.ID] = m.IsLearner
	}
	lo := max(cur.Index, store.snapshotIndex()) + 1
	if lo > commit {
		return learners, nil
	}
	ents, err := store.Entries(lo, commit+1, math.MaxUint64)
	if err != nil {
		return nil, fmt.Errorf("raft: read committed entries for --force-new-cluster: %w", err)
	}
	for _, e := range ents {
		if t := e.GetType(); t != raftpb.EntryConfChange && t != raftpb.EntryConfChangeV2 {
			continue
		}
		cc, _, err := decodeConfChange(e)
		if err != nil {
			return nil, err
		}
		for _, ch := range cc.GetChanges() {
			x := ch.GetNodeId()
			switch ch.GetType() {
			case raftpb.ConfChangeAddNode:
				learners[x] = false
			case raftpb.ConfChangeAddLearnerNode:
				if _, ok := learners[x]; !ok {
					learners[x] = true
				}
			case raftpb.ConfChangeRemoveNode:
				delete(learners, x)
			}
		}
	}
	return learners, nil
}
