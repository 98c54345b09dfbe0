package test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Maintenance on 3 members: MoveLeader and its edge cases, HashKV across
// members, maintenance calls concurrent with writes, leadership transfer on
// a graceful stop.

func TestMaintenanceCluster_MoveLeader(t *testing.T) {
	c := startCluster(t, engineRocksDB, 3)
	ids := map[*member]uint64{}
	for _, m := range c.members {
		ids[m] = memberID(t, m)
	}
	lead := c.leader()
	cli := newClient(t, c.endpoints()...)

	t.Logf("Step 1: a follower refuses MoveLeader (not leader)...")
	var follower *member
	for _, m := range c.members {
		if m != lead {
			follower = m
		}
	}
	fcli := newClient(t, follower.endpoint())
	_, err := fcli.MoveLeader(ctxT(t, 5*time.Second), ids[follower])
	requireErrIs(t, err, rpctypes.ErrNotLeader, "MoveLeader on a follower")

	t.Logf("Step 2: target 0 and an unknown ID are bad transferees...")
	lcli := newClient(t, lead.endpoint())
	_, err = lcli.MoveLeader(ctxT(t, 5*time.Second), 0)
	requireErrIs(t, err, rpctypes.ErrBadLeaderTransferee, "target 0")
	_, err = lcli.MoveLeader(ctxT(t, 5*time.Second), 0xdeadbeef)
	requireErrIs(t, err, rpctypes.ErrBadLeaderTransferee, "unknown target")

	t.Logf("Step 3: moving to the leader itself is a no-op success...")
	_, err = lcli.MoveLeader(ctxT(t, 5*time.Second), ids[lead])
	require.NoError(t, err)

	t.Logf("Step 4: moving leadership around every member while writes go on...")
	load := startWriteLoad(cli, 4, 100000)
	cur := lead
	for round := 0; round < 3; round++ {
		var next *member
		for _, m := range c.members {
			if m != cur {
				next = m
				break
			}
		}
		start := time.Now()
		ccli := newClient(t, cur.endpoint())
		resp, err := ccli.MoveLeader(ctxT(t, 10*time.Second), ids[next])
		require.NoError(t, err, "round %d", round)
		require.NotNil(t, resp)
		t.Logf("round %d: %s -> %s in %v", round, cur.name, next.name, time.Since(start))
		for _, m := range c.members {
			waitFor(t, 5*time.Second, m.name+" to see the new leader", func() bool {
				st, err := m.status()
				return err == nil && st.Leader == ids[next]
			})
		}
		t.Logf("Step 4.%d: repeating the call on the old leader now fails with not leader...", round)
		_, err = ccli.MoveLeader(ctxT(t, 5*time.Second), ids[next])
		requireErrIs(t, err, rpctypes.ErrNotLeader, "repeated MoveLeader on the old leader")
		cur = next
	}
	// The three moves can take a few milliseconds in all, less than one
	// put that was in flight during a transfer: wait until writes are
	// acknowledged again under the last leader before stopping the load.
	waitFor(t, 10*time.Second, "writes acknowledged after the moves", func() bool { return load.ackedCount() > 0 })
	acked := load.finish()
	t.Logf("Step 5: %d writes acknowledged during and after the moves; checking all members...", len(acked))
	require.NotEmpty(t, acked)
	rev := currentRev(t, cli)
	checkAcked(t, c, acked, rev)
	waitSameHashKV(t, c, cli, rev, 10*time.Second)

	t.Logf("Step 6: metastore move-leader finds the leader among the endpoints...")
	var target *member
	for _, m := range c.members {
		if m != cur {
			target = m
		}
	}
	code, out, errOut := runCLI(t, 20*time.Second, "move-leader", fmt.Sprintf("%x", ids[target]), "--endpoints", joinEndpoints(c))
	require.Equal(t, 0, code, errOut)
	require.Equal(t, fmt.Sprintf("Leadership transferred from %x to %x\n", ids[cur], ids[target]), out)
	require.Equal(t, target, c.leader())
}

