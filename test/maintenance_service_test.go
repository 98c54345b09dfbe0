package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
)

// Maintenance service on one member: Status, Hash, HashKV, Alarm, Snapshot
// (save, status, restore into a new member), Defragment, Downgrade.

// maintClient is the raw Maintenance client of cli (for requests clientv3
// does not expose, such as an alarm GET filtered by type).
func maintClient(cli *clientv3.Client) pb.MaintenanceClient {
	return pb.NewMaintenanceClient(cli.ActiveConnection())
}

func TestMaintenance_Status(t *testing.T) {
	for _, eng := range []string{engineRocksDB, engineMemory} {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			m := startMember(t, eng)
			cli := newClient(t, m.endpoint())
			t.Logf("Step 1: writing 10 keys...")
			for i := 0; i < 10; i++ {
				mustPut(t, cli, fmt.Sprintf("k%d", i), strings.Repeat("v", 100))
			}
			t.Logf("Step 2: checking Status...")
			st, err := cli.Status(ctxT(t, 5*time.Second), m.endpoint())
			require.NoError(t, err)
			require.Equal(t, "3.7.3", st.Version)
			require.Equal(t, "3.7.0", st.StorageVersion, "etcd 3.7.3 reports its schema, major.minor.0")
			require.Equal(t, st.Header.MemberId, st.Leader)
			require.Equal(t, int64(11), st.Header.Revision)
			require.Equal(t, int64(8<<30), st.DbSizeQuota)
			require.Positive(t, st.DbSize)
			require.Positive(t, st.DbSizeInUse)
			require.LessOrEqual(t, st.DbSizeInUse, st.DbSize)
			require.Empty(t, st.Errors)
			require.False(t, st.IsLearner)
			require.NotNil(t, st.DowngradeInfo)
			require.False(t, st.DowngradeInfo.Enabled)
			require.GreaterOrEqual(t, st.RaftIndex, st.RaftAppliedIndex)
			if eng == engineMemory {
				require.Equal(t, st.DbSize, st.DbSizeInUse, "memory engine: all data is in use")
				require.GreaterOrEqual(t, st.DbSize, int64(10*100))
			}
		})
	}
}

func TestMaintenance_HashChangesAfterPut(t *testing.T) {
	m := startMember(t, engineRocksDB)
	cli := newClient(t, m.endpoint())
	t.Logf("Step 1: hashing the empty store...")
	h1, err := cli.HashKV(ctxT(t, 5*time.Second), m.endpoint(), 0)
	require.NoError(t, err)
	require.Equal(t, int64(1), h1.HashRevision)
	t.Logf("Step 2: one put changes Hash and HashKV...")
	mustPut(t, cli, "a", "1")
	h2, err := cli.HashKV(ctxT(t, 5*time.Second), m.endpoint(), 0)
	require.NoError(t, err)
	require.Equal(t, int64(2), h2.HashRevision)
	require.NotEqual(t, h1.Hash, h2.Hash)
	t.Logf("Step 3: HashKV at the old revision is the old hash...")
	h1again, err := cli.HashKV(ctxT(t, 5*time.Second), m.endpoint(), 1)
	require.NoError(t, err)
	require.Equal(t, h1.Hash, h1again.Hash)
	hr, err := maintClient(cli).Hash(ctxT(t, 5*time.Second), &pb.HashRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(2), hr.Header.Revision)
	require.Equal(t, h2.Hash, hr.Hash)
}

