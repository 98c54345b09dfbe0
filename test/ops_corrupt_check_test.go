package test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The periodic corruption check (--corrupt-check-time, server/corrupt.go).
//
// A member is made to diverge black-box, as an operator could by mistake:
// two backups with the same revision and different values are taken from
// two single-member clusters, and the members of one new cluster are
// restored from them, m1 and m2 from the first, m3 from the second
// (`snapshot restore` leaves no raft state, so the three bootstrap one
// cluster from their flags). The cluster runs, but m3's keys differ from
// its peers' at the same revision: exactly what the check must catch. m3
// starts after m1 and m2 have elected a leader among themselves, so the
// leader (which runs the check, as in etcd) holds the majority's data and
// the alarm names m3.

// corruptCheckFlags makes the leader compare hashes every 200 ms.
var corruptCheckFlags = []string{"--corrupt-check-time", "200ms"}

// corruptChecks counts the leader's finished rounds in m's log in which
// peers members answered.
func corruptChecks(t *testing.T, m *member, peers int) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(readLog(t, m), "\n") {
		if strings.Contains(line, `"msg":"corruption check finished"`) &&
			strings.Contains(line, fmt.Sprintf(`"peers-checked":%d,`, peers)) {
			n++
		}
	}
	return n
}

// backupWith writes n keys k0..k<n-1> with value v to a fresh single
// member and saves a backup of it; it returns the file and the revision.
func backupWith(t *testing.T, v string, n int) (string, int64) {
	t.Helper()
	m := startMember(t, engineMemory)
	cli := newClient(t, m.endpoint())
	var rev int64
	for i := 0; i < n; i++ {
		rev = mustPut(t, cli, fmt.Sprintf("k%d", i), v).Header.Revision
	}
	file := filepath.Join(t.TempDir(), v+".backup")
	code, out, errOut := runCLI(t, 30*time.Second, "snapshot", "save", file, "--endpoints", m.endpoint())
	require.Equal(t, 0, code, "%s%s", out, errOut)
	m.kill()
	return file, rev
}

// divergedCluster makes the three members of the diverged cluster (none
// started): m1 and m2 restored from one backup, m3 from another with the
// same revision and different values. It returns the backups' revision.
func divergedCluster(t *testing.T, extraFlags ...string) (*cluster, int64) {
	t.Helper()
	t.Logf("Step 1: two backups at the same revision, keys k0..k4 = \"a\" in one and \"b\" in the other...")
	fileA, revA := backupWith(t, "a", 5)
	fileB, revB := backupWith(t, "b", 5)
	require.Equal(t, int64(6), revA)
	require.Equal(t, revA, revB)

	t.Logf("Step 2: restoring m1 and m2 from the first and m3 from the second, as one new cluster...")
	ports := freePorts(t, 6)
	c := &cluster{t: t, engine: engineRocksDB}
	var initial []string
	for i := 0; i < 3; i++ {
		m := migratedMember(t, fmt.Sprintf("m%d", i+1), engineRocksDB, ports[2*i:])
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.kill()
			if t.Failed() {
				m.dumpLog()
			}
		}
	})
	ic := strings.Join(initial, ",")
	for i, m := range c.members {
		file := fileA
		if i == 2 {
			file = fileB
		}
		code, out, errOut := runCLI(t, 30*time.Second, "snapshot", "restore", file, "--name", m.name, "--data-dir", m.dataDir,
			"--engine", engineRocksDB, "--initial-cluster", ic, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster-token", "diverged")
		require.Equal(t, 0, code, "%s%s", out, errOut)
		m.args = append([]string{"serve", "--name", m.name, "--data-dir", m.dataDir, "--engine", engineRocksDB,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", ic, "--initial-cluster-token", "diverged", "--initial-cluster-state", "new",
			"--log-level", "info"}, slices.Concat(corruptCheckFlags, extraFlags)...)
	}
	return c, revA
}

