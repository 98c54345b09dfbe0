package test

import (
	"context"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Leases through clientv3, as etcd behaves. The members run with etcd's
// default timing (heartbeat 100 ms, election 1 s), so the minimum TTL is
// ceil(1.5 * 10 ticks * 100 ms) = 2 s.

const (
	leaseMinTTL = 2
	leaseMaxTTL = 9_000_000_000
)

// leaseGrantID grants a lease with a client-chosen id (clientv3's Grant
// cannot choose one).
func leaseGrantID(t *testing.T, cli *clientv3.Client, id, ttl int64) (*pb.LeaseGrantResponse, error) {
	t.Helper()
	resp, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseGrant(ctxT(t, 5*time.Second), &pb.LeaseGrantRequest{ID: id, TTL: ttl})
	return resp, rpctypes.Error(err)
}

// leaseTTL returns TimeToLive's TTL and keys.
func leaseTTL(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID) (*clientv3.LeaseTimeToLiveResponse, []string) {
	t.Helper()
	resp, err := cli.TimeToLive(ctxT(t, 10*time.Second), id, clientv3.WithAttachedKeys())
	require.NoError(t, err)
	keys := []string{}
	for _, k := range resp.Keys {
		keys = append(keys, string(k))
	}
	return resp, keys
}

func leaseGetKeys(t *testing.T, cli *clientv3.Client, key string, opts ...clientv3.OpOption) []string {
	t.Helper()
	resp, err := cli.Get(ctxT(t, 5*time.Second), key, opts...)
	require.NoError(t, err)
	keys := []string{}
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys
}

func TestLease_SingleMember(t *testing.T) {
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) {
			t.Logf("Step 1: starting one %s member", engine)
			m := startMember(t, engine)
			cli := newClient(t, m.endpoint())
			ctx := ctxT(t, 60*time.Second)

			t.Logf("Step 2: grants with a server-chosen and a client-chosen id")
			g1, err := cli.Grant(ctx, 60)
			require.NoError(t, err)
			require.Greater(t, int64(g1.ID), int64(0))
			require.Equal(t, int64(60), g1.TTL)
			require.NotZero(t, g1.ResponseHeader.ClusterId)
			require.NotZero(t, g1.ResponseHeader.MemberId)
			require.NotZero(t, g1.ResponseHeader.RaftTerm)
			require.Equal(t, int64(1), g1.ResponseHeader.Revision, "a grant writes no key")
			g2, err := leaseGrantID(t, cli, 0x1234, 30)
			require.NoError(t, err)
			require.Equal(t, int64(0x1234), g2.ID)
			require.Equal(t, int64(30), g2.TTL)

			t.Logf("Step 3: errors: id exists, TTL too large, unknown lease")
			_, err = leaseGrantID(t, cli, 0x1234, 30)
			require.True(t, errors.Is(err, rpctypes.ErrLeaseExist), "got %v", err)
			_, err = cli.Grant(ctx, leaseMaxTTL+1)
			require.True(t, errors.Is(err, rpctypes.ErrLeaseTTLTooLarge), "got %v", err)
			_, err = cli.Put(ctx, "x", "1", clientv3.WithLease(0x777))
			require.True(t, errors.Is(err, rpctypes.ErrLeaseNotFound), "got %v", err)
			_, err = cli.Revoke(ctx, 0x777)
			require.True(t, errors.Is(err, rpctypes.ErrLeaseNotFound), "got %v", err)
			_, err = cli.KeepAliveOnce(ctx, 0x777)
			require.True(t, errors.Is(err, rpctypes.ErrLeaseNotFound), "got %v", err)
			ttl, _ := leaseTTL(t, cli, 0x777)
			require.Equal(t, int64(-1), ttl.TTL)

			t.Logf("Step 4: keys attach; TimeToLive lists them; Leases lists both leases")
			for _, k := range []string{"b", "a"} {
				_, err := cli.Put(ctx, k, "v", clientv3.WithLease(g1.ID))
				require.NoError(t, err)
			}
			put, err := cli.Put(ctx, "c", "v")
			require.NoError(t, err)
			require.Equal(t, int64(4), put.Header.Revision)
			ttl, keys := leaseTTL(t, cli, g1.ID)
			require.Equal(t, g1.ID, ttl.ID)
			require.Equal(t, int64(60), ttl.GrantedTTL)
			require.GreaterOrEqual(t, ttl.TTL, int64(55))
			require.LessOrEqual(t, ttl.TTL, int64(60))
			require.Equal(t, []string{"a", "b"}, keys)
			ls, err := cli.Leases(ctx)
			require.NoError(t, err)
			var ids []clientv3.LeaseID
			for _, l := range ls.Leases {
				ids = append(ids, l.ID)
			}
			require.ElementsMatch(t, []clientv3.LeaseID{g1.ID, 0x1234}, ids)

			t.Logf("Step 5: KeepAliveOnce renews to the full TTL")
			ka, err := cli.KeepAliveOnce(ctx, g1.ID)
			require.NoError(t, err)
			require.Equal(t, g1.ID, ka.ID)
			require.Equal(t, int64(60), ka.TTL)
			require.Equal(t, int64(4), ka.ResponseHeader.Revision)

			t.Logf("Step 6: revoke deletes both keys in one revision")
			rv, err := cli.Revoke(ctx, g1.ID)
			require.NoError(t, err)
			require.Equal(t, int64(5), rv.Header.Revision)
			require.Equal(t, []string{"c"}, leaseGetKeys(t, cli, "", clientv3.WithFromKey()))
			require.Equal(t, []string{"a", "b", "c"}, leaseGetKeys(t, cli, "", clientv3.WithFromKey(), clientv3.WithRev(4)))
			ttl, _ = leaseTTL(t, cli, g1.ID)
			require.Equal(t, int64(-1), ttl.TTL)

			t.Logf("Step 7: a 1 s grant is raised to %d s; the lease expires and takes its key, in one revision", leaseMinTTL)
			granted := time.Now()
			short, err := cli.Grant(ctx, 1)
			require.NoError(t, err)
			require.Equal(t, int64(leaseMinTTL), short.TTL)
			_, err = cli.Put(ctx, "e", "v", clientv3.WithLease(short.ID))
			require.NoError(t, err)
			waitFor(t, 10*time.Second, "the expired lease's key to go", func() bool {
				return len(leaseGetKeys(t, cli, "e")) == 0
			})
			require.Greater(t, time.Since(granted), time.Duration(leaseMinTTL-1)*time.Second)
			get, err := cli.Get(ctx, "e")
			require.NoError(t, err)
			require.Equal(t, int64(7), get.Header.Revision, "put at 6, expiry at 7")
			ttl, _ = leaseTTL(t, cli, short.ID)
			require.Equal(t, int64(-1), ttl.TTL)

			t.Logf("Step 8: a restart rebuilds leases and their keys from the data dir")
			g3, err := cli.Grant(ctx, 120)
			require.NoError(t, err)
			_, err = cli.Put(ctx, "r", "v", clientv3.WithLease(g3.ID))
			require.NoError(t, err)
			require.NoError(t, m.stop())
			m.restart()
			waitFor(t, 20*time.Second, "the restarted member to serve", func() bool {
				st, err := m.status()
				return err == nil && st.Leader != 0
			})
			cli2 := newClient(t, m.endpoint())
			ttl, keys = leaseTTL(t, cli2, g3.ID)
			require.Equal(t, int64(120), ttl.GrantedTTL)
			require.Equal(t, []string{"r"}, keys)
			require.Greater(t, ttl.TTL, int64(100))
			rv, err = cli2.Revoke(ctx, g3.ID)
			require.NoError(t, err)
			require.Equal(t, int64(9), rv.Header.Revision)
			require.Empty(t, leaseGetKeys(t, cli2, "r"))
		})
	}
}