func TestMaintenance_Alarm(t *testing.T) {
	m := startMember(t, engineRocksDB)
	cli := newClient(t, m.endpoint())
	id := memberID(t, m)
	other := uint64(0x1234)
	mc := maintClient(cli)
	mustPut(t, cli, "before", "1")

	t.Logf("Step 1: no alarms at start...")
	al, err := cli.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Empty(t, al.Alarms)

	t.Logf("Step 2: activating NOSPACE for this member and CORRUPT for member %x...", other)
	r, err := mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_NOSPACE})
	require.NoError(t, err)
	require.Equal(t, []*pb.AlarmMember{{MemberID: id, Alarm: pb.AlarmType_NOSPACE}}, stripAlarms(r.Alarms))
	_, err = mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: other, Alarm: pb.AlarmType_CORRUPT})
	require.NoError(t, err)

	t.Logf("Step 3: listing all, then filtered by type...")
	all, err := mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: pb.AlarmRequest_GET})
	require.NoError(t, err)
	require.ElementsMatch(t, []*pb.AlarmMember{{MemberID: id, Alarm: pb.AlarmType_NOSPACE}, {MemberID: other, Alarm: pb.AlarmType_CORRUPT}},
		stripAlarms(all.Alarms))
	ns, err := mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: pb.AlarmRequest_GET, Alarm: pb.AlarmType_NOSPACE})
	require.NoError(t, err)
	require.Equal(t, []*pb.AlarmMember{{MemberID: id, Alarm: pb.AlarmType_NOSPACE}}, stripAlarms(ns.Alarms))
	st, err := cli.Status(ctxT(t, 5*time.Second), m.endpoint())
	require.NoError(t, err)
	require.Len(t, st.Errors, 2)
	require.Contains(t, strings.Join(st.Errors, ";"), "alarm:NOSPACE")
	require.Contains(t, strings.Join(st.Errors, ";"), "alarm:CORRUPT")

	t.Logf("Step 4: with CORRUPT active every write fails with ErrCorrupt; reads work...")
	_, err = cli.Put(ctxT(t, 5*time.Second), "k", "v")
	requireErrIs(t, err, rpctypes.ErrCorrupt, "put under CORRUPT")
	_, err = cli.Delete(ctxT(t, 5*time.Second), "before")
	requireErrIs(t, err, rpctypes.ErrCorrupt, "delete under CORRUPT")
	require.Equal(t, "1", string(mustGet(t, cli, "before").Kvs[0].Value))

	t.Logf("Step 5: deactivating CORRUPT; NOSPACE still refuses puts but allows deletes...")
	d, err := mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: other, Alarm: pb.AlarmType_CORRUPT})
	require.NoError(t, err)
	require.Equal(t, []*pb.AlarmMember{{MemberID: other, Alarm: pb.AlarmType_CORRUPT}}, stripAlarms(d.Alarms))
	_, err = cli.Put(ctxT(t, 5*time.Second), "k", "v")
	requireErrIs(t, err, rpctypes.ErrNoSpace, "put under NOSPACE")
	_, err = cli.Grant(ctxT(t, 5*time.Second), 60)
	requireErrIs(t, err, rpctypes.ErrNoSpace, "lease grant under NOSPACE")
	dr, err := cli.Delete(ctxT(t, 5*time.Second), "before")
	require.NoError(t, err)
	require.Equal(t, int64(1), dr.Deleted)

	t.Logf("Step 6: deactivating an alarm that is not active answers no alarm...")
	d, err = mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: other, Alarm: pb.AlarmType_CORRUPT})
	require.NoError(t, err)
	require.Empty(t, d.Alarms)

	t.Logf("Step 7: an action outside the enum is etcd's unknown method; activating NONE or an unknown type is refused, and nothing is stored...")
	_, err = mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: 9, MemberID: other, Alarm: pb.AlarmType_NOSPACE})
	requireRPCError(t, err, codes.Unknown, "etcdserver: unknown method")
	for _, typ := range []pb.AlarmType{pb.AlarmType_NONE, 7} {
		_, err = mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: other, Alarm: typ})
		requireRPCError(t, err, codes.InvalidArgument, "etcdserver: only NOSPACE and CORRUPT alarms can be activated")
	}
	all, err = mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: pb.AlarmRequest_GET})
	require.NoError(t, err)
	require.Equal(t, []*pb.AlarmMember{{MemberID: id, Alarm: pb.AlarmType_NOSPACE}}, stripAlarms(all.Alarms))

	t.Logf("Step 8: metastore alarm list / disarm...")
	code, out, errOut := runCLI(t, 20*time.Second, "alarm", "list", "--endpoints", m.endpoint())
	require.Equal(t, 0, code, errOut)
	require.Equal(t, fmt.Sprintf("memberID:%d alarm:NOSPACE\n", id), out)
	code, out, errOut = runCLI(t, 20*time.Second, "alarm", "disarm", "--endpoints", m.endpoint())
	require.Equal(t, 0, code, errOut)
	require.Equal(t, fmt.Sprintf("memberID:%d alarm:NOSPACE\n", id), out)
	mustPut(t, cli, "k", "after-disarm")

	t.Logf("Step 9: alarms survive a restart...")
	_, err = mc.Alarm(ctxT(t, 5*time.Second), &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: other, Alarm: pb.AlarmType_NOSPACE})
	require.NoError(t, err)
	require.NoError(t, m.stop())
	m.restart()
	waitFor(t, 20*time.Second, "restarted member to lead", func() bool {
		st, err := m.status()
		return err == nil && st.Leader != 0
	})
	cli2 := newClient(t, m.endpoint())
	al, err = cli2.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Equal(t, []*pb.AlarmMember{{MemberID: other, Alarm: pb.AlarmType_NOSPACE}}, stripAlarms(al.Alarms))
}

