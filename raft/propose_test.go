package raft

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProposeAsync_ConcurrentProposersEachAppliedOnce: proposals queued from
// many goroutines at once (so the raft goroutine takes them in batches) are
// each answered exactly once, each applied exactly once, and each
// proposer's entries are applied in the order it queued them.
func TestProposeAsync_ConcurrentProposersEachAppliedOnce(t *testing.T) {
	const proposers, each = 8, 300
	var mu sync.Mutex
	applied := map[string]int{} // command -> times applied
	lastSeq := map[string]int{} // proposer -> last sequence number applied
	var outOfOrder atomic.Int64
	c := newClusterWith(t, 1, nil, func(cmd []byte) {
		var p, seq int
		if _, err := fmt.Sscanf(string(cmd), "p%d-%d=x", &p, &seq); err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		applied[string(cmd)]++
		key := fmt.Sprint(p)
		if last, ok := lastSeq[key]; ok && seq != last+1 {
			outOfOrder.Add(1)
		}
		lastSeq[key] = seq
	})
	m := c.members[0]

	t.Logf("Step 1: waiting for the single member to lead...")
	c.waitLeader(3 * time.Second)

	t.Logf("Step 2: %d goroutines queue %d proposals each without waiting...", proposers, each)
	var answered, failed atomic.Int64
	var wg sync.WaitGroup
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for seq := 0; seq < each; seq++ {
				err := m.node.ProposeAsync([]byte(fmt.Sprintf("p%d-%d=x", p, seq)), func(err error) {
					answered.Add(1)
					if err != nil {
						failed.Add(1)
					}
				})
				if err != nil {
					failed.Add(1)
				}
			}
		}(p)
	}
	wg.Wait()

	t.Logf("Step 3: waiting until every proposal is answered and applied...")
	total := proposers * each
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return answered.Load() == int64(total) && len(applied) == total
	}, 10*time.Second, 5*time.Millisecond, "answered %d, applied %d of %d", answered.Load(), len(applied), total)

	t.Logf("Step 4: verifying once each, in each proposer's order...")
	require.Zero(t, failed.Load())
	mu.Lock()
	defer mu.Unlock()
	for cmd, n := range applied {
		require.Equal(t, 1, n, "%s applied %d times", cmd, n)
	}
	for p := 0; p < proposers; p++ {
		require.Equal(t, each-1, lastSeq[fmt.Sprint(p)])
	}
	require.Zero(t, outOfOrder.Load(), "a proposer's entries were applied out of order")
	require.Equal(t, int64(total), answered.Load(), "a proposal was answered twice")
}

// TestProposeAsync_NoLeaderIsReported: a member cut off from the others
// loses its leader; a proposal there is answered with ErrNoLeader (not left
// waiting), and after the node stops ProposeAsync fails at once.
func TestProposeAsync_NoLeaderIsReported(t *testing.T) {
	c := newCluster(t, 3, fastTimings)
	leader := c.waitLeader(5 * time.Second)
	victim := c.followers(leader)[0]

	t.Logf("Step 1: partitioning follower %s until it has no leader...", victim.name)
	c.partition(victim)
	require.Eventually(t, func() bool { return victim.node.Leader() == 0 }, 5*time.Second, 10*time.Millisecond)

	t.Logf("Step 2: proposing on it...")
	errc := make(chan error, 1)
	require.NoError(t, victim.node.ProposeAsync([]byte("k=v"), func(err error) { errc <- err }))

	t.Logf("Step 3: waiting for the answer...")
	select {
	case err := <-errc:
		t.Logf("Step 4: verifying it is ErrNoLeader, and that a stopped node refuses proposals...")
		require.ErrorIs(t, err, ErrNoLeader)
	case <-time.After(5 * time.Second):
		t.Fatal("the proposal was never answered")
	}
	c.stop(victim)
	c.heal()
	stopped := c.members[0]
	if stopped == victim {
		stopped = c.members[1]
	}
	stopped.node.Stop()
	require.ErrorIs(t, stopped.node.ProposeAsync([]byte("k=v"), func(error) { t.Error("done called on a stopped node") }), ErrStopped)
}
