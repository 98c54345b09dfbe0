package raft

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Transport.ActiveSince, what etcd's strict reconfiguration check reads:
// every member hears from every peer it can reach, followers from each
// other too (raft alone has them talk only to the leader); a stopped peer
// stops being heard at once (its stream ends), a partitioned one after
// silenceLimit; a healed one is heard again from a new time.

// heardFrom reports whether m hears from every other running member now.
func heardFrom(c *testCluster, m *testMember) bool {
	for _, o := range c.running() {
		if o != m && m.node.PeerActiveSince(o.node.ID()).IsZero() {
			return false
		}
	}
	return true
}

func TestTransport_ActiveSince(t *testing.T) {
	t.Logf("Step 1: prepare a 3-member cluster with a leader")
	c := newCluster(t, 3, nil)
	leader := c.waitLeader(10 * time.Second)
	fs := c.followers(leader)
	require.Len(t, fs, 2)
	f1, f2 := fs[0], fs[1]

	t.Logf("Step 2: wait until every member hears from both others, the two followers from each other too")
	for _, m := range c.members {
		require.Eventually(t, func() bool { return heardFrom(c, m) }, 5*time.Second, 20*time.Millisecond, "%s does not hear from all peers", m.name)
	}
	since := f1.node.PeerActiveSince(f2.node.ID())
	require.False(t, since.IsZero())

	t.Logf("Step 3: with no raft traffic between the followers, f1 keeps hearing f2 without a gap for longer than the silence limit")
	require.Never(t, func() bool { return !f1.node.PeerActiveSince(f2.node.ID()).Equal(since) },
		silenceLimit+time.Second, 50*time.Millisecond, "f1's view of f2 had a gap")

	t.Logf("Step 4: partition f2; the others stop hearing it within the silence limit, and it them")
	c.partition(f2)
	for _, m := range []*testMember{leader, f1} {
		require.Eventually(t, func() bool { return m.node.PeerActiveSince(f2.node.ID()).IsZero() },
			2*silenceLimit, 20*time.Millisecond, "%s still hears the partitioned member", m.name)
	}
	require.Eventually(t, func() bool {
		return f2.node.PeerActiveSince(leader.node.ID()).IsZero() && f2.node.PeerActiveSince(f1.node.ID()).IsZero()
	}, 2*silenceLimit, 20*time.Millisecond, "the partitioned member still hears the others")

	t.Logf("Step 5: heal; f2 is heard again, since a time after the heal")
	healed := time.Now()
	c.heal()
	require.Eventually(t, func() bool { return heardFrom(c, f1) && heardFrom(c, f2) }, 5*time.Second, 20*time.Millisecond)
	require.True(t, f1.node.PeerActiveSince(f2.node.ID()).After(healed), "f1 hears f2 since before the heal")

	t.Logf("Step 6: stop f2; the others stop hearing it well within the silence limit (its streams end)")
	f2ID := f2.node.ID()
	stopped := time.Now()
	c.stop(f2)
	for _, m := range []*testMember{leader, f1} {
		require.Eventually(t, func() bool { return m.node.PeerActiveSince(f2ID).IsZero() },
			silenceLimit/2, 5*time.Millisecond, "%s still hears the stopped member", m.name)
	}
	t.Logf("stopped member unheard after %v", time.Since(stopped))
}