func stripAlarms(as []*pb.AlarmMember) []*pb.AlarmMember {
	out := make([]*pb.AlarmMember, 0, len(as))
	for _, a := range as {
		out = append(out, &pb.AlarmMember{MemberID: a.MemberID, Alarm: a.Alarm})
	}
	return out
}

// TestMaintenance_SnapshotSaveRestore backs a member up with `metastore
// snapshot save`, checks the file with `snapshot status`, restores it into
// a new member on the other engine and compares everything.
func TestMaintenance_SnapshotSaveRestore(t *testing.T) {
	for _, eng := range []string{engineRocksDB, engineMemory} {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			m := startMember(t, eng)
			cli := newClient(t, m.endpoint())
			t.Logf("Step 1: writing history: versions, a delete, a lease, a compaction...")
			for i := 0; i < 3; i++ {
				mustPut(t, cli, "multi", fmt.Sprintf("v%d", i))
			}
			mustPut(t, cli, "gone", "x")
			_, err := cli.Delete(ctxT(t, 5*time.Second), "gone")
			require.NoError(t, err)
			lease, err := cli.Grant(ctxT(t, 5*time.Second), 3600)
			require.NoError(t, err)
			mustPut(t, cli, "leased", "l", clientv3.WithLease(lease.ID))
			for i := 0; i < 20; i++ {
				mustPut(t, cli, fmt.Sprintf("k%02d", i), strings.Repeat("x", i*10))
			}
			_, err = cli.Compact(ctxT(t, 5*time.Second), 3)
			require.NoError(t, err)
			before := mustGet(t, cli, "", clientv3.WithPrefix())
			rev := before.Header.Revision
			hk, err := cli.HashKV(ctxT(t, 5*time.Second), m.endpoint(), rev)
			require.NoError(t, err)

			t.Logf("Step 2: metastore snapshot save...")
			file := filepath.Join(t.TempDir(), "backup.db")
			code, out, errOut := runCLI(t, 30*time.Second, "snapshot", "save", file, "--endpoints", m.endpoint())
			require.Equal(t, 0, code, errOut)
			require.Contains(t, out, "Snapshot saved at "+file)
			fi, err := os.Stat(file)
			require.NoError(t, err)
			require.Equal(t, int64(32), fi.Size()%512, "512*k bytes plus the SHA-256, as etcdctl expects")

			t.Logf("Step 3: metastore snapshot status...")
			code, out, errOut = runCLI(t, 30*time.Second, "snapshot", "status", file, "-w", "json")
			require.Equal(t, 0, code, errOut)
			var info struct {
				Hash            uint32 `json:"hash"`
				Revision        int64  `json:"revision"`
				CompactRevision int64  `json:"compactRevision"`
				TotalKey        int64  `json:"totalKey"`
				TotalSize       int64  `json:"totalSize"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &info))
			require.Equal(t, hk.Hash, info.Hash, "the file's HashKV equals the member's")
			require.Equal(t, rev, info.Revision)
			require.Equal(t, int64(3), info.CompactRevision)
			require.Equal(t, int64(len(before.Kvs)), info.TotalKey)
			require.Equal(t, fi.Size(), info.TotalSize)

			other := engineMemory
			if eng == engineMemory {
				other = engineRocksDB
			}
			t.Logf("Step 4: restoring into a new %s member and starting it...", other)
			ports := freePorts(t, 2)
			r := &member{t: t, name: "restored", engine: other, dataDir: filepath.Join(t.TempDir(), "restored"),
				clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), peerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
			r.logPath = r.dataDir + ".log"
			code, out, errOut = runCLI(t, 30*time.Second, "snapshot", "restore", file, "--name", r.name, "--data-dir", r.dataDir,
				"--engine", other, "--initial-cluster", r.name+"="+r.peerURL, "--initial-advertise-peer-urls", r.peerURL,
				"--initial-cluster-token", "restored-cluster")
			require.Equal(t, 0, code, errOut)
			require.Contains(t, out, "Restored "+file)
			r.args = []string{"serve", "--name", r.name, "--data-dir", r.dataDir, "--engine", other,
				"--listen-client-urls", r.clientURL, "--advertise-client-urls", r.clientURL,
				"--listen-peer-urls", r.peerURL, "--initial-advertise-peer-urls", r.peerURL,
				"--initial-cluster", r.name + "=" + r.peerURL, "--initial-cluster-token", "restored-cluster",
				"--initial-cluster-state", "new"}
			r.start()
			t.Cleanup(func() {
				r.kill()
				if t.Failed() {
					r.dumpLog()
				}
			})
			waitFor(t, 20*time.Second, "restored member to lead", func() bool {
				st, err := r.status()
				return err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId
			})

			t.Logf("Step 5: comparing keys, revisions, HashKV and the lease...")
			rcli := newClient(t, r.endpoint())
			after := mustGet(t, rcli, "", clientv3.WithPrefix())
			require.Equal(t, rev, after.Header.Revision)
			require.Equal(t, kvStrings(before.Kvs), kvStrings(after.Kvs))
			for i := range before.Kvs {
				require.Equal(t, before.Kvs[i].CreateRevision, after.Kvs[i].CreateRevision)
				require.Equal(t, before.Kvs[i].ModRevision, after.Kvs[i].ModRevision)
				require.Equal(t, before.Kvs[i].Version, after.Kvs[i].Version)
				require.Equal(t, before.Kvs[i].Lease, after.Kvs[i].Lease)
			}
			rhk, err := rcli.HashKV(ctxT(t, 5*time.Second), r.endpoint(), rev)
			require.NoError(t, err)
			require.Equal(t, hk.Hash, rhk.Hash)
			require.Equal(t, int64(3), rhk.CompactRevision)
			_, err = rcli.Get(ctxT(t, 5*time.Second), "multi", clientv3.WithRev(2))
			requireErrIs(t, err, rpctypes.ErrCompacted, "read below the compaction")
			ttl, err := rcli.TimeToLive(ctxT(t, 10*time.Second), lease.ID, clientv3.WithAttachedKeys())
			require.NoError(t, err)
			require.Equal(t, int64(3600), ttl.GrantedTTL)
			require.Equal(t, []string{"leased"}, byteStrings(ttl.Keys))
			st, err := r.status()
			require.NoError(t, err)
			require.NotEqual(t, memberID(t, m), st.Header.MemberId)

			t.Logf("Step 6: the restored member takes writes...")
			pr := mustPut(t, rcli, "new", "1")
			require.Equal(t, rev+1, pr.Header.Revision)

			t.Logf("Step 7: restore refuses a damaged file and a non-empty data dir...")
			bad := filepath.Join(t.TempDir(), "bad.db")
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			b[len(b)/2] ^= 0xFF
			require.NoError(t, os.WriteFile(bad, b, 0o600))
			code, _, errOut = runCLI(t, 30*time.Second, "snapshot", "restore", bad, "--data-dir", filepath.Join(t.TempDir(), "x"))
			require.Equal(t, 1, code)
			require.Contains(t, errOut, "SHA-256 mismatch")
			code, _, errOut = runCLI(t, 30*time.Second, "snapshot", "restore", file, "--data-dir", r.dataDir)
			require.Equal(t, 1, code)
			require.Contains(t, errOut, "exists and is not empty")
		})
	}
}

func byteStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// TestMaintenance_EtcdctlSnapshotSave: etcdctl's own snapshot save accepts
// the stream (it checks the length and the trailing SHA-256).
func TestMaintenance_EtcdctlSnapshotSave(t *testing.T) {
	m := startMember(t, engineRocksDB)
	cli := newClient(t, m.endpoint())
	mustPut(t, cli, "a", "1")
	file := filepath.Join(t.TempDir(), "e.db")
	ctlOK(t, []string{m.endpoint()}, "snapshot", "save", file)
	code, out, errOut := runCLI(t, 30*time.Second, "snapshot", "status", file, "-w", "json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"revision":2`)
}

func TestMaintenance_Defragment(t *testing.T) {
	for _, eng := range []string{engineRocksDB, engineMemory} {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			m := startMember(t, eng)
			cli := newClient(t, m.endpoint())
			t.Logf("Step 1: writing 2000 versions of 1 KiB, deleting them, compacting...")
			val := strings.Repeat("d", 1024)
			for i := 0; i < 200; i++ {
				ops := make([]clientv3.Op, 0, 10)
				for j := 0; j < 10; j++ {
					ops = append(ops, clientv3.OpPut(fmt.Sprintf("k%d", j), val))
				}
				_, err := cli.Txn(ctxT(t, 5*time.Second)).Then(ops...).Commit()
				require.NoError(t, err)
			}
			dr, err := cli.Delete(ctxT(t, 5*time.Second), "k", clientv3.WithPrefix())
			require.NoError(t, err)
			require.Equal(t, int64(10), dr.Deleted)
			_, err = cli.Compact(ctxT(t, 10*time.Second), dr.Header.Revision, clientv3.WithCompactPhysical())
			require.NoError(t, err)

			t.Logf("Step 2: defragmenting while a writer runs...")
			load := startWriteLoad(cli, 2, 1000)
			_, err = cli.Defragment(ctxT(t, 60*time.Second), m.endpoint())
			require.NoError(t, err)
			acked := load.finish()
			require.NotEmpty(t, acked, "writes went on during defragment")

			t.Logf("Step 3: sizes after defragment...")
			var st *clientv3.StatusResponse
			waitFor(t, 5*time.Second, "status", func() bool { st, err = m.status(); return err == nil })
			t.Logf("db size %d, in use %d", st.DbSize, st.DbSizeInUse)
			require.Less(t, st.DbSizeInUse, int64(1<<20), "the deleted 2 MB are not in use")
			code, out, errOut := runCLI(t, 60*time.Second, "defrag", "--endpoints", m.endpoint())
			require.Equal(t, 0, code, errOut)
			require.Equal(t, "Finished defragmenting etcd member["+m.endpoint()+"]\n", out)
			resp := mustGet(t, cli, "w", clientv3.WithPrefix(), clientv3.WithCountOnly())
			require.Equal(t, int64(len(acked)), resp.Count)
		})
	}
}