func TestLease_ThreeMembers_FollowerKeepAliveAndLeaderChange(t *testing.T) {
	t.Logf("Step 1: starting 3 members checkpointing lease TTLs every second")
	c := startCluster(t, engineRocksDB, 3, memberOpts{extraFlags: []string{"--lease-checkpoint-interval", "1s"}})
	leader := c.leader()
	follower := c.followers(leader)[0]
	fcli := newClient(t, follower.endpoint())
	lcli := newClient(t, leader.endpoint())
	ctx := ctxT(t, 80*time.Second)
	waitFor(t, 15*time.Second, "every member to publish its client URL", func() bool {
		ml, err := fcli.MemberList(ctx)
		if err != nil {
			return false
		}
		for _, m := range ml.Members {
			if len(m.ClientURLs) == 0 {
				return false
			}
		}
		return len(ml.Members) == 3
	})

	t.Logf("Step 2: through the follower: grant a %d s lease, attach a key", leaseMinTTL)
	g, err := fcli.Grant(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, int64(leaseMinTTL), g.TTL)
	_, err = fcli.Put(ctx, "ka", "v", clientv3.WithLease(g.ID))
	require.NoError(t, err)

	t.Logf("Step 3: a KeepAlive stream on the follower keeps it alive for 3 TTLs")
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	kch, err := fcli.KeepAlive(kctx, g.ID)
	require.NoError(t, err)
	start := time.Now()
	responses := 0
	for time.Since(start) < 3*leaseMinTTL*time.Second {
		select {
		case r, ok := <-kch:
			require.True(t, ok, "keep-alive channel closed")
			require.Equal(t, g.ID, r.ID)
			require.Equal(t, int64(leaseMinTTL), r.TTL)
			require.Equal(t, follower.memberID(t), r.MemberId, "answered by the member asked")
			responses++
		case <-time.After(100 * time.Millisecond):
		}
		require.Equal(t, []string{"ka"}, leaseGetKeys(t, fcli, "ka"), "the key outlives the TTL")
	}
	require.GreaterOrEqual(t, responses, 5, "clientv3 renews every TTL/3")
	ttl, keys := leaseTTL(t, fcli, g.ID)
	require.Equal(t, []string{"ka"}, keys)
	require.Equal(t, int64(leaseMinTTL), ttl.GrantedTTL)
	require.GreaterOrEqual(t, ttl.TTL, int64(0))
	require.LessOrEqual(t, ttl.TTL, int64(leaseMinTTL))

	t.Logf("Step 4: without keep-alives it expires")
	kcancel()
	waitFor(t, 10*time.Second, "the lease's key to go", func() bool { return len(leaseGetKeys(t, fcli, "ka")) == 0 })
	ttl, _ = leaseTTL(t, fcli, g.ID)
	require.Equal(t, int64(-1), ttl.TTL)

	t.Logf("Step 5: a 60 s lease ages; checkpoints record its remaining TTL")
	long, err := lcli.Grant(ctx, 60)
	require.NoError(t, err)
	var before int64
	waitFor(t, 15*time.Second, "the lease to age to 54 s", func() bool {
		ttl, _ := leaseTTL(t, lcli, long.ID)
		before = ttl.TTL
		return before <= 54
	})
	killed := time.Now()

	t.Logf("Step 6: kill the leader (TTL was %d s); the new leader starts from the checkpoint", before)
	leader.kill()
	nl := c.leader()
	after, _ := leaseTTL(t, newClient(t, nl.endpoint()), long.ID)
	elapsed := int64(math.Ceil(time.Since(killed).Seconds()))
	t.Logf("remaining TTL %d s before, %d s after (%d s later)", before, after.TTL, elapsed)
	// The new leader's deadline is promotion + 1 s (the election timeout) +
	// the last checkpoint, which is at most 1 s (interval) + 1 s (rounding
	// up) older than the kill. Without checkpoints it would be 60 + 1 s.
	require.Equal(t, int64(60), after.GrantedTTL)
	require.LessOrEqual(t, after.TTL, before+3)
	require.GreaterOrEqual(t, after.TTL, before-elapsed)
	require.Less(t, after.TTL, int64(58), "not reset to the full TTL")
}