// startLeaderOf starts ms and returns the leader they elect.
func startLeaderOf(t *testing.T, ms ...*member) *member {
	t.Helper()
	for _, m := range ms {
		m.start()
	}
	var lead *member
	waitFor(t, 20*time.Second, "a leader among the started members", func() bool {
		for _, m := range ms {
			st, err := m.status()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				lead = m
				return true
			}
		}
		return false
	})
	return lead
}

func TestOpsCorruptCheck_DivergedMemberRaisesCorrupt(t *testing.T) {
	c, revA := divergedCluster(t)
	m1, m2, m3 := c.members[0], c.members[1], c.members[2]

	t.Logf("Step 3: m1 and m2 (equal data) elect a leader; its checks of the other pass without an alarm...")
	lead := startLeaderOf(t, m1, m2)
	waitFor(t, 20*time.Second, "3 checks of one peer on the leader", func() bool { return corruptChecks(t, lead, 1) >= 3 })
	cli := newClient(t, m1.endpoint(), m2.endpoint())
	alarms, err := cli.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms, "no alarm while the data is equal")

	t.Logf("Step 4: m3 (different values at the same revision) joins; the leader raises CORRUPT for it...")
	m3ID := startCorruptMember(t, cli, lead, m3)
	st, err := lead.status()
	require.NoError(t, err)
	require.Equal(t, st.Header.MemberId, st.Leader, "the leader did not change")

	t.Logf("Step 5: every member reports the alarm in Status errors...")
	for _, m := range c.members {
		waitFor(t, 5*time.Second, m.name+" to report the alarm", func() bool {
			st, err := m.status()
			return err == nil && len(st.Errors) == 1 && st.Errors[0] == fmt.Sprintf("memberID:%d alarm:CORRUPT ", m3ID)
		})
	}

	t.Logf("Step 6: writes fail with etcd's corrupt cluster error on every member; reads still answer...")
	for _, m := range c.members {
		mc := newClient(t, m.endpoint())
		_, err := mc.Put(ctxT(t, 5*time.Second), "after", "1")
		requireErrIs(t, err, rpctypes.ErrCorrupt, m.name+" put")
		require.Equal(t, "etcdserver: corrupt cluster", rpctypes.ErrorDesc(err))
		_, err = mc.Delete(ctxT(t, 5*time.Second), "k0")
		requireErrIs(t, err, rpctypes.ErrCorrupt, m.name+" delete")
		want := "a"
		if m == m3 {
			want = "b" // m3 answers a serializable read from its own (diverged) data
		}
		r, err := mc.Get(ctxT(t, 5*time.Second), "k0", clientv3.WithSerializable())
		require.NoError(t, err, m.name)
		require.Len(t, r.Kvs, 1, m.name)
		require.Equal(t, want, string(r.Kvs[0].Value), m.name)
	}

	t.Logf("Step 7: the guide's recovery (docs/operations.md, Corruption check): m3 stopped, then...")
	m3.kill()
	alarmLine := fmt.Sprintf("memberID:%d alarm:CORRUPT\n", m3ID)
	vars := map[string]string{"ENDPOINTS": m1.endpoint() + "," + m2.endpoint(), "CORRUPT_ID": fmt.Sprintf("%x", m3ID)}
	cmds := guideCommands(t, "Corruption check")
	require.Len(t, cmds, 3)
	for i, line := range cmds {
		args := guideArgs(t, line, vars)
		require.Equal(t, "metastore", args[0])
		t.Logf("Step 7.%d: %s", i+1, strings.Join(args, " "))
		code, out, errOut := runCLI(t, 20*time.Second, args[1:]...)
		require.Equal(t, 0, code, "%s: %s", line, errOut)
		switch args[1] {
		case "alarm": // list before, disarm after: both print the CORRUPT alarm
			require.Equal(t, alarmLine, out, line)
		case "member":
			require.Contains(t, out, fmt.Sprintf("%x", m3ID), line)
		}
	}

	t.Logf("Step 8: writes work again, and no alarm comes back...")
	members, err := cli.MemberList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Len(t, members.Members, 2)
	pr := mustPut(t, cli, "after", "1")
	require.Equal(t, revA+1, pr.Header.Revision)
	checked := corruptChecks(t, lead, 1)
	waitFor(t, 20*time.Second, "3 more checks on the leader", func() bool { return corruptChecks(t, lead, 1) >= checked+3 })
	alarms, err = cli.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms)
}

