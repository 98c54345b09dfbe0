package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The gRPC workloads are tested against real etcd: bench must drive it
// unchanged, and it is the reference MetaStore is compared with. The
// binary comes from ETCD_BIN (a directory), the shared peer build, or
// /tmp/etcdpeer/bin; without one these tests skip. test/performance_test.go
// runs `metastore bench` against MetaStore itself.
func etcdBinary(t *testing.T) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("ETCD_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, "../../shared/peers/etcd/bin", "/tmp/etcdpeer/bin")
	for _, d := range dirs {
		p := filepath.Join(d, "etcd")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Skipf("no etcd binary (looked in ETCD_BIN, %v)", dirs)
	return ""
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startEtcd runs a one-member etcd (no fsync: these tests check
// correctness, not speed) on free loopback ports and returns its client
// endpoint; the process is killed at cleanup.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin := etcdBinary(t)
	ports := freePorts(t, 2)
	client := fmt.Sprintf("127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "--name", "b1", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "b1="+peer, "--log-level", "error", "--unsafe-no-fsync")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, err := etcdStatus(client); err == nil && st.Leader != 0 {
			return client
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd at %s did not become ready", client)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func etcdStatus(ep string) (*clientv3.StatusResponse, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return cli.Status(ctx, ep)
}

func client(t *testing.T, ep string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

func requireClean(t *testing.T, res *Result, ops int64) {
	t.Helper()
	require.Equal(t, ops, res.Succeeded, "errors: %v %v", res.Errors, res.FirstErrors)
	require.Zero(t, res.Failed)
	require.Empty(t, res.Errors)
	require.Positive(t, res.Throughput)
	require.Positive(t, res.Latency.P50)
	require.LessOrEqual(t, res.Latency.P50, res.Latency.P99)
	require.LessOrEqual(t, res.Latency.P99, res.Latency.Max)
}

func TestEtcd_KVWorkloads(t *testing.T) {
	ep := startEtcd(t)
	cli := client(t, ep)
	ctx := context.Background()
	o := DefaultOptions()
	o.Endpoints = []string{ep}
	o.Conns, o.Clients = 2, 8

	t.Logf("Step 1: put 300 ops over 100 sequential keys")
	po := o
	po.Total, po.KeySpaceSize, po.SequentialKeys, po.ValSize = 300, 100, true, 64
	res, err := Put(ctx, po)
	require.NoError(t, err)
	requireClean(t, res, 300)
	got, err := cli.Get(ctx, "0", clientv3.WithFromKey())
	require.NoError(t, err)
	require.Equal(t, int64(100), got.Count)
	require.Len(t, got.Kvs[99].Value, 64)
	require.Equal(t, "00000099", string(got.Kvs[99].Key))
	require.Equal(t, int64(3), got.Kvs[0].Version, "each key put 3 times")

	t.Logf("Step 2: range, serializable, limit 10")
	ro := o
	ro.Total, ro.Consistency, ro.RangeKey, ro.RangeEnd, ro.RangeLimit = 200, "s", "00000000", "00000050", 10
	res, err = Range(ctx, ro)
	require.NoError(t, err)
	requireClean(t, res, 200)

	t.Logf("Step 3: txn-put, 3 distinct keys per txn")
	to := o
	to.Total, to.TxnOps, to.KeySpaceSize = 100, 3, 100
	before, err := cli.Get(ctx, "x")
	require.NoError(t, err)
	res, err = TxnPut(ctx, to)
	require.NoError(t, err)
	requireClean(t, res, 100)
	after, err := cli.Get(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, before.Header.Revision+100, after.Header.Revision, "one revision per txn")

	t.Logf("Step 4: txn-mixed and mixed account for every op by kind")
	mo := o
	mo.Total, mo.KeySpaceSize, mo.RangeLimit = 200, 100, 10
	res, err = TxnMixed(ctx, mo)
	require.NoError(t, err)
	requireClean(t, res, 200)
	require.Equal(t, int64(200), res.Kinds[0].Succeeded+res.Kinds[1].Succeeded)
	require.Equal(t, []string{"read", "write"}, []string{res.Kinds[0].Kind, res.Kinds[1].Kind})
	res, err = Mixed(ctx, mo)
	require.NoError(t, err)
	requireClean(t, res, 200)
	var sum int64
	for _, k := range res.Kinds {
		sum += k.Succeeded
	}
	require.Equal(t, int64(200), sum)

	t.Logf("Step 5: duration mode and the leader target")
	do := o
	do.Total, do.Duration, do.TargetLeader = 0, 300*time.Millisecond, true
	res, err = Put(ctx, do)
	require.NoError(t, err)
	require.Positive(t, res.Succeeded)
	require.Zero(t, res.Failed)
	require.GreaterOrEqual(t, res.DurationSec, 0.3)
}

func TestEtcd_WatchWorkloads(t *testing.T) {
	ep := startEtcd(t)
	ctx := context.Background()
	o := DefaultOptions()
	o.Endpoints = []string{ep}

	t.Logf("Step 1: fan-out: 2 streams x 5 watchers over 2 keys, 10 puts")
	wo := o
	wo.Conns, wo.Clients, wo.Streams, wo.WatchersPerStream, wo.WatchedKeys, wo.Total = 2, 2, 2, 5, 2, 10
	wo.KeySpaceSize = 2
	res, err := Watch(ctx, wo)
	require.NoError(t, err)
	// Watchers 0,2,4,.. watch key 0 and 1,3,.. key 1; each key gets 5 puts.
	requireClean(t, res, 50)
	require.Equal(t, float64(10), res.Extra["watchers"])
	require.Equal(t, float64(50), res.Extra["events_received"])
	require.Equal(t, "events", res.Unit)
	require.Equal(t, int64(10), res.Kinds[kindCreate].Succeeded)
	require.Equal(t, int64(10), res.Kinds[kindPut].Succeeded)

	t.Logf("Step 2: latency: 2 streams x 3 watchers on one key, 20 puts at 200/s")
	lo := o
	lo.Streams, lo.WatchersPerStream, lo.Total, lo.Rate = 2, 3, 20, 200
	res, err = WatchLatency(ctx, lo)
	require.NoError(t, err)
	require.Equal(t, int64(120), res.Succeeded)
	require.Zero(t, res.Failed)
	require.Less(t, res.Latency.P99, 1000.0, "events arrive within a second of their put")

	t.Logf("Step 3: a watch that needs more than --val-size allows is refused")
	bad := o
	bad.ValSize = 4
	_, err = Watch(ctx, bad)
	require.ErrorIs(t, err, ErrBadOption)
}

func TestEtcd_LeaseKeepAlive(t *testing.T) {
	ep := startEtcd(t)
	cli := client(t, ep)
	ctx := context.Background()
	o := DefaultOptions()
	o.Endpoints, o.Clients, o.Total = []string{ep}, 3, 90

	t.Logf("Step 1: 3 clients renew their leases 90 times in all")
	res, err := LeaseKeepAlive(ctx, o)
	require.NoError(t, err)
	requireClean(t, res, 90)

	t.Logf("Step 2: the leases were revoked")
	leases, err := cli.Leases(ctx)
	require.NoError(t, err)
	require.Empty(t, leases.Leases)
}
