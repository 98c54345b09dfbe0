package test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Process-level replication faults: members are real `metastore serve`
// processes, killed with SIGKILL (or frozen with SIGSTOP) and restarted from
// their data directories. Network partitions proper are covered in-process
// by raft/cluster_test.go (TestPartitionedMember_CannotReadButCatchesUp,
// with the transport's drop filter); here a frozen leader stands in for a
// leader cut off from the others.

// snapshotLogLine is what raft logs when it installs a snapshot it received.
const snapshotLogLine = "installing snapshot from leader"

// writeLoad runs writers goroutines that put unique keys ("w<writer>-<n>" =
// "v<writer>-<n>") through cli until stop is closed or each has made
// maxPerWriter attempts, and records every acknowledged put.
type writeLoad struct {
	mu struct {
		sync.Mutex
		acked  map[string]string
		errors map[string]int // failed puts by error message
	}
	attempts, failures atomic.Int64
	stop               chan struct{}
	wg                 sync.WaitGroup
}

func startWriteLoad(cli *clientv3.Client, writers, maxPerWriter int) *writeLoad {
	l := &writeLoad{stop: make(chan struct{})}
	l.mu.acked = map[string]string{}
	l.mu.errors = map[string]int{}
	for w := 0; w < writers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < maxPerWriter; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				k, v := fmt.Sprintf("w%d-%06d", w, i), fmt.Sprintf("v%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := cli.Put(ctx, k, v)
				cancel()
				l.attempts.Add(1)
				if err != nil {
					l.failures.Add(1)
					l.mu.Lock()
					l.mu.errors[err.Error()]++
					l.mu.Unlock()
					continue
				}
				l.mu.Lock()
				l.mu.acked[k] = v
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *writeLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.mu.acked)
}

// finish stops the writers, waits for them and returns the acknowledged puts.
func (l *writeLoad) finish() map[string]string {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.acked
}

// checkAcked verifies, on every running member, with a serializable read at
// revision rev (polled until the member has applied it), that every
// acknowledged put is there with its value, that every "w" key there has
// the value its name says (no torn or foreign writes), and that all members
// hold the same keys. It returns how many keys each member holds.
func checkAcked(t *testing.T, c *cluster, acked map[string]string, rev int64) int {
	t.Helper()
	var first []string
	for _, m := range c.members {
		if !m.running() {
			continue
		}
		mcli := newClient(t, m.endpoint())
		var resp *clientv3.GetResponse
		waitFor(t, 20*time.Second, m.name+" to serve revision "+fmt.Sprint(rev), func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			r, err := mcli.Get(ctx, "w", clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithSerializable())
			resp = r
			return err == nil
		})
		got := make(map[string]string, len(resp.Kvs))
		var lines []string
		for _, kv := range resp.Kvs {
			k, v := string(kv.Key), string(kv.Value)
			got[k] = v
			lines = append(lines, k+"="+v)
			var w, i int
			_, err := fmt.Sscanf(k, "w%d-%d", &w, &i)
			require.NoError(t, err, "unexpected key %q on %s", k, m.name)
			require.Equal(t, fmt.Sprintf("v%d-%d", w, i), v, "value of %s on %s", k, m.name)
		}
		missing := 0
		for k, v := range acked {
			if got[k] != v {
				if missing < 5 {
					t.Errorf("%s: acknowledged %s=%s is %q", m.name, k, v, got[k])
				}
				missing++
			}
		}
		require.Zero(t, missing, "%d acknowledged writes missing on %s", missing, m.name)
		sort.Strings(lines)
		if first == nil {
			first = lines
		} else {
			require.Equal(t, len(first), len(lines), "key count on %s", m.name)
			require.Equal(t, strings.Join(first, "\n"), strings.Join(lines, "\n"), "keys on %s", m.name)
		}
	}
	return len(first)
}