func TestMaintenance_Downgrade(t *testing.T) {
	m := startMember(t, engineMemory)
	cli := newClient(t, m.endpoint())
	ctx := ctxT(t, 10*time.Second)
	t.Logf("Step 1: validate: only the previous minor version...")
	r, err := cli.Downgrade(ctx, clientv3.DowngradeValidate, "3.6.0")
	require.NoError(t, err)
	require.Equal(t, "3.7", r.Version)
	_, err = cli.Downgrade(ctx, clientv3.DowngradeValidate, "3.5")
	requireErrIs(t, err, rpctypes.ErrInvalidDowngradeTargetVersion, "validate 3.5")
	_, err = cli.Downgrade(ctx, clientv3.DowngradeValidate, "x.y")
	requireErrIs(t, err, rpctypes.ErrWrongDowngradeVersionFormat, "validate x.y")
	t.Logf("Step 2: enable, shows in Status, second enable refused, cancel...")
	_, err = cli.Downgrade(ctx, clientv3.DowngradeEnable, "3.6")
	require.NoError(t, err)
	st, err := cli.Status(ctx, m.endpoint())
	require.NoError(t, err)
	require.True(t, st.DowngradeInfo.Enabled)
	require.Equal(t, "3.6.0", st.DowngradeInfo.TargetVersion)
	_, err = cli.Downgrade(ctx, clientv3.DowngradeEnable, "3.6")
	requireErrIs(t, err, rpctypes.ErrDowngradeInProcess, "second enable")
	_, err = cli.Downgrade(ctx, clientv3.DowngradeCancel, "")
	require.NoError(t, err)
	st, err = cli.Status(ctx, m.endpoint())
	require.NoError(t, err)
	require.False(t, st.DowngradeInfo.Enabled)

	t.Logf("Step 3: an action outside the enum is etcd's unknown method...")
	_, err = maintClient(cli).Downgrade(ctx, &pb.DowngradeRequest{Action: 9, Version: "3.6"})
	requireRPCError(t, err, codes.Unknown, "etcdserver: unknown method")
}

