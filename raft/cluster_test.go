package raft

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/memory"
)

func TestSingleNode_ProposeApply(t *testing.T) {
	c := newCluster(t, 1, nil)
	m := c.members[0]

	t.Logf("Step 1: waiting for the single member to lead...")
	c.waitLeader(3 * time.Second)

	t.Logf("Step 2: proposing 100 writes...")
	want := map[string]string{}
	for i := 0; i < 100; i++ {
		k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i)
		require.NoError(t, m.node.Propose(context.Background(), []byte(k+"="+v)))
		want[k] = v
	}

	t.Logf("Step 3: waiting for the last write to apply, then ReadIndex and WaitApplied, and verifying the state...")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// Propose returns once raft took the entry, not once it committed: the
	// last write may still be uncommitted here, and a sole voter's ReadIndex
	// is its commit index (localReadIndex), so wait for index 102 first.
	require.NoError(t, m.node.WaitApplied(ctx, 102))
	idx, err := m.node.ReadIndex(ctx)
	require.NoError(t, err)
	require.NoError(t, m.node.WaitApplied(ctx, idx))
	// Bootstrap conf change (1) + leader's empty entry (1) + 100 writes.
	require.GreaterOrEqual(t, idx, uint64(102))
	require.Equal(t, want, m.applier.dump(t))
	st, err := m.node.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "StateLeader", st.State)
	require.Equal(t, m.node.ID(), st.Leader)
	require.Equal(t, uint64(102), st.Applied)
	require.Len(t, m.node.Members(), 1)
	require.Equal(t, []string{m.url}, m.node.Members()[0].PeerURLs)
}

func TestThreeNodes_ReplicateAndAgree(t *testing.T) {
	c := newCluster(t, 3, nil)

	t.Logf("Step 1: electing a leader...")
	leader := c.waitLeader(5 * time.Second)

	t.Logf("Step 2: writing 60 keys through every member (followers forward)...")
	want := map[string]string{}
	for i := 0; i < 60; i++ {
		m := c.members[i%3]
		k, v := fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i)
		c.put(m, k, v)
		want[k] = v
	}

	t.Logf("Step 3: verifying all appliers hold the same %d keys...", len(want))
	c.waitConverged(want, 5*time.Second)
	for _, m := range c.members {
		require.Equal(t, leader.node.ID(), m.node.Leader())
		require.Len(t, m.node.Members(), 3)
		require.Equal(t, c.members[0].node.ClusterID(), m.node.ClusterID())
	}
	require.NotZero(t, c.members[0].node.ClusterID())
}

func TestLeaderStop_NewLeaderWithoutLosingWrites(t *testing.T) {
	c := newCluster(t, 3, nil) // default timings: 100ms heartbeat, 1000ms election
	leader := c.waitLeader(5 * time.Second)

	t.Logf("Step 1: writing 50 acknowledged keys through leader %s...", leader.name)
	want := map[string]string{}
	for i := 0; i < 50; i++ {
		k, v := fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i)
		c.put(leader, k, v) // applied on the leader => committed on a majority
		want[k] = v
	}

	term := leader.node.Term()
	t.Logf("Step 2: stopping leader %s (term %d)...", leader.name, term)
	stopped := time.Now()
	c.stop(leader)

	t.Logf("Step 3: waiting for a new leader (at most 3s per election round)...")
	newLeader := c.waitLeader(10 * time.Second)
	elapsed := time.Since(stopped)
	rounds := newLeader.node.Term() - term
	t.Logf("new leader %s after %v, term %d: %d election round(s)", newLeader.name, elapsed, newLeader.node.Term(), rounds)
	require.NotEqual(t, leader, newLeader)
	require.GreaterOrEqual(t, rounds, uint64(1))
	// A round waits for a follower's randomized election timeout (1-2 s at
	// default timings). A split vote (both followers stood at once, each
	// voting for itself) costs one more round: a term more, and as long again.
	require.Less(t, elapsed, time.Duration(rounds)*3*time.Second)

	t.Logf("Step 4: verifying no acknowledged write was lost and the cluster accepts writes...")
	c.put(newLeader, "after", "failover")
	want["after"] = "failover"
	c.waitConverged(want, 5*time.Second)
}