// waitNewLeader polls the running members until one reports a leader other
// than old, and returns that leader's ID.
func waitNewLeader(t *testing.T, c *cluster, old uint64, timeout time.Duration) (lead, term uint64) {
	t.Helper()
	waitFor(t, timeout, "a new leader", func() bool {
		for _, m := range c.members {
			if !m.running() {
				continue
			}
			st, err := m.status()
			if err == nil && st.Leader != 0 && st.Leader != old {
				lead, term = st.Leader, st.Header.GetRaftTerm()
				return true
			}
		}
		return false
	})
	return lead, term
}

// freeze and thaw stop and continue m's process (SIGSTOP/SIGCONT).
func freeze(t *testing.T, m *member) { signalNoWait(t, m, syscall.SIGSTOP) }
func thaw(t *testing.T, m *member)   { signalNoWait(t, m, syscall.SIGCONT) }

func signalNoWait(t *testing.T, m *member, sig syscall.Signal) {
	t.Helper()
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	require.NotNil(t, cmd, "%s is not running", m.name)
	require.NoError(t, cmd.Process.Signal(sig))
}

func TestRaftFault_KillLeaderUnderLoad(t *testing.T) {
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) { testKillLeaderUnderLoad(t, engine) })
	}
}

func testKillLeaderUnderLoad(t *testing.T, engine string) {
	const writers, maxPerWriter = 8, 5000
	t.Logf("Step 1: starting 3 %s members", engine)
	c := startCluster(t, engine, 3)
	old := c.leader()
	oldID := memberID(t, old)
	cli := newClient(t, c.endpoints()...)

	t.Logf("Step 2: %d writers put unique keys; waiting for 300 acknowledgements", writers)
	load := startWriteLoad(cli, writers, maxPerWriter)
	waitFor(t, 20*time.Second, "300 acknowledged puts", func() bool { return load.ackedCount() >= 300 })

	st, err := old.status()
	require.NoError(t, err)
	oldTerm := st.Header.GetRaftTerm()
	t.Logf("Step 3: SIGKILL the leader %s (term %d) under load; a new leader must be elected within 3s per election round", old.name, oldTerm)
	old.kill()
	killed := time.Now()
	newID, newTerm := waitNewLeader(t, c, oldID, 10*time.Second)
	elected := time.Since(killed)
	rounds := newTerm - oldTerm
	t.Logf("new leader %x reported %v after the kill, term %d: %d election round(s)", newID, elected, newTerm, rounds)
	require.NotEqual(t, oldID, newID)
	require.GreaterOrEqual(t, rounds, uint64(1))
	// A round waits for a follower's randomized election timeout (1-2 s at
	// default timings). A split vote (both followers stood at once, each
	// voting for itself) costs one more round: a term more, and as long again.
	require.Less(t, elected, time.Duration(rounds)*3*time.Second, "election after the leader's death")

	t.Logf("Step 4: writes keep being acknowledged by the new leader")
	before := load.ackedCount()
	waitFor(t, 20*time.Second, "300 more acknowledged puts", func() bool { return load.ackedCount() >= before+300 })

	t.Logf("Step 5: restarting %s from its data dir under load", old.name)
	old.restart()
	c.waitReady(30 * time.Second)
	before = load.ackedCount()
	waitFor(t, 20*time.Second, "200 more acknowledged puts", func() bool { return load.ackedCount() >= before+200 })
	acked := load.finish()
	t.Logf("%d puts attempted, %d acknowledged, %d failed: %v", load.attempts.Load(), len(acked), load.failures.Load(), load.mu.errors)
	require.Equal(t, load.attempts.Load(), int64(len(acked))+load.failures.Load())

	t.Logf("Step 6: every acknowledged put is on every member with its value, at the same revision")
	rev := currentRev(t, cli)
	n := checkAcked(t, c, acked, rev)
	require.GreaterOrEqual(t, n, len(acked))
	require.LessOrEqual(t, int64(n), load.attempts.Load(), "more keys than puts attempted")

	t.Logf("Step 7: HashKV at revision %d is the same on all members", rev)
	h := waitSameHashKV(t, c, cli, rev, 20*time.Second)
	t.Logf("hash %08x at revision %d over %d keys", h, rev, n)
}