// TestMaintenance_AutoCompactionRevision: the leader keeps the last N
// revisions.
func TestMaintenance_AutoCompactionRevision(t *testing.T) {
	m := startMember(t, engineRocksDB, memberOpts{extraFlags: []string{"--auto-compaction-mode", "revision",
		"--auto-compaction-retention", "5", "--auto-compaction-interval", "100ms"}})
	cli := newClient(t, m.endpoint())
	var rev int64
	for i := 0; i < 20; i++ {
		rev = mustPut(t, cli, "k", fmt.Sprint(i)).Header.Revision
	}
	waitFor(t, 10*time.Second, "auto-compaction to revision-5", func() bool {
		_, err := cli.Get(context.Background(), "k", clientv3.WithRev(rev-6))
		return err != nil && strings.Contains(err.Error(), "compacted")
	})
	r, err := cli.Get(ctxT(t, 5*time.Second), "k", clientv3.WithRev(rev-5))
	require.NoError(t, err)
	require.Equal(t, "14", string(r.Kvs[0].Value))
}

// guideCommands returns the shell commands of the ```sh blocks in section
// of docs/operations.md, continuation lines joined.
func guideCommands(t *testing.T, section string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	require.NoError(t, err)
	doc := string(b)
	i := strings.Index(doc, "\n## "+section+"\n")
	require.GreaterOrEqual(t, i, 0, "section %q", section)
	doc = doc[i+1:]
	if j := strings.Index(doc[3:], "\n## "); j >= 0 {
		doc = doc[:j+3]
	}
	var cmds []string
	in := false
	cur := ""
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in:
			cur += strings.TrimSuffix(strings.TrimSpace(line), "\\")
			if strings.HasSuffix(strings.TrimSpace(line), "\\") {
				cur += " "
				continue
			}
			cmds = append(cmds, cur)
			cur = ""
		}
	}
	return cmds
}

