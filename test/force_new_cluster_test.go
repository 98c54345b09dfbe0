package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestForceNewCluster_SurvivorKeepsItsData: a 3-member cluster loses two
// members for good. The survivor, restarted with --force-new-cluster, is
// the only member of the same cluster, with every write it had applied and
// its revision history (a watch from an old revision replays it), and it
// takes new writes. Restarted again with the flag still set, it changes
// nothing.
func TestForceNewCluster_SurvivorKeepsItsData(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: a 3-member cluster on RocksDB with 50 keys written")
	c := startCluster(t, engineRocksDB, 3)
	cli := newClient(t, c.endpoints()...)
	for i := range 50 {
		_, err := cli.Put(ctxT(t, 5*time.Second), fmt.Sprintf("k%02d", i), "v")
		require.NoError(t, err)
	}
	resp, err := cli.Get(ctxT(t, 5*time.Second), "k", clientv3.WithPrefix())
	require.NoError(t, err)
	rev, clusterID := resp.Header.Revision, resp.Header.ClusterId
	survivor := c.members[0]
	one := newClient(t, survivor.endpoint())
	waitFor(t, 10*time.Second, "the survivor to apply every write", func() bool {
		r, err := one.Get(ctxT(t, 2*time.Second), "k49", clientv3.WithSerializable())
		return err == nil && r.Header.Revision == rev
	})

	t.Logf("Step 2: two members are lost; the survivor stops")
	c.members[1].kill()
	c.members[2].kill()
	require.NoError(t, survivor.stop())

	t.Logf("Step 3: the survivor restarts with --force-new-cluster")
	survivor.args = append(survivor.args, "--force-new-cluster")
	survivor.restart()
	c.waitReady(30 * time.Second)

	t.Logf("Step 4: it is the cluster's only member and has kept its data")
	ml, err := one.MemberList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Len(t, ml.Members, 1)
	require.Equal(t, survivor.name, ml.Members[0].Name)
	require.Equal(t, []string{survivor.peerURL}, ml.Members[0].PeerURLs)
	require.False(t, ml.Members[0].IsLearner)
	require.Equal(t, clusterID, ml.Header.ClusterId, "the cluster keeps its ID")
	got, err := one.Get(ctxT(t, 5*time.Second), "k", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, got.Kvs, 50)
	require.Equal(t, rev, got.Header.Revision)
	wr := <-one.Watch(clientv3.WithRequireLeader(ctxT(t, 10*time.Second)), "k00", clientv3.WithRev(rev-49))
	require.NoError(t, wr.Err())
	require.Len(t, wr.Events, 1, "the history before the force is still there")
	require.Equal(t, rev-49, wr.Events[0].Kv.ModRevision)

	t.Logf("Step 5: it takes new writes")
	put, err := one.Put(ctxT(t, 5*time.Second), "after", "force")
	require.NoError(t, err)
	require.Equal(t, rev+1, put.Header.Revision)

	t.Logf("Step 6: restarted once more with the flag still set, nothing changes")
	require.NoError(t, survivor.stop())
	survivor.restart()
	c.waitReady(30 * time.Second)
	got, err = one.Get(ctxT(t, 5*time.Second), "", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, got.Kvs, 51)
	require.Equal(t, rev+1, got.Header.Revision)
	ml, err = one.MemberList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Len(t, ml.Members, 1)
}