func TestRaftFault_RestartedFollowerCatchesUpFromLog(t *testing.T) {
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) {
			const n = 300
			t.Logf("Step 1: starting 3 %s members; SIGKILL a follower", engine)
			c := startCluster(t, engine, 3)
			leader := c.leader()
			f := c.followers(leader)[0]
			// The writes go through the members that stay up: a put sent on
			// the connection to f as it dies may fail (clientv3 does not
			// retry a put that may have been sent).
			var up []string
			for _, m := range c.members {
				if m != f {
					up = append(up, m.endpoint())
				}
			}
			cli := newClient(t, up...)
			_, err := cli.Put(ctxT(t, 5*time.Second), "w0-000000", "v0-0")
			require.NoError(t, err)
			f.kill()

			t.Logf("Step 2: writing %d keys while %s is down", n, f.name)
			acked := map[string]string{"w0-000000": "v0-0"}
			for i := 1; i <= n; i++ {
				k, v := fmt.Sprintf("w0-%06d", i), fmt.Sprintf("v0-%d", i)
				_, err := cli.Put(ctxT(t, 5*time.Second), k, v)
				require.NoError(t, err)
				acked[k] = v
			}

			t.Logf("Step 3: restarting %s; its serializable read must see the last key", f.name)
			f.restart()
			fcli := newClient(t, f.endpoint())
			last := fmt.Sprintf("w0-%06d", n)
			waitFor(t, 20*time.Second, f.name+" to serve "+last, func() bool {
				r, err := fcli.Get(ctxT(t, 2*time.Second), last, clientv3.WithSerializable())
				return err == nil && len(r.Kvs) == 1 && string(r.Kvs[0].Value) == fmt.Sprintf("v0-%d", n)
			})

			t.Logf("Step 4: same keys and the same HashKV on every member; caught up from the log, not a snapshot")
			rev := currentRev(t, cli)
			require.Equal(t, n+1, checkAcked(t, c, acked, rev))
			waitSameHashKV(t, c, cli, rev, 20*time.Second)
			require.False(t, logContains(t, f, snapshotLogLine), "%s installed a snapshot", f.name)
		})
	}
}

func TestRaftFault_WipedFollowerRejoinsBySnapshot(t *testing.T) {
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) {
			const before, after = 400, 50
			t.Logf("Step 1: starting 3 %s members with --snapshot-count 100 --snapshot-catchup-entries 50; writing %d keys", engine, before)
			c := startCluster(t, engine, 3, memberOpts{extraFlags: []string{"--snapshot-count", "100", "--snapshot-catchup-entries", "50"}})
			cli := newClient(t, c.endpoints()...)
			acked := map[string]string{}
			put := func(i int) {
				k, v := fmt.Sprintf("w0-%06d", i), fmt.Sprintf("v0-%d", i)
				_, err := cli.Put(ctxT(t, 5*time.Second), k, v)
				require.NoError(t, err)
				acked[k] = v
			}
			for i := 0; i < before; i++ {
				put(i)
			}

			leader := c.leader()
			f := c.followers(leader)[0]
			oldID := memberID(t, f)
			t.Logf("Step 2: SIGKILL follower %s, MemberRemove it, wipe its data dir", f.name)
			f.kill()
			lcli := newClient(t, leader.endpoint())
			rm, err := reconfigure(t, func(ctx context.Context) (*clientv3.MemberRemoveResponse, error) {
				return lcli.MemberRemove(ctx, oldID)
			})
			require.NoError(t, err)
			require.Len(t, rm.Members, 2)
			require.NoError(t, os.RemoveAll(f.dataDir))

			t.Logf("Step 3: MemberAdd it back with its peer URL; restart it with --initial-cluster-state existing --member-id")
			add, err := reconfigure(t, func(ctx context.Context) (*clientv3.MemberAddResponse, error) {
				return lcli.MemberAdd(ctx, []string{f.peerURL})
			})
			require.NoError(t, err)
			require.NotEqual(t, oldID, add.Member.ID, "a re-added member gets a new ID")
			require.Len(t, add.Members, 3)
			f.args = joinArgs(f.args, add.Member.ID)
			f.restart()

			t.Logf("Step 4: writing %d more keys; %s must catch up by snapshot and then from the log", after, f.name)
			for i := before; i < before+after; i++ {
				put(i)
			}
			fcli := newClient(t, f.endpoint())
			last := fmt.Sprintf("w0-%06d", before+after-1)
			waitFor(t, 30*time.Second, f.name+" to serve "+last, func() bool {
				r, err := fcli.Get(ctxT(t, 2*time.Second), last, clientv3.WithSerializable())
				return err == nil && len(r.Kvs) == 1
			})
			require.Equal(t, add.Member.ID, memberID(t, f))
			require.True(t, logContains(t, f, snapshotLogLine), "%s did not install a snapshot", f.name)

			t.Logf("Step 5: same keys and the same HashKV on every member")
			rev := currentRev(t, cli)
			require.Equal(t, before+after, checkAcked(t, c, acked, rev))
			waitSameHashKV(t, c, cli, rev, 20*time.Second)
			waitMembers(t, c, expectedMembers(t, c, nil))
		})
	}
}