func TestPartitionedMember_CannotReadButCatchesUp(t *testing.T) {
	c := newCluster(t, 3, fastTimings)
	leader := c.waitLeader(5 * time.Second)
	victim := c.followers(leader)[0]
	c.put(leader, "before", "1")

	t.Logf("Step 1: partitioning follower %s...", victim.name)
	c.partition(victim)

	t.Logf("Step 2: the partitioned member's ReadIndex must not succeed...")
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	_, err := victim.node.ReadIndex(ctx)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)

	t.Logf("Step 3: the majority keeps writing and reading...")
	want := map[string]string{"before": "1"}
	for i := 0; i < 30; i++ {
		k := fmt.Sprintf("p%02d", i)
		c.put(leader, k, "x")
		want[k] = "x"
	}
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	idx, err := c.followers(leader)[1].node.ReadIndex(ctx)
	cancel()
	require.NoError(t, err)
	require.GreaterOrEqual(t, idx, leader.node.AppliedIndex()-1)
	_, err = victim.eng.Get(engine.Data, []byte("p00"))
	require.Error(t, err, "the partitioned member must not have seen writes")

	t.Logf("Step 4: healing; the member catches up and serves ReadIndex again...")
	c.heal()
	c.waitConverged(want, 10*time.Second)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ridx uint64
	require.Eventually(t, func() bool {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		defer rcancel()
		ridx, err = victim.node.ReadIndex(rctx)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, victim.node.WaitApplied(ctx, ridx))
}

func TestRestartedMember_CatchesUpFromLog(t *testing.T) {
	c := newCluster(t, 3, fastTimings)
	leader := c.waitLeader(5 * time.Second)
	victim := c.followers(leader)[0]
	want := map[string]string{}
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("a%02d", i)
		c.put(leader, k, "1")
		want[k] = "1"
	}
	c.waitConverged(want, 5*time.Second)
	appliedBefore := victim.applier.AppliedIndex()

	t.Logf("Step 1: stopping follower %s (keeping its engine)...", victim.name)
	c.stop(victim)

	t.Logf("Step 2: writing 30 more keys while it is down...")
	for i := 0; i < 30; i++ {
		k := fmt.Sprintf("b%02d", i)
		c.put(leader, k, "2")
		want[k] = "2"
	}

	t.Logf("Step 3: restarting it from the same engine...")
	c.start(victim, nil)
	require.Equal(t, appliedBefore, victim.node.AppliedIndex(), "restart must resume from the stored applied index")

	t.Logf("Step 4: verifying it caught up from the log (no snapshot)...")
	c.waitConverged(want, 10*time.Second)
	require.Equal(t, int64(0), victim.applier.restores.Load())
}