// memberID asks the member for its own id.
func (m *member) memberID(t *testing.T) uint64 {
	t.Helper()
	st, err := m.status()
	require.NoError(t, err)
	return st.Header.MemberId
}

func TestLease_SnapshotRestoreRebuildsLeases(t *testing.T) {
	t.Logf("Step 1: 3 members that compact their raft log every 20 entries")
	c := startCluster(t, engineRocksDB, 3, memberOpts{extraFlags: []string{"--snapshot-count", "20", "--snapshot-catchup-entries", "5"}})
	leader := c.leader()
	fs := c.followers(leader)
	lagger := fs[len(fs)-1]
	lcli := newClient(t, leader.endpoint())
	ctx := ctxT(t, 60*time.Second)

	t.Logf("Step 2: with %s down, grant a lease, attach two keys, write past the log's compaction", lagger.name)
	lagger.kill()
	g, err := lcli.Grant(ctx, 120)
	require.NoError(t, err)
	for _, k := range []string{"l1", "l2"} {
		_, err := lcli.Put(ctx, k, "v", clientv3.WithLease(g.ID))
		require.NoError(t, err)
	}
	var last *clientv3.PutResponse
	for i := 0; i < 60; i++ {
		last, err = lcli.Put(ctx, "fill", "v")
		require.NoError(t, err)
	}

	t.Logf("Step 3: %s restarts and catches up from a snapshot", lagger.name)
	lagger.restart()
	gcli := newClient(t, lagger.endpoint())
	waitFor(t, 30*time.Second, "the restarted member to catch up", func() bool {
		resp, err := gcli.Get(ctxT(t, 2*time.Second), "fill", clientv3.WithSerializable())
		return err == nil && resp.Header.Revision >= last.Header.Revision
	})
	logText, err := os.ReadFile(lagger.logPath)
	require.NoError(t, err)
	require.Contains(t, string(logText), "installing snapshot from leader")

	t.Logf("Step 4: its lessor has the lease and its keys: the revoke deletes them there too")
	ls, err := gcli.Leases(ctx)
	require.NoError(t, err)
	require.Len(t, ls.Leases, 1)
	require.Equal(t, g.ID, ls.Leases[0].ID)
	rv, err := lcli.Revoke(ctx, g.ID)
	require.NoError(t, err)
	require.Equal(t, last.Header.Revision+1, rv.Header.Revision)
	waitFor(t, 10*time.Second, "the revoke to apply on the restarted member", func() bool {
		resp, err := gcli.Get(ctxT(t, 2*time.Second), "fill", clientv3.WithSerializable())
		return err == nil && resp.Header.Revision >= rv.Header.Revision
	})
	resp, err := gcli.Get(ctx, "l", clientv3.WithPrefix(), clientv3.WithSerializable())
	require.NoError(t, err)
	require.Empty(t, resp.Kvs)
	require.Equal(t, rv.Header.Revision, resp.Header.Revision)
	resp, err = gcli.Get(ctx, "l", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithRev(rv.Header.Revision-1))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 2)
}