func TestRaftFault_FrozenLeaderServesNoStaleRead(t *testing.T) {
	t.Logf("Step 1: starting 3 members; k=before")
	c := startCluster(t, engineRocksDB, 3)
	old := c.leader()
	oldID := memberID(t, old)
	cli := newClient(t, c.endpoints()...)
	_, err := cli.Put(ctxT(t, 5*time.Second), "k", "before")
	require.NoError(t, err)
	ocli := newClient(t, old.endpoint())
	_, err = ocli.Get(ctxT(t, 5*time.Second), "k") // connected before the freeze
	require.NoError(t, err)

	t.Logf("Step 2: SIGSTOP the leader %s; the others elect a new one and take k=after", old.name)
	freeze(t, old)
	frozen := true
	defer func() {
		if frozen {
			thaw(t, old)
		}
	}()
	waitNewLeader(t, c, oldID, 10*time.Second)
	var others []string
	for _, m := range c.members {
		if m != old {
			others = append(others, m.endpoint())
		}
	}
	put, err := newClient(t, others...).Put(ctxT(t, 10*time.Second), "k", "after")
	require.NoError(t, err)

	t.Logf("Step 3: a linearizable read sent to the frozen old leader, then SIGCONT: it must not return the old value")
	type result struct {
		val string
		rev int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := ocli.Get(ctx, "k")
		if err != nil {
			got <- result{err: err}
			return
		}
		got <- result{val: string(r.Kvs[0].Value), rev: r.Header.Revision}
	}()
	time.Sleep(100 * time.Millisecond) // NB: let the request reach the frozen process's socket
	thaw(t, old)
	frozen = false
	r := <-got
	if r.err == nil {
		require.Equal(t, "after", r.val, "stale linearizable read from a deposed leader")
		require.GreaterOrEqual(t, r.rev, put.Header.Revision)
	} else {
		t.Logf("the old leader refused the read: %v", r.err)
	}

	t.Logf("Step 4: it rejoins as a follower and converges")
	c.waitReady(20 * time.Second)
	st, err := old.status()
	require.NoError(t, err)
	require.NotEqual(t, oldID, st.Leader)
	rev := currentRev(t, cli)
	waitSameHashKV(t, c, cli, rev, 20*time.Second)
	r2, err := ocli.Get(ctxT(t, 5*time.Second), "k")
	require.NoError(t, err)
	require.Equal(t, "after", string(r2.Kvs[0].Value))
}
