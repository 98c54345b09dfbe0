package test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Auto-compaction on running servers (--auto-compaction-mode,
// --auto-compaction-retention; server/autocompact.go), as etcd's: in
// periodic mode the leader compacts, once a retention period, to the
// revision that was current one retention ago; in revision mode it keeps
// the last N revisions. Compaction is observed from outside through
// HashKV's compact_revision and reads at old revisions.

// compactRevOf is m's compaction revision (HashKV reports it).
func compactRevOf(t *testing.T, cli *clientv3.Client, m *member) int64 {
	t.Helper()
	resp, err := cli.HashKV(ctxT(t, 5*time.Second), m.endpoint(), 0)
	require.NoError(t, err, m.name)
	return resp.CompactRevision
}

// TestOpsAutoCompaction_Periodic: with a retention of 1 s the member never
// compacts history younger than 1 s, compacts again and again while
// writes go on, and ends up compacted to the last write.
func TestOpsAutoCompaction_Periodic(t *testing.T) {
	const retention = time.Second
	for _, engine := range []string{engineMemory, engineRocksDB} {
		t.Run(engine, func(t *testing.T) {
			started := time.Now()
			m := startMember(t, engine, memberOpts{extraFlags: []string{
				"--auto-compaction-mode", "periodic", "--auto-compaction-retention", retention.String()}})
			cli := newClient(t, m.endpoint())
			base := mustPut(t, cli, "k", "base").Header.Revision

			t.Logf("Step 1: writing k every 50 ms for 3 s while watching the compaction revision...")
			type compaction struct {
				at  time.Time
				rev int64
			}
			var (
				mu sync.Mutex
				// sent maps a revision to when its put was sent; revision 1
				// (the empty store) exists from the start.
				sent        = map[int64]time.Time{1: started, base: time.Now()}
				compactions []compaction
			)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				last := int64(-1) // HashKV's compact_revision before any compaction
				for {
					select {
					case <-stop:
						return
					case <-time.After(25 * time.Millisecond):
					}
					resp, err := cli.HashKV(ctxT(t, 5*time.Second), m.endpoint(), 0)
					if err != nil {
						continue
					}
					if resp.CompactRevision != last {
						last = resp.CompactRevision
						mu.Lock()
						compactions = append(compactions, compaction{time.Now(), last})
						mu.Unlock()
					}
				}
			}()
			var lastRev int64
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				at := time.Now()
				lastRev = mustPut(t, cli, "k", at.Format(time.RFC3339Nano)).Header.Revision
				mu.Lock()
				sent[lastRev] = at
				mu.Unlock()
			}
			t.Logf("wrote revisions %d..%d", base, lastRev)

			t.Logf("Step 2: waiting until the last write is compacted (one retention after it)...")
			waitFor(t, 10*time.Second, fmt.Sprintf("compaction to the last write %d", lastRev), func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(compactions) > 0 && compactions[len(compactions)-1].rev == lastRev
			})
			close(stop)
			wg.Wait()

			t.Logf("Step 3: %d compactions seen; none removed history younger than %v...", len(compactions), retention)
			var revs []int64
			for _, c := range compactions {
				revs = append(revs, c.rev)
				at, ok := sent[c.rev]
				require.True(t, ok, "compaction to %d, which is not a revision written here (%v)", c.rev, revs)
				// NB: the write of c.rev was sent before the leader sampled
				// c.rev, which was at least a retention before the compaction,
				// which came before it was seen here.
				require.LessOrEqual(t, at, c.at.Add(-retention),
					"compaction to %d seen %v after its write: younger than the retention", c.rev, c.at.Sub(at))
			}
			require.IsIncreasing(t, revs)
			require.GreaterOrEqual(t, len(compactions), 3, "compactions while writing (every %v) and after: %v", retention, revs)

			t.Logf("Step 4: a read below the last write fails with etcd's compacted error; at it, it answers...")
			_, err := cli.Get(ctxT(t, 5*time.Second), "k", clientv3.WithRev(lastRev-1))
			requireErrIs(t, err, rpctypes.ErrCompacted, "read below the compaction")
			require.Equal(t, "etcdserver: mvcc: required revision has been compacted", rpctypes.ErrorDesc(err))
			r, err := cli.Get(ctxT(t, 5*time.Second), "k", clientv3.WithRev(lastRev))
			require.NoError(t, err)
			require.Len(t, r.Kvs, 1)
			require.Equal(t, lastRev, r.Kvs[0].ModRevision)
		})
	}
}

// TestOpsAutoCompaction_RevisionOnCluster: in revision mode every member
// ends compacted to exactly current-N, and after a leadership move the new
// leader keeps compacting.
func TestOpsAutoCompaction_RevisionOnCluster(t *testing.T) {
	const keep = 10
	c := startCluster(t, engineMemory, 3, memberOpts{extraFlags: []string{"--auto-compaction-mode", "revision",
		"--auto-compaction-retention", fmt.Sprint(keep), "--auto-compaction-interval", "100ms"}})
	cli := newClient(t, c.endpoints()...)
	checkAll := func(step string, rev int64) {
		for _, m := range c.members {
			waitFor(t, 10*time.Second, fmt.Sprintf("%s: %s compacted to %d", step, m.name, rev-keep), func() bool {
				return compactRevOf(t, cli, m) == rev-keep
			})
			mc := newClient(t, m.endpoint())
			_, err := mc.Get(ctxT(t, 5*time.Second), "k", clientv3.WithRev(rev-keep-1), clientv3.WithSerializable())
			requireErrIs(t, err, rpctypes.ErrCompacted, m.name+" read below the kept revisions")
			r, err := mc.Get(ctxT(t, 5*time.Second), "k", clientv3.WithRev(rev-keep), clientv3.WithSerializable())
			require.NoError(t, err, m.name)
			require.Len(t, r.Kvs, 1, m.name)
			require.Equal(t, rev-keep, r.Kvs[0].ModRevision, m.name)
		}
	}

	t.Logf("Step 1: 30 writes; every member ends compacted to current-%d...", keep)
	var rev int64
	for i := 0; i < 30; i++ {
		rev = mustPut(t, cli, "k", fmt.Sprint(i)).Header.Revision
	}
	checkAll("first leader", rev)

	t.Logf("Step 2: moving leadership; 20 more writes; the new leader compacts...")
	lead := c.leader()
	var next *member
	for _, m := range c.members {
		if m != lead {
			next = m
			break
		}
	}
	_, err := newClient(t, lead.endpoint()).MoveLeader(ctxT(t, 10*time.Second), memberID(t, next))
	require.NoError(t, err)
	waitFor(t, 10*time.Second, next.name+" to lead", func() bool { return c.leader() == next })
	for i := 0; i < 20; i++ {
		rev = mustPut(t, cli, "k", fmt.Sprint(30+i)).Header.Revision
	}
	checkAll("new leader", rev)
}