func TestWipedMember_RejoinsBySnapshot(t *testing.T) {
	small := func(cfg *Config) {
		fastTimings(cfg)
		cfg.SnapshotCount = 40
		cfg.SnapshotCatchUpEntries = 10
	}
	c := newCluster(t, 3, small)
	leader := c.waitLeader(5 * time.Second)
	victim := c.followers(leader)[0]
	oldID := victim.node.ID()

	t.Logf("Step 1: writing 150 keys so that the log is compacted...")
	want := map[string]string{}
	for i := 0; i < 150; i++ {
		k := fmt.Sprintf("k%03d", i)
		c.put(leader, k, fmt.Sprint(i))
		want[k] = fmt.Sprint(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := leader.node.Status(ctx)
	require.NoError(t, err)
	require.Greater(t, st.FirstIndex, uint64(100), "log should have been compacted")

	t.Logf("Step 2: removing member %s and wiping its storage...", victim.name)
	c.stop(victim)
	require.True(t, leader.node.HasMember(oldID))
	require.NoError(t, leader.node.RemoveMember(ctx, oldID))
	require.Len(t, leader.node.Members(), 2)
	require.False(t, leader.node.HasMember(oldID))
	require.True(t, leader.node.HasMember(leader.node.ID()))

	t.Logf("Step 3: adding it back as a new member with an empty engine (first snapshot chunk corrupted)...")
	leader.tr.corruptNextChunk.Store(true)
	nm, err := leader.node.AddMember(ctx, "m-new", []string{victim.url}, false)
	require.NoError(t, err)
	require.NotEqual(t, oldID, nm.ID)
	victim.eng = mustMemory(t)
	victim.cfg.LogEngine = victim.eng
	victim.cfg.DataDir = t.TempDir()
	victim.cfg.ClusterState = ClusterStateExisting
	victim.cfg.MemberID = nm.ID
	c.start(victim, nil)

	t.Logf("Step 4: waiting for it to restore from a snapshot and catch up...")
	c.put(leader, "after", "rejoin")
	want["after"] = "rejoin"
	c.waitConverged(want, 15*time.Second)
	require.Equal(t, int64(1), victim.applier.restores.Load(), "exactly one (verified) snapshot restored")
	require.False(t, leader.tr.corruptNextChunk.Load(), "the corrupted chunk was sent and rejected")
	require.Eventually(t, func() bool { return len(victim.node.Members()) == 3 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, leader.node.ClusterID(), victim.node.ClusterID())
}

func TestReadIndex_ConcurrentCallersShareRounds(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader(5 * time.Second)
	c.put(leader, "x", "1")
	for _, m := range []*testMember{leader, c.followers(leader)[0]} {
		const callers = 200
		before := m.node.readRounds.Load()
		t.Logf("Step: %d concurrent ReadIndex callers on %s...", callers, m.name)
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		start := make(chan struct{})
		for i := 0; i < callers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				idx, err := m.node.ReadIndex(ctx)
				if err == nil && idx < 3 {
					err = fmt.Errorf("read index %d too small", idx)
				}
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		rounds := m.node.readRounds.Load() - before
		t.Logf("%d callers shared %d raft ReadIndex rounds", callers, rounds)
		require.GreaterOrEqual(t, rounds, int64(1))
		require.LessOrEqual(t, rounds, int64(callers/4))
	}
}

// TestReadIndex_SoleVoterAnswersLocally: a one-voter cluster answers a read
// index from its commit index, without a raft round, and stops doing so
// once a second voter exists.
func TestReadIndex_SoleVoterAnswersLocally(t *testing.T) {
	t.Logf("Step 1: prepare: a one-member cluster with one write applied")
	c := newCluster(t, 1, nil)
	m := c.waitLeader(5 * time.Second)
	c.put(m, "x", "1")
	readIndex := func(timeout time.Duration) (uint64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return m.node.ReadIndex(ctx)
	}

	t.Logf("Step 2: act and verify: read indexes with only this voter (and then a learner too) take no raft round")
	before := m.node.readRounds.Load()
	idx, err := readIndex(5 * time.Second)
	require.NoError(t, err)
	require.GreaterOrEqual(t, idx, m.node.applied.Load(), "the read index covers every applied write")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = m.node.AddMember(ctx, "learner", []string{"http://127.0.0.1:1"}, true)
	require.NoError(t, err)
	_, err = readIndex(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, before, m.node.readRounds.Load(), "no raft ReadIndex round")
	require.Eventually(t, m.node.ReadableNow, 5*time.Second, time.Millisecond, "everything committed gets applied")

	t.Logf("Step 3: act: add a second voter that never starts (no quorum any more)")
	_, err = m.node.AddMember(ctx, "voter", []string{"http://127.0.0.1:2"}, false)
	require.NoError(t, err)

	t.Logf("Step 4: verify: a read index now needs the quorum, which is gone, so it does not succeed")
	_, err = readIndex(time.Second)
	require.Error(t, err, "a member that is not the only voter must not answer alone")
	require.False(t, m.node.ReadableNow())
	require.Greater(t, m.node.readRounds.Load(), before)
}

// TestLocalReadIndex_NeedsAnEntryOfTheTerm: a new leader's commit index may
// trail what earlier terms committed until an entry of its own term
// commits; until then a read index must go through raft.
func TestLocalReadIndex_NeedsAnEntryOfTheTerm(t *testing.T) {
	t.Logf("Step 1: prepare: the sole voter leads term 3 at commit 10; its newest committed entry is of term 2")
	n := &Node{id: 1}
	n.soleVoter.Store(true)
	n.leader.Store(1)
	n.term.Store(3)
	n.commit.Store(10)
	n.commitTerm.Store(2)

	t.Logf("Step 2: act and verify: no local answer; after an entry of term 3 commits, the commit index")
	_, ok := n.localReadIndex()
	require.False(t, ok)
	n.commit.Store(11)
	n.commitTerm.Store(3)
	idx, ok := n.localReadIndex()
	require.True(t, ok)
	require.Equal(t, uint64(11), idx)

	t.Logf("Step 3: verify: no local answer when not leading or not the only voter")
	n.leader.Store(2)
	_, ok = n.localReadIndex()
	require.False(t, ok)
	n.leader.Store(1)
	n.soleVoter.Store(false)
	_, ok = n.localReadIndex()
	require.False(t, ok)
}

func mustMemory(t testing.TB) engine.Engine {
	eng, err := memory.Open("")
	require.NoError(t, err)
	return eng
}

// TestSoleVoter_CampaignsAtOnce: a one-member cluster leads at its first
// ticks, fresh and after a restart, instead of after an election timeout
// (3 s here, so raft alone could not elect it within 2.5 s); with
// DisableElectionTickAdvance it waits the timeout out.
func TestSoleVoter_CampaignsAtOnce(t *testing.T) {
	slowElection := func(cfg *Config) {
		cfg.HeartbeatInterval = 100 * time.Millisecond
		cfg.ElectionTimeout = 3 * time.Second
	}
	leads := func(m *testMember) func() bool {
		return func() bool { return m.node.Leader() == m.node.ID() }
	}
	t.Logf("Step 1: a fresh one-member cluster with a 3 s election timeout")
	c := newCluster(t, 1, slowElection)
	m := c.members[0]

	t.Logf("Step 2: it leads within 2.5 s")
	require.Eventually(t, leads(m), 2500*time.Millisecond, 10*time.Millisecond)
	c.put(m, "a", "1")

	t.Logf("Step 3: restarted, it leads within 2.5 s again")
	c.stop(m)
	c.start(m, nil)
	require.Eventually(t, leads(m), 2500*time.Millisecond, 10*time.Millisecond)

	t.Logf("Step 4: with DisableElectionTickAdvance, no leader before the timeout")
	c.stop(m)
	m.cfg.DisableElectionTickAdvance = true
	c.start(m, nil)
	require.Never(t, leads(m), 2500*time.Millisecond, 50*time.Millisecond)
	require.Eventually(t, leads(m), 5*time.Second, 10*time.Millisecond)
}

// TestElectionTickAdvance_ThreeMembers: members of a fresh 3-member
// cluster that hear from each other advance their election clocks, so the
// first leader comes well before an election timeout (10 s here: raft alone
// could not elect one within 9.5 s; with the advance each member's first
// election comes 0.2-10.1 s after it hears a peer, at random, and the first
// of three nearly always well before 9.5 s).
func TestElectionTickAdvance_ThreeMembers(t *testing.T) {
	t.Logf("Step 1: three fresh members with a 10 s election timeout")
	start := time.Now()
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.HeartbeatInterval = 100 * time.Millisecond
		cfg.ElectionTimeout = 10 * time.Second
	})

	t.Logf("Step 2: wait for a leader")
	leader := c.waitLeader(9500 * time.Millisecond)

	t.Logf("Step 3: it was elected %v after the start, and takes writes", time.Since(start).Round(time.Millisecond))
	c.put(leader, "a", "1")
	c.waitConverged(map[string]string{"a": "1"}, 5*time.Second)
}

// TestElectionTickAdvance_RestartedFollowerDoesNotDisturb: a follower that
// restarts into a running cluster may advance its election clock before it
// hears the leader; the leader and its term stay.
func TestElectionTickAdvance_RestartedFollowerDoesNotDisturb(t *testing.T) {
	t.Logf("Step 1: a 3-member cluster with a leader")
	c := newCluster(t, 3, fastTimings)
	leader := c.waitLeader(5 * time.Second)
	term := leader.node.Term()
	follower := c.followers(leader)[0]

	t.Logf("Step 2: restart a follower five times, writing in between")
	for i := range 5 {
		c.stop(follower)
		c.put(leader, fmt.Sprintf("k%d", i), "v")
		c.start(follower, nil)
		require.Eventually(t, func() bool { return follower.node.Leader() == leader.node.ID() }, 5*time.Second, 5*time.Millisecond)
	}

	t.Logf("Step 3: the leader and its term are unchanged")
	require.Equal(t, leader.node.ID(), c.waitLeader(5*time.Second).node.ID())
	require.Equal(t, term, leader.node.Term())
}
