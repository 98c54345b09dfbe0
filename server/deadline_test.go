package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/raft"
)

// TestDeadlines_NeverEarlyAndShared: a channel closes no earlier than its
// delay and within a tick or two after it; requests of the same tick share
// one channel; expired channels are forgotten.
func TestDeadlines_NeverEarlyAndShared(t *testing.T) {
	t.Logf("Step 1: a wheel with 20 ms ticks, run until the test ends")
	d := newDeadlines(20 * time.Millisecond)
	stop := make(chan struct{})
	defer close(stop)
	go d.run(stop)

	t.Logf("Step 2: ask for 100 ms twice in a row, and for 300 ms")
	start := time.Now()
	a, b := d.after(100*time.Millisecond), d.after(100*time.Millisecond)
	long := d.after(300 * time.Millisecond)

	t.Logf("Step 3: wait for the 100 ms channel")
	select {
	case <-a:
	case <-time.After(5 * time.Second):
		t.Fatal("the 100 ms deadline never closed")
	}
	elapsed := time.Since(start)

	t.Logf("Step 4: verify it was not early, the same channel was shared, and the 300 ms one is still open (%v)", elapsed)
	require.GreaterOrEqual(t, elapsed, 100*time.Millisecond)
	require.Equal(t, a, b, "two requests in the same tick must share a channel")
	select {
	case <-long:
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "the 300 ms deadline closed early")
	default:
	}
	<-long
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	require.Eventually(t, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.mu.pending) == 0
	}, time.Second, 5*time.Millisecond, "expired channels must be dropped")
}

// TestPropose_TimesOutWithoutQuorum: a member that can never elect a leader
// (its only peer never starts) answers a write with "no leader" once the
// request timeout has passed, or at the caller's own deadline, not before.
func TestPropose_TimesOutWithoutQuorum(t *testing.T) {
	t.Logf("Step 1: start one member of a two-member cluster, request timeout 300 ms")
	s := startMembers(t, []string{"a", "b"}, 1,
		Config{Engine: EngineMemory, RequestTimeout: 300 * time.Millisecond, ClusterToken: "timeout"})[0]

	t.Logf("Step 2: a Put without a deadline of its own")
	start := time.Now()
	_, err := s.Put(context.Background(), &pb.PutRequest{Key: []byte("k"), Value: []byte("v")})
	elapsed := time.Since(start)

	t.Logf("Step 3: verify no leader after the request timeout (%v)", elapsed)
	require.ErrorIs(t, err, raft.ErrNoLeader)
	require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
	require.Less(t, elapsed, 3*time.Second)

	t.Logf("Step 4: a Put with a 100 ms deadline of its own ends at that deadline")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = s.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("v")})
	elapsed = time.Since(start)
	require.ErrorIs(t, err, raft.ErrNoLeader)
	require.GreaterOrEqual(t, elapsed, 100*time.Millisecond)
	require.Less(t, elapsed, 300*time.Millisecond, "the caller's deadline, not ours, must end it")
}

// TestPropose_TimesOutWhenNothingCommits: a leader whose only follower is
// gone (for an election timeout it stays leader) takes a write
// that can never commit; the write fails with "request timed out" once the
// request timeout has passed.
func TestPropose_TimesOutWhenNothingCommits(t *testing.T) {
	t.Logf("Step 1: start a two-member cluster (election timeout 1 s, request timeout 300 ms)")
	servers := startMembers(t, []string{"a", "b"}, 2, Config{Engine: EngineMemory, ClusterToken: "commit-timeout",
		HeartbeatInterval: 100 * time.Millisecond, ElectionTimeout: time.Second, RequestTimeout: 300 * time.Millisecond})
	var leader, follower *Server
	require.Eventually(t, func() bool {
		for i, s := range servers {
			if s.node.Leader() == s.node.ID() && servers[1-i].node.Leader() == s.node.ID() {
				leader, follower = s, servers[1-i]
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "no leader")
	_, err := leader.Put(context.Background(), &pb.PutRequest{Key: []byte("before"), Value: []byte("v")})
	require.NoError(t, err)

	t.Logf("Step 2: stop the follower, then Put on the leader")
	follower.Stop()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := leader.Put(context.Background(), &pb.PutRequest{Key: []byte("k"), Value: []byte("v")})
		errc <- err
	}()

	t.Logf("Step 3: wait for the answer")
	select {
	case err = <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("the write never timed out")
	}

	t.Logf("Step 4: verify it timed out after the request timeout (%v)", time.Since(start))
	require.ErrorIs(t, err, ErrTimeout)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
}
