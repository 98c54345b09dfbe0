package raft

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

func ents(term uint64, lo, hi uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, &raftpb.Entry{Index: new(i), Term: new(term), Type: raftpb.EntryNormal.Enum(), Data: []byte{byte(i)}})
	}
	return out
}

func terms(t *testing.T, s *logStore, lo, hi uint64) []uint64 {
	es, err := s.Entries(lo, hi, 1<<30)
	require.NoError(t, err)
	var out []uint64
	for i, e := range es {
		require.Equal(t, lo+uint64(i), e.GetIndex())
		out = append(out, e.GetTerm())
	}
	return out
}

func TestLogStore_AppendTruncateCompactReopen(t *testing.T) {
	eng := mustMemory(t)
	s, hist, err := openLogStore(eng)
	require.NoError(t, err)
	require.Nil(t, hist)

	t.Logf("Step 1: appending 1..10 (term 1) with a HardState in one synced batch...")
	hs := &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(7)), Commit: new(uint64(3))}
	require.NoError(t, s.save(&logWrite{hs: hs, entries: ents(1, 1, 10), conf: confHistory{{Index: 0}}}))
	require.Equal(t, int64(1), s.syncs.Load())
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	require.Equal(t, []uint64{1, 10}, []uint64{first, last})

	t.Logf("Step 2: a conflicting append at 6 (term 2) truncates 6..10...")
	require.NoError(t, s.save(&logWrite{entries: ents(2, 6, 7)}))
	last, _ = s.LastIndex()
	require.Equal(t, uint64(7), last)
	require.Equal(t, []uint64{1, 1, 1, 1, 1, 2, 2}, terms(t, s, 1, 8))
	_, err = s.Term(8)
	require.ErrorIs(t, err, raft.ErrUnavailable)

	t.Logf("Step 3: entries are readable from the engine past the cache...")
	s.mu.Lock()
	s.mu.cache = s.mu.cache[4:] // pretend 1..4 fell out of the cache
	s.mu.Unlock()
	require.Equal(t, []uint64{1, 1, 1, 1, 1, 2, 2}, terms(t, s, 1, 8))
	es, err := s.Entries(2, 8, 1) // maxSize: at least one entry
	require.NoError(t, err)
	require.Len(t, es, 1)

	t.Logf("Step 4: compacting to 4 deletes 1..4 and keeps term(4)...")
	require.NoError(t, s.compact(4, &raftpb.ConfState{Voters: []uint64{7}}, confHistory{{Index: 0}}))
	first, _ = s.FirstIndex()
	require.Equal(t, uint64(5), first)
	tm, err := s.Term(4)
	require.NoError(t, err)
	require.Equal(t, uint64(1), tm)
	_, err = s.Entries(4, 6, 1<<30)
	require.ErrorIs(t, err, raft.ErrCompacted)
	_, err = eng.Get(0, entryKey(3))
	require.Error(t, err)

	t.Logf("Step 5: reopening sees the same log...")
	s2, hist, err := openLogStore(eng)
	require.NoError(t, err)
	require.Len(t, hist, 1)
	first, _ = s2.FirstIndex()
	last, _ = s2.LastIndex()
	require.Equal(t, []uint64{5, 7}, []uint64{first, last})
	require.Equal(t, []uint64{1, 2, 2}, terms(t, s2, 5, 8))
	gotHS, _, err := s2.InitialState()
	require.NoError(t, err)
	require.Equal(t, uint64(7), gotHS.GetVote())
	require.Equal(t, uint64(3), gotHS.GetCommit())

	t.Logf("Step 6: installing a snapshot replaces the whole log...")
	md := &raftpb.SnapshotMetadata{Index: new(uint64(20)), Term: new(uint64(3)), ConfState: &raftpb.ConfState{Voters: []uint64{7}}}
	require.NoError(t, s2.save(&logWrite{snap: md, entries: ents(3, 21, 22)}))
	first, _ = s2.FirstIndex()
	last, _ = s2.LastIndex()
	require.Equal(t, []uint64{21, 22}, []uint64{first, last})
	_, err = s2.Term(7)
	require.ErrorIs(t, err, raft.ErrCompacted)
}

