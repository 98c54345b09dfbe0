package raft

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestForceNewCluster_SurvivorServesAlone: a 3-member cluster loses two
// members for good; the third, restarted with ForceNewCluster, keeps every
// committed write, becomes the only member of the same cluster and takes
// new writes. Restarted once more with the flag, it changes nothing.
func TestForceNewCluster_SurvivorServesAlone(t *testing.T) {
	c := newCluster(t, 3, fastTimings)
	leader := c.waitLeader(5 * time.Second)
	survivor := c.followers(leader)[0]
	clusterID := survivor.node.ClusterID()
	want := map[string]string{}
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		c.put(leader, k, "v")
		want[k] = "v"
	}
	c.waitConverged(want, 5*time.Second)

	t.Logf("Step 1: stopping all three members; two of them never come back")
	c.stopAll()

	t.Logf("Step 2: restarting %s alone with ForceNewCluster", survivor.name)
	survivor.cfg.ForceNewCluster = true
	c.start(survivor, nil)

	t.Logf("Step 3: waiting for it to lead a cluster of one")
	require.Eventually(t, func() bool { return survivor.node.Leader() == survivor.node.ID() }, 10*time.Second, 10*time.Millisecond,
		"the forced member did not become leader on its own")
	members := survivor.node.Members()
	require.Len(t, members, 1)
	require.Equal(t, survivor.node.ID(), members[0].ID)
	require.False(t, members[0].IsLearner)
	require.Equal(t, clusterID, survivor.node.ClusterID(), "the cluster keeps its ID")

	t.Logf("Step 4: verifying the committed writes are there and a new write commits")
	c.waitConverged(want, 5*time.Second)
	c.put(survivor, "after", "force")
	want["after"] = "force"
	c.waitConverged(want, 5*time.Second)

	t.Logf("Step 5: with the flag still set, forcing again changes nothing in the log")
	c.stop(survivor)
	store, hist, err := openLogStore(survivor.eng)
	require.NoError(t, err)
	lastBefore, _ := store.LastIndex()
	require.NoError(t, forceNewCluster(store, hist, survivor.memberID(t), survivor.applier.AppliedIndex(), testLogger(t)))
	lastAfter, _ := store.LastIndex()
	require.Equal(t, lastBefore, lastAfter)
	c.start(survivor, nil)
	require.Eventually(t, func() bool { return survivor.node.Leader() == survivor.node.ID() }, 10*time.Second, 10*time.Millisecond)
	require.Len(t, survivor.node.Members(), 1)
	c.waitConverged(want, 5*time.Second)
}

// memberID is the member's ID, also while its node is stopped.
func (m *testMember) memberID(t *testing.T) uint64 {
	cfg, err := m.cfg.withDefaults()
	require.NoError(t, err)
	return cfg.MemberID
}

// TestForceNewCluster_RewritesTheLog: the entries after the commit index
// go; conf changes promote the member (a learner here) and remove every
// other member, including one a committed change added after the stored
// membership; the new commit index covers them.
func TestForceNewCluster_RewritesTheLog(t *testing.T) {
	t.Logf("Step 1: a log of 14 entries, committed to 7, members 1 (learner), 2, 3; entry 5 adds member 4")
	eng := mustMemory(t)
	store, _, err := openLogStore(eng)
	require.NoError(t, err)
	cs, err := proto.Marshal(&raftpb.ConfState{Voters: []uint64{2, 3}, Learners: []uint64{1}})
	require.NoError(t, err)
	hist := confHistory{{Index: 0, ConfState: cs, ClusterID: 77,
		Members: []*Member{{ID: 1, IsLearner: true}, {ID: 2}, {ID: 3}}}}
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 14; i++ {
		e := &raftpb.Entry{Index: new(i), Term: new(uint64(2)), Type: raftpb.EntryNormal.Enum(), Data: fmt.Appendf(nil, "k%d=v", i)}
		if i == 5 {
			data, err := proto.Marshal(&raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
				{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(4))}}})
			require.NoError(t, err)
			e.Type, e.Data = raftpb.EntryConfChangeV2.Enum(), data
		}
		ents = append(ents, e)
	}
	hs := &raftpb.HardState{Term: new(uint64(3)), Vote: new(uint64(2)), Commit: new(uint64(7))}
	require.NoError(t, store.save(&logWrite{hs: hs, entries: ents, conf: hist, sync: true}))

	t.Logf("Step 2: refusals: an applied index past the commit index, a removed member")
	require.ErrorIs(t, forceNewCluster(store, hist, 1, 8, testLogger(t)), ErrBadConfig)
	removed := confHistory{hist[0].clone()}
	removed[0].Removed = []uint64{9}
	require.ErrorIs(t, forceNewCluster(store, removed, 9, 3, testLogger(t)), ErrRemoved)
	last, _ := store.LastIndex()
	require.Equal(t, uint64(14), last, "a refused force must leave the log alone")

	t.Logf("Step 3: forcing member 1")
	require.NoError(t, forceNewCluster(store, hist, 1, 6, testLogger(t)))

	t.Logf("Step 4: verifying the log, as stored")
	store, _, err = openLogStore(eng)
	require.NoError(t, err)
	last, _ = store.LastIndex()
	require.Equal(t, uint64(11), last, "7 committed entries, then 4 conf changes; 8-14 dropped")
	got := store.hardState()
	require.Equal(t, uint64(11), got.GetCommit())
	require.Equal(t, uint64(3), got.GetTerm())
	require.Equal(t, uint64(2), got.GetVote())
	out, err := store.Entries(1, 12, 1<<30)
	require.NoError(t, err)
	for i := range 7 {
		require.True(t, proto.Equal(ents[i], out[i]), "committed entry %d changed", i+1)
	}
	wantChanges := []string{"ConfChangeAddNode 1", "ConfChangeRemoveNode 2", "ConfChangeRemoveNode 3", "ConfChangeRemoveNode 4"}
	for i, e := range out[7:] {
		require.Equal(t, uint64(3), e.GetTerm(), "entry %d", e.GetIndex())
		cc, _, err := decodeConfChange(e)
		require.NoError(t, err)
		require.Len(t, cc.GetChanges(), 1)
		ch := cc.GetChanges()[0]
		require.Equal(t, wantChanges[i], fmt.Sprintf("%s %d", ch.GetType(), ch.GetNodeId()))
	}
	t.Logf("Step 5: a crash before the changes were applied, then a second forced start: nothing more is written")
	require.NoError(t, forceNewCluster(store, hist, 1, 6, testLogger(t)))
	last, _ = store.LastIndex()
	require.Equal(t, uint64(11), last)
}

// TestForceNewCluster_EmptyLogIsANewCluster: on an empty data directory
// the flag is ignored and the member bootstraps as configured.
func TestForceNewCluster_EmptyLogIsANewCluster(t *testing.T) {
	t.Logf("Step 1: starting a fresh single member with ForceNewCluster")
	c := newCluster(t, 1, func(cfg *Config) { fastTimings(cfg); cfg.ForceNewCluster = true })

	t.Logf("Step 2: waiting for it to lead, then writing")
	m := c.waitLeader(5 * time.Second)
	c.put(m, "a", "1")

	t.Logf("Step 3: verifying its membership is the initial cluster")
	members := m.node.Members()
	require.Len(t, members, 1)
	require.Equal(t, "m1", members[0].Name)
	require.Equal(t, []string{m.url}, members[0].PeerURLs)
}
