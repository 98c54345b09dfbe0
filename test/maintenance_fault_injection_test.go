package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Maintenance under faults: space exhaustion and recovery, a member killed
// while streaming a snapshot, members killed together and restarted, a
// burst of requests.

// TestMaintenanceFault_QuotaExhaustion fills a member with a tiny
// --quota-backend-bytes: NOSPACE is raised, writes are refused with
// ErrNoSpace while reads and deletes work, and compact + defrag + disarm
// restore writes.
func TestMaintenanceFault_QuotaExhaustion(t *testing.T) {
	for _, eng := range []string{engineRocksDB, engineMemory} {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			quota := 256 << 10
			if eng == engineRocksDB {
				quota = 2 << 20 // the empty RocksDB (MANIFEST, OPTIONS, LOG) takes ~150 KB
			}
			m := startMember(t, eng, memberOpts{extraFlags: []string{"--quota-backend-bytes", fmt.Sprint(quota)}})
			cli := newClient(t, m.endpoint())
			id := memberID(t, m)
			val := strings.Repeat("q", 8<<10)

			t.Logf("Step 1: writing 8 KiB values until the quota (%d bytes) refuses one...", quota)
			var written int
			var lastErr error
			for i := 0; i < 64*quota/len(val); i++ {
				_, err := cli.Put(ctxT(t, 5*time.Second), fmt.Sprintf("fill/%05d", i), val)
				if err != nil {
					lastErr = err
					break
				}
				written++
			}
			requireErrIs(t, lastErr, rpctypes.ErrNoSpace, "put past the quota")
			t.Logf("%d puts acknowledged before NOSPACE", written)
			require.Positive(t, written)

			t.Logf("Step 2: the NOSPACE alarm is raised for this member...")
			waitFor(t, 10*time.Second, "the NOSPACE alarm", func() bool {
				al, err := cli.AlarmList(ctxT(t, 5*time.Second))
				return err == nil && len(al.Alarms) == 1 && al.Alarms[0].MemberID == id && al.Alarms[0].Alarm == pb.AlarmType_NOSPACE
			})
			st, err := cli.Status(ctxT(t, 5*time.Second), m.endpoint())
			require.NoError(t, err)
			require.Equal(t, []string{fmt.Sprintf("memberID:%d alarm:NOSPACE ", id)}, st.Errors)
			require.Equal(t, int64(quota), st.DbSizeQuota)

			t.Logf("Step 3: puts, txn puts and lease grants fail; reads, deletes and txn deletes work...")
			_, err = cli.Put(ctxT(t, 5*time.Second), "small", "1")
			requireErrIs(t, err, rpctypes.ErrNoSpace, "small put under NOSPACE")
			_, err = cli.Txn(ctxT(t, 5*time.Second)).Then(clientv3.OpPut("t", "1")).Commit()
			requireErrIs(t, err, rpctypes.ErrNoSpace, "txn put under NOSPACE")
			_, err = cli.Grant(ctxT(t, 5*time.Second), 60)
			requireErrIs(t, err, rpctypes.ErrNoSpace, "lease grant under NOSPACE")
			resp := mustGet(t, cli, "fill/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			require.Equal(t, int64(written), resp.Count)
			_, err = cli.Txn(ctxT(t, 5*time.Second)).Then(clientv3.OpDelete("fill/00000")).Commit()
			require.NoError(t, err)
			dr, err := cli.Delete(ctxT(t, 5*time.Second), "fill/", clientv3.WithPrefix())
			require.NoError(t, err)
			require.Equal(t, int64(written-1), dr.Deleted)

			t.Logf("Step 4: compact and defragment (still refused until disarmed)...")
			_, err = cli.Compact(ctxT(t, 10*time.Second), dr.Header.Revision, clientv3.WithCompactPhysical())
			require.NoError(t, err)
			code, _, errOut := runCLI(t, 60*time.Second, "defrag", "--endpoints", m.endpoint())
			require.Equal(t, 0, code, errOut)
			_, err = cli.Put(ctxT(t, 5*time.Second), "small", "1")
			requireErrIs(t, err, rpctypes.ErrNoSpace, "put before disarm")
			st, err = cli.Status(ctxT(t, 5*time.Second), m.endpoint())
			require.NoError(t, err)
			t.Logf("after defrag: db size %d, in use %d (quota %d)", st.DbSize, st.DbSizeInUse, quota)
			require.Less(t, st.DbSize, int64(quota))

			t.Logf("Step 5: metastore alarm disarm restores writes...")
			code, out, errOut := runCLI(t, 20*time.Second, "alarm", "disarm", "--endpoints", m.endpoint())
			require.Equal(t, 0, code, errOut)
			require.Equal(t, fmt.Sprintf("memberID:%d alarm:NOSPACE\n", id), out)
			pr := mustPut(t, cli, "small", "1")
			require.Positive(t, pr.Header.Revision)
			_, err = cli.Grant(ctxT(t, 5*time.Second), 60)
			require.NoError(t, err)
			code, out, errOut = runCLI(t, 20*time.Second, "endpoint", "health", "--endpoints", m.endpoint(), "-w", "simple")
			require.Equal(t, 0, code, errOut)
			require.Contains(t, out, "is healthy")
		})
	}
}