func TestSnapshotStream_DetectsCorruption(t *testing.T) {
	state := bytes.Repeat([]byte("0123456789abcdef"), (3*snapChunkSize)/16+100) // 3 full chunks + a bit
	msg := &raftpb.Message{Type: raftpb.MsgSnap.Enum(), To: new(uint64(2)),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(9)), Term: new(uint64(2))}}}
	write := func(t *testing.T, mutate func(frames [][]byte)) string {
		dir := t.TempDir()
		var frames [][]byte
		h, err := encodeHeaderFrame(msg, &confRecord{Index: 9, Members: []*Member{{ID: 1}}})
		require.NoError(t, err)
		frames = append(frames, h)
		cw := newChunkWriter(func(f []byte) error { frames = append(frames, f); return nil })
		_, err = cw.Write(state)
		require.NoError(t, err)
		require.NoError(t, cw.Close())
		require.Len(t, frames, 1+4+1)
		if mutate != nil {
			mutate(frames)
		}
		sf, err := createSnapFile(dir, 2, 9)
		require.NoError(t, err)
		for _, f := range frames {
			require.NoError(t, sf.writeFrame(f))
		}
		p, err := sf.finish()
		require.NoError(t, err)
		return p
	}
	read := func(p string) ([]byte, error) {
		f, err := os.Open(p)
		require.NoError(t, err)
		defer f.Close()
		sr, m, rec, err := openSnapReader(f)
		if err != nil {
			return nil, err
		}
		require.Equal(t, uint64(9), m.GetSnapshot().GetMetadata().GetIndex())
		require.Equal(t, uint64(1), rec.Members[0].ID)
		return io.ReadAll(sr)
	}
	for _, tc := range []struct {
		name   string
		mutate func([][]byte)
		want   string
	}{
		{"intact", nil, ""},
		{"flipped byte in chunk 1", func(f [][]byte) { f[2][100] ^= 1 }, "chunk 1 checksum mismatch"},
		{"chunk dropped", func(f [][]byte) { copy(f[2:], f[3:]); f[len(f)-1] = f[len(f)-2] }, "end frame says"},
		{"end frame length", func(f [][]byte) { f[len(f)-1][8] ^= 1 }, "end frame says"},
		{"truncated", func(f [][]byte) { f[len(f)-1] = []byte{frameChunk, 0, 0, 0, 0} }, "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := read(write(t, tc.mutate))
			if tc.want == "" {
				require.NoError(t, err)
				require.Equal(t, state, got)
				return
			}
			require.ErrorIs(t, err, ErrSnapshotCorrupt)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("missing file tail", func(t *testing.T) {
		p := write(t, nil)
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.NoError(t, os.Truncate(p, fi.Size()-20))
		_, err = read(p)
		require.ErrorIs(t, err, ErrSnapshotCorrupt)
		require.True(t, errors.Is(err, ErrSnapshotCorrupt))
		require.Equal(t, filepath.Ext(p), ".snap")
	})
}

func TestMemberID_DeterministicLikeEtcd(t *testing.T) {
	a := MemberID([]string{"http://b:2380", "http://a:2380"}, "tok", nil)
	b := MemberID([]string{"http://a:2380", "http://b:2380"}, "tok", nil)
	require.Equal(t, a, b, "URL order must not matter")
	require.NotEqual(t, a, MemberID([]string{"http://a:2380", "http://b:2380"}, "other", nil))
	now := time.Unix(1700000000, 0)
	require.NotEqual(t, a, MemberID([]string{"http://a:2380", "http://b:2380"}, "tok", &now))
	require.Equal(t, ClusterID([]uint64{3, 1, 2}), ClusterID([]uint64{1, 2, 3}))
	// etcd's well-known value: a single member "http://localhost:2380" with
	// the default token "etcd-cluster" has ID 8e9e05c52164694d.
	require.Equal(t, uint64(0x8e9e05c52164694d), MemberID([]string{"http://localhost:2380"}, "etcd-cluster", nil))
}

func TestValidateConfChange(t *testing.T) {
	rec := &confRecord{Members: []*Member{{ID: 1, PeerURLs: []string{"u1"}}, {ID: 2, PeerURLs: []string{"u2"}, IsLearner: true}},
		Removed: []uint64{9}}
	cc := func(typ raftpb.ConfChangeType, id uint64) *raftpb.ConfChangeV2 {
		return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(id)}}}
	}
	for _, tc := range []struct {
		name        string
		cc          *raftpb.ConfChangeV2
		m           *Member
		maxLearners int
		want        error
	}{
		{"add new", cc(raftpb.ConfChangeAddNode, 3), &Member{ID: 3, PeerURLs: []string{"u3"}}, 0, nil},
		{"second learner at the default limit", cc(raftpb.ConfChangeAddLearnerNode, 3), &Member{ID: 3, PeerURLs: []string{"u3"}}, 0, ErrTooManyLearners},
		{"second learner under the proposer's limit of 2", cc(raftpb.ConfChangeAddLearnerNode, 3), &Member{ID: 3, PeerURLs: []string{"u3"}}, 2, nil},
		{"add with taken URL", cc(raftpb.ConfChangeAddNode, 3), &Member{ID: 3, PeerURLs: []string{"u1"}}, 0, ErrPeerURLExists},
		{"re-add removed", cc(raftpb.ConfChangeAddNode, 9), &Member{ID: 9}, 0, ErrMemberRemoved},
		{"learner exists", cc(raftpb.ConfChangeAddLearnerNode, 1), &Member{ID: 1}, 0, ErrMemberExists},
		{"promote learner", cc(raftpb.ConfChangeAddNode, 2), nil, 0, nil},
		{"voter added with a learner's ID is no promotion", cc(raftpb.ConfChangeAddNode, 2), &Member{ID: 2, PeerURLs: []string{"u2"}}, 0, ErrMemberExists},
		{"existing voter: the idempotent bootstrap case", cc(raftpb.ConfChangeAddNode, 1), &Member{ID: 1, PeerURLs: []string{"u1"}}, 0, nil},
		{"remove unknown", cc(raftpb.ConfChangeRemoveNode, 5), nil, 0, ErrMemberNotFound},
		{"update unknown", cc(raftpb.ConfChangeUpdateNode, 5), &Member{ID: 5}, 0, ErrMemberNotFound},
		{"update to own URL", cc(raftpb.ConfChangeUpdateNode, 1), &Member{ID: 1, PeerURLs: []string{"u1"}}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateConfChange(rec, tc.cc, &confChangeContext{Member: tc.m, MaxLearners: tc.maxLearners})
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
		})
	}
}