// guideArgs splits a command of the guide into arguments, its ${VAR}s
// replaced from vars (a variable vars lacks fails the test).
func guideArgs(t *testing.T, line string, vars map[string]string) []string {
	t.Helper()
	return strings.Fields(os.Expand(line, func(k string) string {
		v, ok := vars[k]
		require.True(t, ok, "unknown variable %s in %q", k, line)
		return v
	}))
}

// TestOperationsGuide_BackupRestore runs docs/operations.md's backup and
// restore commands as written.
func TestOperationsGuide_BackupRestore(t *testing.T) {
	m := startMember(t, engineRocksDB)
	cli := newClient(t, m.endpoint())
	for i := 0; i < 5; i++ {
		mustPut(t, cli, fmt.Sprintf("guide/%d", i), fmt.Sprint(i))
	}
	before := mustGet(t, cli, "guide/", clientv3.WithPrefix())
	ports := freePorts(t, 2)
	r := &member{t: t, name: "m1", engine: engineRocksDB, dataDir: filepath.Join(t.TempDir(), "restored"),
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), peerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	r.logPath = r.dataDir + ".log"
	vars := map[string]string{"BACKUP": filepath.Join(t.TempDir(), "backup.db"), "ENDPOINT": m.endpoint(),
		"DATA_DIR": r.dataDir, "PEER_URL": r.peerURL, "CLIENT_URL": r.clientURL}
	cmds := guideCommands(t, "Backup and restore")
	require.Len(t, cmds, 4)
	for i, line := range cmds {
		args := guideArgs(t, line, vars)
		require.Equal(t, "metastore", args[0])
		t.Logf("Step %d: %s", i+1, strings.Join(args, " "))
		if args[1] == "serve" {
			r.args = args[1:]
			r.start()
			t.Cleanup(func() {
				r.kill()
				if t.Failed() {
					r.dumpLog()
				}
			})
			waitFor(t, 20*time.Second, "the restored member to lead", func() bool {
				st, err := r.status()
				return err == nil && st.Leader != 0
			})
			continue
		}
		code, out, errOut := runCLI(t, 30*time.Second, args[1:]...)
		require.Equal(t, 0, code, "%s: %s", line, errOut)
		t.Logf("%s", out)
	}
	t.Logf("Step %d: the restored member has the data...", len(cmds)+1)
	after := mustGet(t, newClient(t, r.endpoint()), "guide/", clientv3.WithPrefix())
	require.Equal(t, kvStrings(before.Kvs), kvStrings(after.Kvs))
	require.Equal(t, before.Header.Revision, after.Header.Revision)
}