// TestOpsCorruptCheck_EqualDataNoAlarm: members with equal data never get
// an alarm, while writes and a compaction move the revision between the
// leader's hash and its peers' answers.
func TestOpsCorruptCheck_EqualDataNoAlarm(t *testing.T) {
	c := startCluster(t, engineMemory, 3, memberOpts{extraFlags: corruptCheckFlags})
	lead := c.leader()
	cli := newClient(t, c.endpoints()...)

	t.Logf("Step 1: 4 writers run while the leader checks its peers...")
	checked := corruptChecks(t, lead, 2) // rounds since the cluster started
	load := startWriteLoad(cli, 4, 100000)
	waitFor(t, 20*time.Second, "2 checks of both peers and 200 writes under load", func() bool {
		return corruptChecks(t, lead, 2) >= checked+2 && load.ackedCount() >= 200
	})

	t.Logf("Step 2: compacting halfway, then more checks under load...")
	rev := currentRev(t, cli)
	_, err := cli.Compact(ctxT(t, 5*time.Second), rev/2)
	require.NoError(t, err)
	checked = corruptChecks(t, lead, 2)
	waitFor(t, 20*time.Second, "3 more checks of both peers", func() bool { return corruptChecks(t, lead, 2) >= checked+3 })
	acked := load.finish()
	require.NotEmpty(t, acked)

	t.Logf("Step 3: %d writes acknowledged; no alarm anywhere, equal HashKV, writes still accepted...", len(acked))
	alarms, err := cli.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms)
	require.False(t, logContains(t, lead, "corruption check: member's"), "no mismatch logged")
	for _, m := range c.members {
		st, err := m.status()
		require.NoError(t, err)
		require.Empty(t, st.Errors, m.name)
	}
	rev = currentRev(t, cli)
	checkAcked(t, c, acked, rev)
	waitSameHashKV(t, c, cli, rev, 10*time.Second)
	mustPut(t, cli, "after", "1")
}

// enableRootAuth creates root (root role) and enables auth, as an operator
// does, and returns a client logged in as root.
// startCorruptMember starts m, whose values differ from the others' at the
// same revision, waits for the leader to raise CORRUPT for it (as cli sees
// the alarms), and returns m's ID.
func startCorruptMember(t *testing.T, cli *clientv3.Client, lead, m *member) uint64 {
	t.Helper()
	start := time.Now()
	m.start()
	id := memberID(t, m)
	waitFor(t, 15*time.Second, "a CORRUPT alarm", func() bool {
		a, err := cli.AlarmList(ctxT(t, 5*time.Second))
		return err == nil && len(a.Alarms) > 0
	})
	t.Logf("CORRUPT raised %v after %s started", time.Since(start).Round(time.Millisecond), m.name)
	alarms, err := cli.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Equal(t, []*pb.AlarmMember{{MemberID: id, Alarm: pb.AlarmType_CORRUPT}}, stripAlarms(alarms.Alarms))
	require.True(t, logContains(t, lead, "member's hash differs from the leader's"), "the leader logged the mismatch")
	return id
}