func joinEndpoints(c *cluster) string {
	s := ""
	for i, ep := range c.endpoints() {
		if i > 0 {
			s += ","
		}
		s += ep
	}
	return s
}

func TestMaintenanceCluster_HashKVAndCallsUnderLoad(t *testing.T) {
	c := startCluster(t, engineMemory, 3)
	cli := newClient(t, c.endpoints()...)
	t.Logf("Step 1: starting 4 writers...")
	load := startWriteLoad(cli, 4, 100000)

	t.Logf("Step 2: every maintenance call on every member, concurrently with the writes...")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, m := range c.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mc := newClient(t, m.endpoint())
			for i := 0; i < 3; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if _, err := mc.Status(ctx, m.endpoint()); err != nil {
					errs <- fmt.Errorf("%s status: %w", m.name, err)
				}
				if _, err := mc.HashKV(ctx, m.endpoint(), 0); err != nil {
					errs <- fmt.Errorf("%s hashkv: %w", m.name, err)
				}
				if _, err := maintClient(mc).Hash(ctx, &pb.HashRequest{}); err != nil {
					errs <- fmt.Errorf("%s hash: %w", m.name, err)
				}
				if _, err := mc.AlarmList(ctx); err != nil {
					errs <- fmt.Errorf("%s alarm list: %w", m.name, err)
				}
				if _, err := mc.Defragment(ctx, m.endpoint()); err != nil {
					errs <- fmt.Errorf("%s defragment: %w", m.name, err)
				}
				rc, err := mc.Snapshot(ctx)
				if err == nil {
					var n int64
					buf := make([]byte, 64<<10)
					for err == nil {
						var k int
						k, err = rc.Read(buf)
						n += int64(k)
					}
					rc.Close()
					if err.Error() != "EOF" || n%512 != 32 {
						errs <- fmt.Errorf("%s snapshot: %d bytes, %v", m.name, n, err)
					}
				} else {
					errs <- fmt.Errorf("%s snapshot: %w", m.name, err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	acked := load.finish()
	require.NotEmpty(t, acked)

	t.Logf("Step 3: %d acknowledged writes; HashKV equal on all members...", len(acked))
	rev := currentRev(t, cli)
	checkAcked(t, c, acked, rev)
	waitSameHashKV(t, c, cli, rev, 10*time.Second)

	t.Logf("Step 4: endpoint status and health over the cluster...")
	// NB: members publish their client URLs shortly after they start
	// (server/publish.go); wait for all three.
	var code int
	var out, errOut string
	waitFor(t, 20*time.Second, "every member's client URL in the member list", func() bool {
		code, out, errOut = runCLI(t, 20*time.Second, "member", "list", "--endpoints", c.members[0].endpoint(), "-w", "simple")
		return code == 0 && !strings.Contains(out, ", , ")
	})
	for _, m := range c.members {
		require.Contains(t, out, fmt.Sprintf("%x, started, %s, %s, %s, false", memberID(t, m), m.name, m.peerURL, m.clientURL))
	}
	code, out, errOut = runCLI(t, 20*time.Second, "endpoint", "health", "--cluster", "--endpoints", c.members[0].endpoint(), "-w", "simple")
	require.Equal(t, 0, code, errOut)
	for _, m := range c.members {
		require.Contains(t, out, m.endpoint()+" is healthy")
	}
}

// TestMaintenanceCluster_GracefulStopTransfersLeadership: SIGTERM on the
// leader hands leadership over before the member exits, so the others have
// a leader at once (no election timeout).
func TestMaintenanceCluster_GracefulStopTransfersLeadership(t *testing.T) {
	c := startCluster(t, engineRocksDB, 3, memberOpts{extraFlags: []string{"--election-timeout", "5000", "--heartbeat-interval", "100"}})
	lead := c.leader()
	oldID := memberID(t, lead)
	cli := newClient(t, c.endpoints()...)
	mustPut(t, cli, "k", "v")
	t.Logf("Step 1: SIGTERM to the leader %s...", lead.name)
	start := time.Now()
	require.NoError(t, lead.stop())
	t.Logf("Step 2: a new leader is known right after the stop (election timeout is 5 s)...")
	newLead, _ := waitNewLeader(t, c, oldID, 3*time.Second)
	took := time.Since(start)
	t.Logf("new leader %x %v after SIGTERM", newLead, took)
	require.NotEqual(t, oldID, newLead)
	require.Less(t, took, 4*time.Second)
	require.True(t, logContains(t, lead, "transferring leadership"), "the stopping leader logged the transfer")
	mustPut(t, cli, "after", "1")
}

// TestMaintenanceCluster_MoveLeaderToLearner: 3 voters and a running
// learner. As etcd's MoveLeader, the learner is a bad transferee (so are
// ID 0 and an unknown member), and the leader stays; once promoted, the
// same member takes leadership.
func TestMaintenanceCluster_MoveLeaderToLearner(t *testing.T) {
	c := startCluster(t, engineMemory, 3)
	lead := c.leader()
	leadID := memberID(t, lead)
	lcli := newClient(t, lead.endpoint())
	mustPut(t, lcli, "before-learner", "1")

	t.Logf("Step 1: adding a learner with MemberAddAsLearner and starting it...")
	m4 := c.newJoiningMember("m4")
	add, err := reconfigure(t, func(ctx context.Context) (*clientv3.MemberAddResponse, error) {
		return lcli.MemberAddAsLearner(ctx, []string{m4.peerURL})
	})
	require.NoError(t, err)
	require.True(t, add.Member.IsLearner)
	lid := add.Member.ID
	m4.args = joinArgs(m4.args, lid)
	m4.start()
	waitFor(t, 20*time.Second, "the learner to serve and know the leader", func() bool {
		st, err := m4.status()
		return err == nil && st.IsLearner && st.Leader == leadID
	})

	t.Logf("Step 2: MoveLeader to the learner, to 0 and to an unknown ID fail with etcd's bad leader transferee...")
	for _, tc := range []struct {
		what   string
		target uint64
	}{{"the learner", lid}, {"target 0", 0}, {"an unknown ID", lid ^ 0xffff}} {
		_, err := lcli.MoveLeader(ctxT(t, 5*time.Second), tc.target)
		requireErrIs(t, err, rpctypes.ErrBadLeaderTransferee, tc.what)
		require.Equal(t, "etcdserver: bad leader transferee", rpctypes.ErrorDesc(err), tc.what)
	}
	code, out, errOut := runCLI(t, 20*time.Second, "move-leader", fmt.Sprintf("%x", lid), "--endpoints", joinEndpoints(c))
	require.Equal(t, 1, code, out)
	require.Contains(t, errOut, "etcdserver: bad leader transferee")

	t.Logf("Step 3: the leader did not change, on any member...")
	for _, m := range c.members {
		st, err := m.status()
		require.NoError(t, err, m.name)
		require.Equal(t, leadID, st.Leader, m.name)
	}

	t.Logf("Step 4: once promoted, the former learner takes leadership...")
	waitFor(t, 20*time.Second, "the learner to be promoted", func() bool {
		_, err := lcli.MemberPromote(ctxT(t, 5*time.Second), lid)
		return err == nil
	})
	_, err = lcli.MoveLeader(ctxT(t, 10*time.Second), lid)
	require.NoError(t, err)
	for _, m := range c.members {
		waitFor(t, 5*time.Second, m.name+" to see m4 lead", func() bool {
			st, err := m.status()
			return err == nil && st.Leader == lid
		})
	}
	resp := mustPut(t, newClient(t, m4.endpoint()), "after-move", "1")
	require.Equal(t, lid, resp.Header.MemberId)
}