// TestMaintenanceFault_KilledMidSnapshot: SIGKILL while a snapshot streams;
// the client gets an error (not a short file passed off as complete), and
// the member restarts from its data directory with the same data.
func TestMaintenanceFault_KilledMidSnapshot(t *testing.T) {
	m := startMember(t, engineRocksDB)
	cli := newClient(t, m.endpoint())
	t.Logf("Step 1: writing 4 MiB...")
	val := strings.Repeat("s", 16<<10)
	for i := 0; i < 256; i++ {
		mustPut(t, cli, fmt.Sprintf("s/%04d", i), val)
	}
	rev := currentRev(t, cli)
	before, err := cli.HashKV(ctxT(t, 5*time.Second), m.endpoint(), rev)
	require.NoError(t, err)

	t.Logf("Step 2: starting a snapshot, reading 64 KiB, then SIGKILL...")
	rc, err := cli.Snapshot(ctxT(t, 30*time.Second))
	require.NoError(t, err)
	head := make([]byte, 64<<10)
	_, err = io.ReadFull(rc, head)
	require.NoError(t, err)
	require.Equal(t, "MSSNAP1\n", string(head[:8]))
	m.kill()
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	t.Logf("client read %d more bytes, then: %v", n, err)
	require.Error(t, err, "a snapshot cut short must not end cleanly")
	require.Less(t, int64(len(head))+n, int64(256*len(val)))

	t.Logf("Step 3: restarting from the same data dir; data intact...")
	m.restart()
	waitFor(t, 20*time.Second, "the member to lead again", func() bool {
		st, err := m.status()
		return err == nil && st.Leader != 0
	})
	cli2 := newClient(t, m.endpoint())
	after, err := cli2.HashKV(ctxT(t, 5*time.Second), m.endpoint(), rev)
	require.NoError(t, err)
	require.Equal(t, before.Hash, after.Hash)
	resp := mustGet(t, cli2, "s/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.Equal(t, int64(256), resp.Count)

	t.Logf("Step 4: a full snapshot works after the restart...")
	rc, err = cli2.Snapshot(ctxT(t, 30*time.Second))
	require.NoError(t, err)
	n, err = io.Copy(io.Discard, rc)
	rc.Close()
	require.NoError(t, err)
	require.Equal(t, int64(32), n%512)
	require.Greater(t, n, int64(256*len(val)))
}

// TestMaintenanceFault_MembersKilledTogether: two of three members are
// SIGKILLed at the same moment under writes and restarted: no acknowledged
// write is lost and every member ends with the same HashKV.
func TestMaintenanceFault_MembersKilledTogether(t *testing.T) {
	for _, eng := range []string{engineRocksDB, engineMemory} {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t, eng, 3)
			cli := newClient(t, c.endpoints()...)
			t.Logf("Step 1: 4 writers...")
			load := startWriteLoad(cli, 4, 100000)
			waitFor(t, 10*time.Second, "100 acknowledged writes", func() bool { return load.ackedCount() >= 100 })

			t.Logf("Step 2: SIGKILL two members at once (one of them the leader)...")
			lead := c.leader()
			victims := []*member{lead}
			for _, m := range c.members {
				if m != lead && len(victims) < 2 {
					victims = append(victims, m)
				}
			}
			var wg sync.WaitGroup
			for _, v := range victims {
				wg.Add(1)
				go func() {
					defer wg.Done()
					v.kill()
				}()
			}
			wg.Wait()

			t.Logf("Step 3: restarting both...")
			for _, v := range victims {
				v.restart()
			}
			c.waitReady(30 * time.Second)
			waitFor(t, 20*time.Second, "writes to resume", func() bool {
				before := load.ackedCount()
				time.Sleep(200 * time.Millisecond)
				return load.ackedCount() > before+10
			})
			acked := load.finish()

			t.Logf("Step 4: %d acknowledged writes; checking every member...", len(acked))
			rev := currentRev(t, cli)
			n := checkAcked(t, c, acked, rev)
			require.GreaterOrEqual(t, n, len(acked))
			waitSameHashKV(t, c, cli, rev, 20*time.Second)
		})
	}
}