func enableRootAuth(t *testing.T, eps ...string) *clientv3.Client {
	t.Helper()
	anon := newClient(t, eps...)
	ctx := ctxT(t, 20*time.Second)
	_, err := anon.UserAdd(ctx, "root", "rootpw")
	require.NoError(t, err)
	_, err = anon.RoleAdd(ctx, "root")
	require.NoError(t, err)
	_, err = anon.UserGrantRole(ctx, "root", "root")
	require.NoError(t, err)
	_, err = anon.AuthEnable(ctx)
	require.NoError(t, err)
	// NB: eps[0] may be a follower that applies the AuthEnable a moment
	// after the member that answered it.
	waitFor(t, 10*time.Second, "HashKV to need a token once auth is on", func() bool {
		_, err := anon.HashKV(ctxT(t, 5*time.Second), eps[0], 0)
		return errors.Is(err, rpctypes.ErrUserEmpty)
	})
	root, err := newAuthClient(t, "root", "rootpw", eps...)
	require.NoError(t, err)
	return root
}

// TestOpsCorruptCheck_AuthDivergedMemberRaisesCorrupt: with auth enabled
// (where HashKV on the client API is root-only) the leader still compares
// its peers, over the peer transport, and raises CORRUPT for the diverged
// member.
func TestOpsCorruptCheck_AuthDivergedMemberRaisesCorrupt(t *testing.T) {
	c, _ := divergedCluster(t, authFlags.extraFlags...)
	m1, m2, m3 := c.members[0], c.members[1], c.members[2]

	t.Logf("Step 3: m1 and m2 elect a leader; root is created and auth enabled...")
	lead := startLeaderOf(t, m1, m2)
	root := enableRootAuth(t, m1.endpoint(), m2.endpoint())
	checked := corruptChecks(t, lead, 1)

	t.Logf("Step 4: with auth on, the leader's rounds still compare the other member (peers-checked 1)...")
	waitFor(t, 20*time.Second, "3 checks of one peer after auth enable", func() bool { return corruptChecks(t, lead, 1) >= checked+3 })
	alarms, err := root.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms, "no alarm while the data is equal")

	t.Logf("Step 5: m3 (different values at the same revision) joins; the leader raises CORRUPT for it...")
	startCorruptMember(t, root, lead, m3)

	t.Logf("Step 6: root's writes fail with etcd's corrupt cluster error; reads still answer...")
	_, err = root.Put(ctxT(t, 5*time.Second), "after", "1")
	requireErrIs(t, err, rpctypes.ErrCorrupt, "root put")
	r, err := root.Get(ctxT(t, 5*time.Second), "k0")
	require.NoError(t, err)
	require.Len(t, r.Kvs, 1)
	require.Equal(t, "a", string(r.Kvs[0].Value))
}

// TestOpsCorruptCheck_AuthEqualDataNoAlarm: with auth enabled, members with
// equal data are compared every round (both peers answer) and never alarmed.
func TestOpsCorruptCheck_AuthEqualDataNoAlarm(t *testing.T) {
	c := startCluster(t, engineMemory, 3, memberOpts{extraFlags: append([]string{"--bcrypt-cost", "4"}, corruptCheckFlags...)})
	lead := c.leader()

	t.Logf("Step 1: root is created and auth enabled...")
	root := enableRootAuth(t, c.endpoints()...)
	checked := corruptChecks(t, lead, 2)

	t.Logf("Step 2: writes as root while the leader checks both peers...")
	for i := 0; i < 20; i++ {
		_, err := root.Put(ctxT(t, 5*time.Second), fmt.Sprintf("k%d", i), "v")
		require.NoError(t, err)
	}
	waitFor(t, 20*time.Second, "3 checks of both peers after auth enable", func() bool { return corruptChecks(t, lead, 2) >= checked+3 })

	t.Logf("Step 3: no alarm, no mismatch, equal HashKV on every member...")
	alarms, err := root.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms)
	require.False(t, logContains(t, lead, "corruption check: member's"), "no mismatch logged")
	rev := currentRev(t, root)
	require.Equal(t, int64(21), rev)
	waitSameHashKV(t, c, root, rev, 10*time.Second)
}
