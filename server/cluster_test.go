package server

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/raft"
)

// The arithmetic of etcd's strict reconfiguration check (cluster.go), case
// by case; test/TestCluster_StrictReconfigCheck shows it on real members.

// members builds a member list: voters started and unstarted (no name), and
// learners.
func members(started, unstarted, learners int) []*raft.Member {
	var ms []*raft.Member
	id := uint64(1)
	add := func(n int, name string, learner bool) {
		for i := 0; i < n; i++ {
			m := &raft.Member{ID: id, IsLearner: learner}
			if name != "" {
				m.Name = fmt.Sprintf("%s%d", name, id)
			}
			ms = append(ms, m)
			id++
		}
	}
	add(started, "m", false)
	add(unstarted, "", false)
	add(learners, "l", true)
	return ms
}

func TestStrictReconfig_StartedMembers(t *testing.T) {
	cases := []struct {
		started, unstarted, learners int
		add, remove, promote         bool // removing an unstarted voter when there is one, else a started one
	}{
		{started: 1, add: true, remove: false, promote: true}, // the last voter never goes
		{started: 1, unstarted: 1, add: false, remove: true, promote: true},
		{started: 2, add: true, remove: true, promote: true},
		{started: 3, add: true, remove: true, promote: true},
		{started: 3, unstarted: 1, add: true, remove: true, promote: true},
		{started: 3, unstarted: 2, add: false, remove: true, promote: true},
		{started: 2, unstarted: 2, add: false, remove: true, promote: true},
		{started: 1, unstarted: 2, learners: 1, add: false, remove: false, promote: false},
		{started: 2, unstarted: 3, add: false, remove: false, promote: false},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%d started, %d unstarted, %d learners", c.started, c.unstarted, c.learners)
		t.Logf("Step: %s", name)
		ms := members(c.started, c.unstarted, c.learners)
		victim := uint64(1)
		if c.unstarted > 0 {
			victim = uint64(c.started + 1)
		}
		require.Equal(t, c.add, readyToAddVoter(ms), "%s: add a voter", name)
		require.Equal(t, c.remove, readyToRemoveVoter(ms, victim), "%s: remove %d", name, victim)
		require.Equal(t, c.promote, readyToPromote(ms), "%s: promote a learner", name)
	}
}

func TestStrictReconfig_Connectivity(t *testing.T) {
	cases := []struct {
		voters, connected int
		add, remove       bool
	}{
		{voters: 1, connected: 1, add: true, remove: false},
		{voters: 2, connected: 1, add: false, remove: false},
		{voters: 2, connected: 2, add: true, remove: true},
		{voters: 3, connected: 2, add: false, remove: false},
		{voters: 3, connected: 3, add: true, remove: true},
		{voters: 4, connected: 3, add: true, remove: true},
		{voters: 5, connected: 3, add: false, remove: false},
		{voters: 5, connected: 4, add: true, remove: true},
	}
	for _, c := range cases {
		t.Logf("Step: %d voters, %d connected for 5 s", c.voters, c.connected)
		require.Equal(t, c.add, healthyToAdd(c.voters, c.connected), "add with %d of %d connected", c.connected, c.voters)
		require.Equal(t, c.remove, healthyToRemove(c.voters, c.connected), "remove a live voter with %d of %d connected", c.connected, c.voters)
	}
}
