package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// etcd's corruption feature gates (--feature-gates, server/corrupt.go):
// InitialCorruptCheck stops a member whose data differ from its peers'
// from starting; CompactHashCheck makes the leader compare the members'
// hashes at the newest compaction. Both use divergedCluster
// (ops_corrupt_check_test.go): m1 and m2 restored from one backup, m3 from
// another with the same revision and different values; the periodic check
// is taken out of their flags so that only the gate under test acts.

// withoutPeriodicCheck drops --corrupt-check-time and its value from args.
func withoutPeriodicCheck(args []string) []string {
	i := slices.Index(args, corruptCheckFlags[0])
	if i < 0 {
		return args
	}
	return slices.Delete(slices.Clone(args), i, i+2)
}

// linesWith counts the lines of m's log holding every one of subs.
func linesWith(t *testing.T, m *member, subs ...string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(readLog(t, m), "\n") {
		if !slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(line, s) }) {
			n++
		}
	}
	return n
}

// waitServing waits until m answers Status.
func waitServing(t *testing.T, m *member) {
	t.Helper()
	waitFor(t, 30*time.Second, m.name+" serving", func() bool {
		_, err := m.status()
		return err == nil
	})
}

func TestOpsCorruptCheck_InitialCheck(t *testing.T) {
	c, _ := divergedCluster(t)
	m1, m2, m3 := c.members[0], c.members[1], c.members[2]
	gate := []string{"--feature-gates", "InitialCorruptCheck=true"}
	for _, m := range c.members {
		m.args = withoutPeriodicCheck(m.args)
	}
	m1.args = append(m1.args, gate...)
	m2.args = append(m2.args, gate...)

	t.Logf("Step 3: m1 and m2 (equal data, the gate on) start and elect a leader...")
	startLeaderOf(t, m1, m2)

	t.Logf("Step 4: m3 (different values at the same revision) joins without the gate and serves...")
	m3.start()
	waitServing(t, m3)

	t.Logf("Step 5: m3 restarted with the gate refuses to start: its hash differs from its peers'...")
	require.NoError(t, m3.stop())
	m3.args = append(m3.args, gate...)
	m3.restart()
	waitFor(t, 60*time.Second, "m3 to exit", func() bool { return !m3.running() })
	m3.mu.Lock()
	exitErr := m3.exitErr
	m3.mu.Unlock()
	require.Error(t, exitErr, "m3 exits with an error status")
	require.True(t, logContains(t, m3, "found data inconsistency with peers"), "m3 says why")
	require.True(t, logContains(t, m3, "found different hash values from remote peer"), "m3 names the peer")
	_, err := m3.status()
	require.Error(t, err, "m3 never served")

	t.Logf("Step 6: m1 restarted with the gate while m3 is down: m2 agrees, m1 serves again...")
	passed := []string{"initial corruption check passed", `"peers-checked":1,"peers-not-answering":1`}
	before := linesWith(t, m1, passed...)
	require.NoError(t, m1.stop())
	m1.restart()
	waitServing(t, m1)
	require.Equal(t, before+1, linesWith(t, m1, passed...), "m1 compared its hash with m2's (m3 down) and passed")
	cli := newClient(t, m1.endpoint(), m2.endpoint())
	mustPut(t, cli, "after", "1")
}

func TestOpsCorruptCheck_CompactHashDivergedMember(t *testing.T) {
	c, rev := divergedCluster(t, "--feature-gates", "CompactHashCheck=true", "--compact-hash-check-time", "200ms")
	m1, m2, m3 := c.members[0], c.members[1], c.members[2]
	for _, m := range c.members {
		m.args = withoutPeriodicCheck(m.args)
	}

	t.Logf("Step 3: m1 and m2 (equal data) elect a leader; m3 (different values) joins...")
	lead := startLeaderOf(t, m1, m2)
	m3.start()
	waitServing(t, m3)
	id3 := memberID(t, m3)
	cli := newClient(t, m1.endpoint(), m2.endpoint())
	alarms, err := cli.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms, "no compaction yet, nothing compared")

	t.Logf("Step 4: compacting at revision %d; the leader compares the hashes there...", rev)
	_, err = cli.Compact(ctxT(t, 5*time.Second), rev)
	require.NoError(t, err)

	t.Logf("Step 5: the leader raises CORRUPT for m3 alone (m1 and m2 are the majority)...")
	waitFor(t, 20*time.Second, "a CORRUPT alarm", func() bool {
		a, err := cli.AlarmList(ctxT(t, 5*time.Second))
		return err == nil && len(a.Alarms) > 0
	})
	alarms, err = cli.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Equal(t, []*pb.AlarmMember{{MemberID: id3, Alarm: pb.AlarmType_CORRUPT}}, stripAlarms(alarms.Alarms))
	require.True(t, logContains(t, lead, "compaction hash check: members hold different data"), "the leader logged the mismatch")
	require.True(t, logContains(t, lead, fmt.Sprintf(`"members":["%x"]`, id3)), "the log names m3")
}

func TestOpsCorruptCheck_CompactHashEqualData(t *testing.T) {
	c := startCluster(t, engineRocksDB, 3, memberOpts{extraFlags: []string{
		"--feature-gates", "CompactHashCheck=true", "--compact-hash-check-time", "200ms", "--log-level", "info"}})
	lead := c.leader()
	cli := newClient(t, c.endpoints()...)

	t.Logf("Step 1: 50 writes, then a compaction at the newest revision...")
	for i := range 50 {
		mustPut(t, cli, fmt.Sprintf("k%d", i%10), fmt.Sprint(i))
	}
	rev := currentRev(t, cli)
	_, err := cli.Compact(ctxT(t, 5*time.Second), rev)
	require.NoError(t, err)

	t.Logf("Step 2: the leader finds every member's hash at revision %d equal...", rev)
	waitFor(t, 20*time.Second, "the leader's round at the compaction", func() bool {
		return logContains(t, lead, "compaction hash check: every member holds the same data") &&
			logContains(t, lead, fmt.Sprintf(`"compact-revision":%d,"peers-checked":2`, rev))
	})

	t.Logf("Step 3: no alarm; writes still accepted...")
	alarms, err := cli.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms)
	require.False(t, logContains(t, lead, "members hold different data"))
	mustPut(t, cli, "after", "1")
}