// TestMaintenanceFault_RecoveryAfterBurst: 2000 puts from 200 goroutines
// at once on a small --max-pending-proposals; each either succeeds or
// fails with "too many requests", and the cluster serves normally after.
func TestMaintenanceFault_RecoveryAfterBurst(t *testing.T) {
	c := startCluster(t, engineRocksDB, 3, memberOpts{extraFlags: []string{"--max-pending-proposals", "50"}})
	cli := newClient(t, c.endpoints()...)
	t.Logf("Step 1: the burst...")
	var ok, tooMany atomic.Int64
	var other sync.Map
	var wg sync.WaitGroup
	for g := 0; g < 200; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cli.Put(ctx, fmt.Sprintf("b/%03d/%02d", g, i), "x")
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, rpctypes.ErrTooManyRequests):
					tooMany.Add(1)
				default:
					other.Store(err.Error(), true)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d ok, %d too many requests", ok.Load(), tooMany.Load())
	other.Range(func(k, _ any) bool {
		t.Errorf("unexpected error: %v", k)
		return true
	})
	require.Equal(t, int64(2000), ok.Load()+tooMany.Load())
	require.Positive(t, ok.Load())

	t.Logf("Step 2: the cluster serves normally: count, status, HashKV...")
	resp := mustGet(t, cli, "b/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.Equal(t, ok.Load(), resp.Count)
	pr := mustPut(t, cli, "after", "1")
	waitSameHashKV(t, c, cli, pr.Header.Revision, 10*time.Second)
	for _, m := range c.members {
		st, err := m.status()
		require.NoError(t, err)
		require.Empty(t, st.Errors)
	}
}

// TestMaintenanceFault_DiskNearlyFull: a write that would leave the data
// directory's filesystem with less free space than --disk-free-min-bytes is
// refused as over the quota (ErrNoSpace, NOSPACE alarm, a warning naming
// the free space), before a full disk fails the raft log. The minimum is
// set above any disk's size, so every write is "too much" on any machine.
func TestMaintenanceFault_DiskNearlyFull(t *testing.T) {
	t.Parallel()
	m := startMember(t, engineRocksDB, memberOpts{extraFlags: []string{"--disk-free-min-bytes", fmt.Sprint(int64(1) << 60)}})
	cli := newClient(t, m.endpoint())
	id := memberID(t, m)

	t.Logf("Step 1: a put is refused with NOSPACE and the alarm is raised for this member...")
	_, err := cli.Put(ctxT(t, 5*time.Second), "k", "v")
	requireErrIs(t, err, rpctypes.ErrNoSpace, "put with too little free disk space")
	waitFor(t, 10*time.Second, "the NOSPACE alarm", func() bool {
		al, err := cli.AlarmList(ctxT(t, 5*time.Second))
		return err == nil && len(al.Alarms) == 1 && al.Alarms[0].MemberID == id && al.Alarms[0].Alarm == pb.AlarmType_NOSPACE
	})
	logText, err := os.ReadFile(m.logPath)
	require.NoError(t, err)
	require.Contains(t, string(logText), "the data directory's filesystem is nearly full")
	require.Contains(t, string(logText), `"free-bytes"`)

	t.Logf("Step 2: reads and deletes still work; lease grants are refused too...")
	require.Zero(t, mustGet(t, cli, "k").Count)
	_, err = cli.Delete(ctxT(t, 5*time.Second), "k")
	require.NoError(t, err)
	_, err = cli.Grant(ctxT(t, 5*time.Second), 60)
	requireErrIs(t, err, rpctypes.ErrNoSpace, "lease grant with too little free disk space")

	t.Logf("Step 3: restarted with room to spare, writes wait for the operator's disarm, as after a quota alarm...")
	require.NoError(t, m.stop())
	m.args = append(m.args, "--disk-free-min-bytes", "1")
	m.restart()
	waitFor(t, 20*time.Second, "restarted member to lead", func() bool {
		st, err := m.status()
		return err == nil && st.Leader != 0
	})
	_, err = cli.Put(ctxT(t, 5*time.Second), "k", "v")
	requireErrIs(t, err, rpctypes.ErrNoSpace, "put before disarm")
	code, out, errOut := runCLI(t, 20*time.Second, "alarm", "disarm", "--endpoints", m.endpoint())
	require.Equal(t, 0, code, errOut)
	require.Equal(t, fmt.Sprintf("memberID:%d alarm:NOSPACE\n", id), out)
	require.Positive(t, mustPut(t, cli, "k", "v").Header.Revision)
}
