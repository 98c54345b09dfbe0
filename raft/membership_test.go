package raft

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMembership_LearnerPromoteUpdateTransferRemove(t *testing.T) {
	c := newCluster(t, 3, fastTimings)
	leader := c.waitLeader(5 * time.Second)
	want := map[string]string{}
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("k%02d", i)
		c.put(leader, k, "v")
		want[k] = "v"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Logf("Step 1: adding a learner that is not running yet...")
	lis := listen(t, "127.0.0.1:0")
	url := "http://" + lis.Addr().String()
	lm, err := leader.node.AddMember(ctx, "m4", []string{url}, true)
	require.NoError(t, err)
	require.True(t, lm.IsLearner)
	for _, m := range c.members {
		require.Eventually(t, func() bool { return len(m.node.Members()) == 4 }, 5*time.Second, 10*time.Millisecond)
	}
	_, err = leader.node.AddMember(ctx, "dup", []string{url}, true)
	// Same URLs in the same second derive the same ID (as in etcd).
	require.True(t, errors.Is(err, ErrPeerURLExists) || errors.Is(err, ErrMemberExists), "got %v", err)

	t.Logf("Step 2: promoting the learner before it caught up is refused...")
	require.ErrorIs(t, leader.node.PromoteMember(ctx, lm.ID), ErrLearnerNotReady)
	require.ErrorIs(t, c.followers(leader)[0].node.PromoteMember(ctx, lm.ID), ErrNotLeader)

	t.Logf("Step 3: starting the learner; it catches up and is promoted...")
	learner := &testMember{name: "m4", url: url, eng: mustMemory(t)}
	learner.cfg = leader.cfg
	learner.cfg.Name, learner.cfg.MemberID, learner.cfg.ClusterState = "m4", lm.ID, ClusterStateExisting
	learner.cfg.LogEngine, learner.cfg.DataDir = learner.eng, t.TempDir()
	learner.cfg.Logger = testLogger(t).Named("m4")
	learner.cfg.InitialCluster = map[string][]string{}
	for k, v := range leader.cfg.InitialCluster {
		learner.cfg.InitialCluster[k] = v
	}
	learner.cfg.InitialCluster["m4"] = []string{url}
	c.members = append(c.members, learner)
	c.start(learner, lis)
	c.waitConverged(want, 10*time.Second)
	st, err := learner.node.Status(ctx)
	require.NoError(t, err)
	require.True(t, st.IsLearner)
	require.Eventually(t, func() bool { return leader.node.PromoteMember(ctx, lm.ID) == nil }, 10*time.Second, 50*time.Millisecond)
	require.ErrorIs(t, leader.node.PromoteMember(ctx, lm.ID), ErrNotLearner)
	require.Eventually(t, func() bool {
		st, err := learner.node.Status(ctx)
		return err == nil && !st.IsLearner
	}, 5*time.Second, 10*time.Millisecond)

	t.Logf("Step 4: updating a member's name and client URLs is seen everywhere...")
	require.NoError(t, leader.node.UpdateMember(ctx, lm.ID, "m4-renamed", nil, []string{"http://127.0.0.1:1"}))
	for _, m := range c.running() {
		require.Eventually(t, func() bool {
			for _, mb := range m.node.Members() {
				if mb.ID == lm.ID {
					return mb.Name == "m4-renamed" && !mb.IsLearner && strings.Join(mb.PeerURLs, ",") == url &&
						strings.Join(mb.ClientURLs, ",") == "http://127.0.0.1:1"
				}
			}
			return false
		}, 5*time.Second, 10*time.Millisecond, "member record on %s", m.name)
	}

	t.Logf("Step 5: transferring leadership to the new voter...")
	require.NoError(t, leader.node.TransferLeadership(ctx, lm.ID))
	newLeader := c.waitLeader(5 * time.Second)
	require.Equal(t, learner, newLeader)

	t.Logf("Step 6: removing the old leader; it stops itself...")
	require.NoError(t, newLeader.node.RemoveMember(ctx, leader.node.ID()))
	select {
	case <-leader.node.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("removed member did not stop")
	}
	require.ErrorIs(t, leader.node.Err(), ErrRemoved)
	leader.tr.Close()
	leader.node = nil
	require.Len(t, newLeader.node.Members(), 3)
	require.ErrorIs(t, newLeader.node.RemoveMember(ctx, 12345), ErrMemberNotFound)
	c.put(newLeader, "final", "x")
	want["final"] = "x"
	c.waitConverged(want, 5*time.Second)
}
