package raft

import (
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Member is one cluster member as the replicated membership records it.
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

func (m *Member) clone() *Member {
	c := *m
	c.PeerURLs = slices.Clone(m.PeerURLs)
	c.ClientURLs = slices.Clone(m.ClientURLs)
	return &c
}

// confChangeContext travels in ConfChangeV2.Context: the member record the
// change refers to and the proposer's request id (so the proposer learns when
// its change was applied, or rejected).
type confChangeContext struct {
	ReqID  uint64  `json:"req,omitempty"`
	Member *Member `json:"member,omitempty"`
	// MaxLearners is the proposer's learner limit when it is not
	// DefaultMaxLearners (validateConfChange must decide alike everywhere,
	// so the limit is replicated with the change).
	MaxLearners int `json:"maxLearners,omitempty"`
}

// confRecord is the membership and raft ConfState as of log index Index (the
// index of the conf change that produced it, or of the snapshot it came with).
// The raft package keeps the records since the last snapshot (confHistory) so
// that a snapshot at any index carries the membership valid at that index.
type confRecord struct {
	Index     uint64    `json:"index"`
	ConfState []byte    `json:"confState,omitempty"` // raftpb.ConfState, proto-encoded
	Members   []*Member `json:"members"`
	Removed   []uint64  `json:"removed,omitempty"`
	ClusterID uint64    `json:"clusterID,omitempty"`
}

func (r *confRecord) confState() *raftpb.ConfState {
	cs := &raftpb.ConfState{}
	if len(r.ConfState) > 0 {
		if err := proto.Unmarshal(r.ConfState, cs); err != nil {
			panic(fmt.Sprintf("raft: stored ConfState does not decode: %v", err))
		}
	}
	return cs
}

func (r *confRecord) clone() *confRecord {
	c := &confRecord{Index: r.Index, ConfState: slices.Clone(r.ConfState),
		Removed: slices.Clone(r.Removed), ClusterID: r.ClusterID}
	for _, m := range r.Members {
		c.Members = append(c.Members, m.clone())
	}
	return c
}

func (r *confRecord) member(id uint64) *Member {
	for _, m := range r.Members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

func (r *confRecord) learners() int {
	n := 0
	for _, m := range r.Members {
		if m.IsLearner {
			n++
		}
	}
	return n
}

func (r *confRecord) isRemoved(id uint64) bool { return slices.Contains(r.Removed, id) }

// confHistory is the list of confRecords since the last log compaction,
// oldest first; the last one is current. Owned by the raft goroutine.
type confHistory []*confRecord

func (h confHistory) current() *confRecord { return h[len(h)-1] }

// at returns the record in force at log index i.
func (h confHistory) at(i uint64) *confRecord {
	for j := len(h) - 1; j >= 0; j-- {
		if h[j].Index <= i {
			return h[j]
		}
	}
	return h[0]
}

// prune drops records superseded at or before index i (the new compaction point).
func (h confHistory) prune(i uint64) confHistory {
	k := 0
	for j := range h {
		if h[j].Index <= i {
			k = j
		}
	}
	return slices.Clone(h[k:])
}

// validateConfChange checks one conf change against membership rec, the
// same way on every member (it decides whether the change is cancelled at
// apply time, so it must depend only on replicated state).
func validateConfChange(rec *confRecord, cc *raftpb.ConfChangeV2, ctx *confChangeContext) error {
	for _, ch := range cc.GetChanges() {
		id := ch.GetNodeId()
		m := rec.member(id)
		if rec.isRemoved(id) {
			return fmt.Errorf("%w: %x", ErrMemberRemoved, id)
		}
		switch ch.GetType() {
		case raftpb.ConfChangeAddNode:
			// Adding an existing voter is the idempotent bootstrap case;
			// adding an existing learner is a promotion, which carries no
			// member record. One that does is a MemberAdd whose ID (its
			// peer URLs and the second it was asked in) is the learner's:
			// refused, as etcd does, rather than taken for a promotion.
			if m != nil && m.IsLearner && ctx.Member != nil {
				return fmt.Errorf("%w: %x", ErrMemberExists, id)
			}
			if m == nil && ctx.Member != nil {
				if err := checkURLsFree(rec, id, ctx.Member.PeerURLs); err != nil {
					return err
				}
			}
		case raftpb.ConfChangeAddLearnerNode:
			if m != nil {
				return fmt.Errorf("%w: %x", ErrMemberExists, id)
			}
			if ctx.Member != nil {
				if err := checkURLsFree(rec, id, ctx.Member.PeerURLs); err != nil {
					return err
				}
			}
			limit := DefaultMaxLearners
			if ctx.MaxLearners > 0 {
				limit = ctx.MaxLearners
			}
			if n := rec.learners(); n >= limit {
				return fmt.Errorf("%w: %d of at most %d", ErrTooManyLearners, n, limit)
			}
		case raftpb.ConfChangeRemoveNode:
			if m == nil {
				return fmt.Errorf("%w: %x", ErrMemberNotFound, id)
			}
		case raftpb.ConfChangeUpdateNode:
			if m == nil {
				return fmt.Errorf("%w: %x", ErrMemberNotFound, id)
			}
			if ctx.Member != nil {
				if err := checkURLsFree(rec, id, ctx.Member.PeerURLs); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkURLsFree(rec *confRecord, id uint64, urls []string) error {
	for _, m := range rec.Members {
		if m.ID == id {
			continue
		}
		for _, u := range urls {
			if slices.Contains(m.PeerURLs, u) {
				return fmt.Errorf("%w: %s (member %x)", ErrPeerURLExists, u, m.ID)
			}
		}
	}
	return nil
}

// applyMembership returns rec changed by cc (already validated), as the new
// record at index.
func applyMembership(rec *confRecord, cc *raftpb.ConfChangeV2, ctx *confChangeContext, index uint64, cs *raftpb.ConfState) *confRecord {
	next := rec.clone()
	next.Index = index
	b, err := proto.Marshal(cs)
	if err != nil {
		panic(fmt.Sprintf("raft: ConfState does not encode: %v", err))
	}
	next.ConfState = b
	for _, ch := range cc.GetChanges() {
		id := ch.GetNodeId()
		m := next.member(id)
		switch ch.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			learner := ch.GetType() == raftpb.ConfChangeAddLearnerNode
			if m != nil {
				m.IsLearner = learner && m.IsLearner
				continue
			}
			nm := &Member{ID: id, IsLearner: learner}
			if ctx.Member != nil && ctx.Member.ID == id {
				nm = ctx.Member.clone()
				nm.IsLearner = learner
			}
			next.Members = append(next.Members, nm)
		case raftpb.ConfChangeRemoveNode:
			next.Members = slices.DeleteFunc(next.Members, func(m *Member) bool { return m.ID == id })
			next.Removed = append(next.Removed, id)
		case raftpb.ConfChangeUpdateNode:
			if ctx.Member != nil && m != nil {
				if len(ctx.Member.PeerURLs) > 0 {
					m.PeerURLs = sortedCopy(ctx.Member.PeerURLs)
				}
				if ctx.Member.Name != "" {
					m.Name = ctx.Member.Name
				}
				if ctx.Member.ClientURLs != nil {
					m.ClientURLs = slices.Clone(ctx.Member.ClientURLs)
				}
			}
		}
	}
	slices.SortFunc(next.Members, func(a, b *Member) int { return cmpUint64(a.ID, b.ID) })
	return next
}

// decodeConfChange decodes a conf-change entry (v1 or v2) and its context.
// A context that is not ours (empty, or another proposer's bytes) yields an
// empty confChangeContext.
func decodeConfChange(e *raftpb.Entry) (*raftpb.ConfChangeV2, *confChangeContext, error) {
	var cc *raftpb.ConfChangeV2
	switch e.GetType() {
	case raftpb.EntryConfChange:
		var v1 raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &v1); err != nil {
			return nil, nil, fmt.Errorf("raft: conf change at %d: %w", e.GetIndex(), err)
		}
		cc = v1.AsV2()
	case raftpb.EntryConfChangeV2:
		cc = &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			return nil, nil, fmt.Errorf("raft: conf change at %d: %w", e.GetIndex(), err)
		}
	default:
		return nil, nil, fmt.Errorf("raft: entry %d is not a conf change", e.GetIndex())
	}
	ctx := &confChangeContext{}
	if len(cc.GetContext()) > 0 {
		if err := json.Unmarshal(cc.GetContext(), ctx); err != nil {
			ctx = &confChangeContext{}
		}
	}
	return cc, ctx, nil
}

// DecodeConfChange is for Appliers: it returns the conf change an entry of
// type EntryConfChange/EntryConfChangeV2 carries and the member record it
// names (nil for a removal or a leave-joint change).
func DecodeConfChange(e *raftpb.Entry) (*raftpb.ConfChangeV2, *Member, error) {
	cc, ctx, err := decodeConfChange(e)
	if err != nil {
		return nil, nil, err
	}
	return cc, ctx.Member, nil
}
