package test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Two suites: unmodified etcdctl's `lock` and `elect`, and etcd's Lock and
// Election gRPC services called directly (v3lockpb, v3electionpb).
//
// Unmodified etcdctl's `lock` and `elect` against MetaStore. Both commands
// are built on clientv3's concurrency package on the client side (a
// session lease, keys under the name's prefix ordered by create revision,
// watches on the predecessor's key): they use KV, Lease and Watch, not
// etcd's v3lockpb.Lock / v3electionpb.Election gRPC services. Run with
// etcdBinEnv set, the same assertions hold against real etcd.

// lockedBuffer is a bytes.Buffer safe for a process to write while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ctlProc is an etcdctl run in the background (lock holders, candidates,
// observers run until they are interrupted).
type ctlProc struct {
	args        []string
	cmd         *exec.Cmd
	out, errOut lockedBuffer
	done        chan struct{}
	code        int // valid once done is closed
}

// startCtl starts etcdctl against eps in the background; cleanup kills it
// if it is still running.
func startCtl(t *testing.T, eps []string, args ...string) *ctlProc {
	t.Helper()
	bin := etcdctlBin(t)
	full := append([]string{"--endpoints", strings.Join(eps, ","), "--dial-timeout", "3s", "--command-timeout", "5s"}, args...)
	p := &ctlProc{args: args, done: make(chan struct{})}
	p.cmd = exec.Command(bin, full...)
	p.cmd.Env = etcdctlEnv()
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errOut
	require.NoError(t, p.cmd.Start())
	go func() {
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *ctlProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// interrupt sends SIGINT: etcdctl lock unlocks, elect resigns or stops
// observing, and exits.
func (p *ctlProc) interrupt(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
}

// exitCode waits up to d for the process to end and returns its code.
func (p *ctlProc) exitCode(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("etcdctl %v did not exit within %v: stdout %q stderr %q", p.args, d, p.out.String(), p.errOut.String())
		return 0
	}
}

// waitOut polls until the process's stdout equals want.
func (p *ctlProc) waitOut(t *testing.T, d time.Duration, want string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for p.out.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("etcdctl %v: stdout %q, want %q (stderr %q)", p.args, p.out.String(), want, p.errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// prefixKeys returns the keys under prefix in create-revision order.
func prefixKeys(t *testing.T, cli *clientv3.Client, prefix string) *clientv3.GetResponse {
	t.Helper()
	resp, err := cli.Get(ctxT(t, 5*time.Second), prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	require.NoError(t, err)
	return resp
}

// waitKeys polls until exactly n keys live under prefix and returns them in
// create-revision order.
func waitKeys(t *testing.T, cli *clientv3.Client, prefix string, n int) *clientv3.GetResponse {
	t.Helper()
	var last *clientv3.GetResponse
	waitFor(t, 10*time.Second, strconv.Itoa(n)+" keys under "+prefix, func() bool {
		last = prefixKeys(t, cli, prefix)
		return len(last.Kvs) == n
	})
	return last
}

// sessionKey checks that key is prefix + the hex of its own lease (the
// concurrency package's key for a session) and returns the lease.
func sessionKey(t *testing.T, kv *clientv3.GetResponse, i int, prefix string) clientv3.LeaseID {
	t.Helper()
	k := kv.Kvs[i]
	require.True(t, strings.HasPrefix(string(k.Key), prefix), "key %q", k.Key)
	id, err := strconv.ParseInt(strings.TrimPrefix(string(k.Key), prefix), 16, 64)
	require.NoError(t, err, "key %q", k.Key)
	require.NotZero(t, id)
	require.Equal(t, id, k.Lease, "key %q is attached to its session's lease", k.Key)
	return clientv3.LeaseID(id)
}

func TestEtcdctl_Lock(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	c, eps := startCtlMember(t)
	cli := newClient(t, c.endpoints()...)

	t.Logf("Step 2: holder A: `etcdctl lock mylock` (no command: prints the key and holds until SIGINT)")
	a := startCtl(t, eps, "lock", "mylock")
	keys := waitKeys(t, cli, "mylock/", 1)
	keyA := string(keys.Kvs[0].Key)
	sessionKey(t, keys, 0, "mylock/")
	a.waitOut(t, 10*time.Second, keyA+"\n\n") // etcdctl prints the key and its empty value

	t.Logf("Step 3: waiter B: `etcdctl lock mylock -- sh -c ...` queues behind A and does not run")
	b := startCtl(t, eps, "lock", "mylock", "--", "sh", "-c", `echo "held $ETCD_LOCK_KEY $ETCD_LOCK_REV"`)
	keys = waitKeys(t, cli, "mylock/", 2)
	require.Equal(t, keyA, string(keys.Kvs[0].Key), "A, the oldest key, holds the lock")
	keyB := string(keys.Kvs[1].Key)
	sessionKey(t, keys, 1, "mylock/")
	require.NotEqual(t, keyA, keyB)
	require.Greater(t, keys.Kvs[1].CreateRevision, keys.Kvs[0].CreateRevision)
	require.True(t, b.running(), "B must wait for A")
	require.Equal(t, "", b.out.String(), "B's command must not run while A holds the lock")

	t.Logf("Step 4: SIGINT to A: A unlocks and exits 0; B runs its command with its key, then unlocks")
	a.interrupt(t)
	require.Equal(t, 0, a.exitCode(t, 10*time.Second), "A stderr %q", a.errOut.String())
	require.Equal(t, 0, b.exitCode(t, 10*time.Second), "B stderr %q", b.errOut.String())
	end := prefixKeys(t, cli, "mylock/")
	require.Empty(t, end.Kvs, "B deleted its key on unlock")
	// ETCD_LOCK_REV is the revision B saw when it got the lock: A's delete,
	// one before B's own delete.
	require.Equal(t, "held "+keyB+" "+strconv.FormatInt(end.Header.Revision-1, 10)+"\n", b.out.String())

	t.Logf("Step 5: three concurrent `etcdctl lock mylock -- sh -c ...`: the held intervals never overlap")
	script := `echo "start $(date +%s%N)"; sleep 0.2; echo "end $(date +%s%N)"`
	var procs []*ctlProc
	for range 3 {
		procs = append(procs, startCtl(t, eps, "lock", "mylock", "--", "sh", "-c", script))
	}
	line := regexp.MustCompile(`^start (\d+)\nend (\d+)\n$`)
	type span struct{ start, end int64 }
	var spans []span
	for i, p := range procs {
		require.Equal(t, 0, p.exitCode(t, 15*time.Second), "proc %d stderr %q", i, p.errOut.String())
		m := line.FindStringSubmatch(p.out.String())
		require.NotNil(t, m, "proc %d stdout %q", i, p.out.String())
		s, _ := strconv.ParseInt(m[1], 10, 64)
		e, _ := strconv.ParseInt(m[2], 10, 64)
		require.GreaterOrEqual(t, e-s, int64(200*time.Millisecond))
		spans = append(spans, span{s, e})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		require.GreaterOrEqual(t, spans[i].start, spans[i-1].end,
			"holder %d started %v before holder %d ended", i, time.Duration(spans[i-1].end-spans[i].start), i-1)
	}
	require.Empty(t, prefixKeys(t, cli, "mylock/").Kvs, "every holder unlocked")
}

func TestEtcdctl_Elect(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	c, eps := startCtlMember(t)
	cli := newClient(t, c.endpoints()...)

	t.Logf("Step 2: observer: `etcdctl elect -l myelection` (no leader yet: prints nothing)")
	obs := startCtl(t, eps, "elect", "-l", "myelection")

	t.Logf("Step 3: candidate A: `etcdctl elect myelection p1` wins and prints its key and proposal")
	a := startCtl(t, eps, "elect", "myelection", "p1")
	keys := waitKeys(t, cli, "myelection/", 1)
	keyA := string(keys.Kvs[0].Key)
	sessionKey(t, keys, 0, "myelection/")
	require.Equal(t, "p1", string(keys.Kvs[0].Value))
	a.waitOut(t, 10*time.Second, keyA+"\np1\n")
	obs.waitOut(t, 10*time.Second, keyA+"\np1\n")

	t.Logf("Step 4: candidate B: `etcdctl elect myelection p2` waits behind A")
	b := startCtl(t, eps, "elect", "myelection", "p2")
	keys = waitKeys(t, cli, "myelection/", 2)
	require.Equal(t, keyA, string(keys.Kvs[0].Key), "A is still the leader")
	keyB := string(keys.Kvs[1].Key)
	sessionKey(t, keys, 1, "myelection/")
	require.Equal(t, "p2", string(keys.Kvs[1].Value))
	require.True(t, b.running())
	require.Equal(t, "", b.out.String(), "B is not elected while A leads")
	require.Equal(t, keyA+"\np1\n", obs.out.String(), "the observer still sees A")

	t.Logf("Step 5: SIGINT to A: A resigns and exits 0; B is elected; the observer sees B")
	a.interrupt(t)
	require.Equal(t, 0, a.exitCode(t, 10*time.Second), "A stderr %q", a.errOut.String())
	b.waitOut(t, 10*time.Second, keyB+"\np2\n")
	obs.waitOut(t, 10*time.Second, keyA+"\np1\n"+keyB+"\np2\n")
	keys = waitKeys(t, cli, "myelection/", 1)
	require.Equal(t, keyB, string(keys.Kvs[0].Key))

	t.Logf("Step 6: SIGINT to B and the observer: both exit 0, no candidate key is left")
	b.interrupt(t)
	require.Equal(t, 0, b.exitCode(t, 10*time.Second), "B stderr %q", b.errOut.String())
	obs.interrupt(t)
	require.Equal(t, 0, obs.exitCode(t, 10*time.Second), "observer stderr %q", obs.errOut.String())
	require.Empty(t, prefixKeys(t, cli, "myelection/").Kvs)
	require.Equal(t, keyA+"\np1\n"+keyB+"\np2\n", obs.out.String(), "the observer printed each leader once")
}

// etcd's Lock and Election gRPC services, called directly. etcd serves both
// with clientv3's concurrency package, so keys, revisions and errors are
// the concurrency package's: a lock or candidate key is name/<lease hex> on
// the caller's lease, and errors reach the client with code Unknown and the
// package's message. Run with etcdBinEnv set, the same assertions hold
// against real etcd.

// dialConn is a plain gRPC connection to a member, closed at cleanup.
func dialConn(t *testing.T, endpoint string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// grantLease grants a 60 s lease.
func grantLease(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Grant(ctxT(t, 5*time.Second), 60)
	require.NoError(t, err)
	return int64(resp.ID)
}

// requireRPCError checks a gRPC error's code and message exactly.
func requireRPCError(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a gRPC status: %v", err)
	require.Equal(t, code, st.Code(), "error %v", err)
	require.Equal(t, msg, st.Message())
}

// leaseKey is the concurrency package's key for a lease under name.
func leaseKey(name string, lease int64) string { return fmt.Sprintf("%s/%x", name, lease) }

func TestLockService_MutualExclusion(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; a gRPC Lock client and three 60 s leases")
	c := startAPICluster(t, engineRocksDB, 1)
	cli := newClient(t, c.endpoints()...)
	lc := v3lockpb.NewLockClient(dialConn(t, c.members[0].endpoint()))
	l1, l2, l3 := grantLease(t, cli), grantLease(t, cli), grantLease(t, cli)

	t.Logf("Step 2: A locks svclock: key svclock/<A's lease hex>, empty, on A's lease, created at the header's revision")
	a, err := lc.Lock(ctxT(t, 10*time.Second), &v3lockpb.LockRequest{Name: []byte("svclock"), Lease: l1})
	require.NoError(t, err)
	require.Equal(t, leaseKey("svclock", l1), string(a.Key))
	keys := prefixKeys(t, cli, "svclock/")
	require.Len(t, keys.Kvs, 1)
	require.Equal(t, &mvccpb.KeyValue{Key: a.Key, CreateRevision: a.Header.Revision,
		ModRevision: a.Header.Revision, Version: 1, Lease: l1}, keys.Kvs[0])

	t.Logf("Step 3: B's Lock on svclock waits behind A: its key exists, its call has not returned")
	type result struct {
		resp *v3lockpb.LockResponse
		err  error
	}
	bc := make(chan result, 1)
	go func() {
		r, err := lc.Lock(ctxT(t, 20*time.Second), &v3lockpb.LockRequest{Name: []byte("svclock"), Lease: l2})
		bc <- result{r, err}
	}()
	keys = waitKeys(t, cli, "svclock/", 2)
	require.Equal(t, string(a.Key), string(keys.Kvs[0].Key), "A, the oldest key, holds the lock")
	require.Equal(t, leaseKey("svclock", l2), string(keys.Kvs[1].Key))
	require.Equal(t, l2, keys.Kvs[1].Lease)
	require.Equal(t, a.Header.Revision+1, keys.Kvs[1].CreateRevision)
	// B's Txn is applied; give a wrongly granted lock a moment to show.
	select {
	case r := <-bc:
		t.Fatalf("B's Lock returned while A holds the lock: %+v %v", r.resp, r.err)
	case <-time.After(300 * time.Millisecond):
	}

	t.Logf("Step 4: C queues behind B with a 1 s deadline: DeadlineExceeded, and its key is deleted again")
	cctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = lc.Lock(cctx, &v3lockpb.LockRequest{Name: []byte("svclock"), Lease: l3})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "C: %v", err)
	keys = waitKeys(t, cli, "svclock/", 2)
	require.Equal(t, []string{string(a.Key), leaseKey("svclock", l2)}, []string{string(keys.Kvs[0].Key), string(keys.Kvs[1].Key)})
	require.Equal(t, a.Header.Revision+3, keys.Header.Revision, "B's put, C's put, C's delete")

	t.Logf("Step 5: A unlocks (deletes its key); only then does B's Lock return, with its key, at the delete's revision")
	un, err := lc.Unlock(ctxT(t, 5*time.Second), &v3lockpb.UnlockRequest{Key: a.Key})
	require.NoError(t, err)
	require.Equal(t, a.Header.Revision+4, un.Header.Revision, "then A's delete")
	var b result
	select {
	case b = <-bc:
	case <-time.After(10 * time.Second):
		t.Fatal("B's Lock did not return after A's Unlock")
	}
	require.NoError(t, b.err)
	require.Equal(t, leaseKey("svclock", l2), string(b.resp.Key))
	require.Equal(t, un.Header.Revision, b.resp.Header.Revision)

	t.Logf("Step 6: B unlocks; unlocking again (no such key) succeeds at the same revision; no key is left")
	un2, err := lc.Unlock(ctxT(t, 5*time.Second), &v3lockpb.UnlockRequest{Key: b.resp.Key})
	require.NoError(t, err)
	require.Equal(t, un.Header.Revision+1, un2.Header.Revision)
	un3, err := lc.Unlock(ctxT(t, 5*time.Second), &v3lockpb.UnlockRequest{Key: b.resp.Key})
	require.NoError(t, err)
	require.Equal(t, un2.Header.Revision, un3.Header.Revision)
	require.Empty(t, prefixKeys(t, cli, "svclock/").Kvs)
}

func TestLockService_RevokedLease(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; granting and revoking a lease")
	c := startAPICluster(t, engineRocksDB, 1)
	cli := newClient(t, c.endpoints()...)
	lc := v3lockpb.NewLockClient(dialConn(t, c.members[0].endpoint()))
	id := grantLease(t, cli)
	_, err := cli.Revoke(ctxT(t, 5*time.Second), clientv3.LeaseID(id))
	require.NoError(t, err)

	t.Logf("Step 2: Lock on the revoked lease fails with etcd's lease-not-found (code Unknown) and writes nothing")
	_, err = lc.Lock(ctxT(t, 10*time.Second), &v3lockpb.LockRequest{Name: []byte("deadlock"), Lease: id})
	requireRPCError(t, err, codes.Unknown, "etcdserver: requested lease not found")
	require.Empty(t, prefixKeys(t, cli, "deadlock/").Kvs)
}

func TestElectionService(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; a gRPC Election client and two 60 s leases")
	c := startAPICluster(t, engineRocksDB, 1)
	cli := newClient(t, c.endpoints()...)
	ec := epb.NewElectionClient(dialConn(t, c.members[0].endpoint()))
	l1, l2 := grantLease(t, cli), grantLease(t, cli)
	name := []byte("svcelect")
	ctx := ctxT(t, 30*time.Second)

	t.Logf("Step 2: no candidate yet: Leader fails with \"election: no leader\"; Proclaim and Resign without a leader key are refused")
	_, err := ec.Leader(ctx, &epb.LeaderRequest{Name: name})
	requireRPCError(t, err, codes.Unknown, "election: no leader")
	_, err = ec.Proclaim(ctx, &epb.ProclaimRequest{Value: []byte("x")})
	requireRPCError(t, err, codes.Unknown, `"leader" field must be provided`)
	_, err = ec.Resign(ctx, &epb.ResignRequest{})
	requireRPCError(t, err, codes.Unknown, `"leader" field must be provided`)

	t.Logf("Step 3: an observer subscribes (it hears nothing until there is a leader)")
	obsCtx, stopObs := context.WithCancel(ctx)
	defer stopObs()
	obs, err := ec.Observe(obsCtx, &epb.LeaderRequest{Name: name})
	require.NoError(t, err)
	observed := make(chan *mvccpb.KeyValue, 16)
	obsDone := make(chan error, 1)
	go func() {
		for {
			r, err := obs.Recv()
			if err != nil {
				obsDone <- err
				return
			}
			observed <- r.Kv
		}
	}()
	nextObserved := func(what string) *mvccpb.KeyValue {
		t.Helper()
		select {
		case kv := <-observed:
			return kv
		case <-time.After(10 * time.Second):
			t.Fatalf("observer: no leader update for %s", what)
			return nil
		}
	}

	t.Logf("Step 4: A campaigns with v1 and wins at once: leader key {name, svcelect/<A's lease hex>, its create revision, A's lease}")
	ca, err := ec.Campaign(ctx, &epb.CampaignRequest{Name: name, Lease: l1, Value: []byte("v1")})
	require.NoError(t, err)
	rev := ca.Header.Revision
	leaderA := &epb.LeaderKey{Name: name, Key: []byte(leaseKey("svcelect", l1)), Rev: rev, Lease: l1}
	require.Equal(t, leaderA.String(), ca.Leader.String())
	kvA := &mvccpb.KeyValue{Key: leaderA.Key, Value: []byte("v1"), CreateRevision: rev, ModRevision: rev, Version: 1, Lease: l1}
	require.Equal(t, kvA.String(), nextObserved("A's win").String())
	ld, err := ec.Leader(ctx, &epb.LeaderRequest{Name: name})
	require.NoError(t, err)
	require.Equal(t, kvA.String(), ld.Kv.String())
	require.Equal(t, rev, ld.Header.Revision)

	t.Logf("Step 5: B campaigns with v2 and waits behind A")
	type result struct {
		resp *epb.CampaignResponse
		err  error
	}
	bc := make(chan result, 1)
	go func() {
		r, err := ec.Campaign(ctx, &epb.CampaignRequest{Name: name, Lease: l2, Value: []byte("v2")})
		bc <- result{r, err}
	}()
	keys := waitKeys(t, cli, "svcelect/", 2)
	require.Equal(t, leaseKey("svcelect", l2), string(keys.Kvs[1].Key))
	require.Equal(t, rev+1, keys.Kvs[1].CreateRevision)
	require.Equal(t, "v2", string(keys.Kvs[1].Value))

	t.Logf("Step 6: A proclaims v1b: the observer and Leader see it; B still waits")
	pr, err := ec.Proclaim(ctx, &epb.ProclaimRequest{Leader: leaderA, Value: []byte("v1b")})
	require.NoError(t, err)
	require.Equal(t, rev+2, pr.Header.Revision)
	kvA1b := &mvccpb.KeyValue{Key: leaderA.Key, Value: []byte("v1b"), CreateRevision: rev, ModRevision: rev + 2, Version: 2, Lease: l1}
	require.Equal(t, kvA1b.String(), nextObserved("A's proclaim").String())
	ld, err = ec.Leader(ctx, &epb.LeaderRequest{Name: name})
	require.NoError(t, err)
	require.Equal(t, kvA1b.String(), ld.Kv.String())
	select {
	case r := <-bc:
		t.Fatalf("B's Campaign returned while A leads: %+v %v", r.resp, r.err)
	default:
	}

	t.Logf("Step 7: a leader key with the wrong revision may not proclaim: \"election: not leader\"")
	_, err = ec.Proclaim(ctx, &epb.ProclaimRequest{Leader: &epb.LeaderKey{Name: name, Key: leaderA.Key, Rev: rev + 100, Lease: l1}, Value: []byte("x")})
	requireRPCError(t, err, codes.Unknown, "election: not leader")

	t.Logf("Step 8: A resigns: B's Campaign returns (its put's header and leader key); the observer sees B")
	rs, err := ec.Resign(ctx, &epb.ResignRequest{Leader: leaderA})
	require.NoError(t, err)
	require.Equal(t, rev+3, rs.Header.Revision)
	var b result
	select {
	case b = <-bc:
	case <-time.After(10 * time.Second):
		t.Fatal("B's Campaign did not return after A resigned")
	}
	require.NoError(t, b.err)
	leaderB := &epb.LeaderKey{Name: name, Key: []byte(leaseKey("svcelect", l2)), Rev: rev + 1, Lease: l2}
	require.Equal(t, leaderB.String(), b.resp.Leader.String())
	require.Equal(t, rev+1, b.resp.Header.Revision)
	kvB := &mvccpb.KeyValue{Key: leaderB.Key, Value: []byte("v2"), CreateRevision: rev + 1, ModRevision: rev + 1, Version: 1, Lease: l2}
	require.Equal(t, kvB.String(), nextObserved("B's win").String())

	t.Logf("Step 9: A (resigned) may not proclaim; Leader is B")
	_, err = ec.Proclaim(ctx, &epb.ProclaimRequest{Leader: leaderA, Value: []byte("late")})
	requireRPCError(t, err, codes.Unknown, "election: not leader")
	ld, err = ec.Leader(ctx, &epb.LeaderRequest{Name: name})
	require.NoError(t, err)
	require.Equal(t, kvB.String(), ld.Kv.String())
	require.Equal(t, rev+3, ld.Header.Revision)

	t.Logf("Step 10: B resigns: no leader again, no candidate key left; the observer heard exactly three updates")
	_, err = ec.Resign(ctx, &epb.ResignRequest{Leader: leaderB})
	require.NoError(t, err)
	_, err = ec.Leader(ctx, &epb.LeaderRequest{Name: name})
	requireRPCError(t, err, codes.Unknown, "election: no leader")
	require.Empty(t, prefixKeys(t, cli, "svcelect/").Kvs)
	stopObs()
	require.Equal(t, codes.Canceled, status.Code(<-obsDone))
	require.Empty(t, observed, "no update after B's win")
}

// TestLockElection_StopWithWaiters: a member stopping (SIGTERM) with a Lock
// waiting and an Observe stream open ends both calls and exits promptly
// (the in-process client must not keep the gRPC drain waiting for the
// shutdown timeout). MetaStore only: it stops the process.
func TestLockElection_StopWithWaiters(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; A holds svclock, B waits for it, an observer watches svcelect")
	m := startMember(t, engineRocksDB)
	cli := newClient(t, m.endpoint())
	conn := dialConn(t, m.endpoint())
	lc, ec := v3lockpb.NewLockClient(conn), epb.NewElectionClient(conn)
	l1, l2 := grantLease(t, cli), grantLease(t, cli)
	_, err := lc.Lock(ctxT(t, 5*time.Second), &v3lockpb.LockRequest{Name: []byte("svclock"), Lease: l1})
	require.NoError(t, err)
	lockErr := make(chan error, 1)
	go func() {
		_, err := lc.Lock(ctxT(t, 30*time.Second), &v3lockpb.LockRequest{Name: []byte("svclock"), Lease: l2})
		lockErr <- err
	}()
	obs, err := ec.Observe(ctxT(t, 30*time.Second), &epb.LeaderRequest{Name: []byte("svcelect")})
	require.NoError(t, err)
	obsErr := make(chan error, 1)
	go func() {
		_, err := obs.Recv()
		obsErr <- err
	}()
	waitKeys(t, cli, "svclock/", 2)

	t.Logf("Step 2: SIGTERM: the member exits 0 well within its 10 s shutdown timeout; both calls end")
	start := time.Now()
	require.NoError(t, m.stop())
	took := time.Since(start)
	t.Logf("stopped in %v", took)
	require.Less(t, took, 5*time.Second)
	for what, ch := range map[string]chan error{"Lock": lockErr, "Observe": obsErr} {
		select {
		case err := <-ch:
			require.Error(t, err, what)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not end with the member", what)
		}
	}
}

// TestLockElection_Auth: with auth enabled the services act with the
// caller's token (etcd's in-process client does the same): a lock under the
// user's prefix works, one elsewhere is refused, a caller without a token is
// refused.
func TestLockElection_Auth(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; root, alice with read-write on /app/, auth enabled")
	c := startAPICluster(t, engineRocksDB, 1, "--bcrypt-cost", "4")
	ep := c.members[0].endpoint()
	setupAuth(t, newClient(t, ep))
	alice, err := newAuthClient(t, "alice", "alicepw", ep)
	require.NoError(t, err)
	l1 := grantLease(t, alice)
	conn := dialConn(t, ep)
	auth, err := pb.NewAuthClient(conn).Authenticate(ctxT(t, 5*time.Second), &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	require.NoError(t, err)
	withToken := metadata.AppendToOutgoingContext(ctxT(t, 20*time.Second), rpctypes.TokenFieldNameGRPC, auth.Token)
	lc, ec := v3lockpb.NewLockClient(conn), epb.NewElectionClient(conn)

	t.Logf("Step 2: alice locks and unlocks /app/lk with her token")
	lk, err := lc.Lock(withToken, &v3lockpb.LockRequest{Name: []byte("/app/lk"), Lease: l1})
	require.NoError(t, err)
	require.Equal(t, leaseKey("/app/lk", l1), string(lk.Key))
	_, err = lc.Unlock(withToken, &v3lockpb.UnlockRequest{Key: lk.Key})
	require.NoError(t, err)

	t.Logf("Step 3: alice campaigns on /app/el and reads the leader")
	ca, err := ec.Campaign(withToken, &epb.CampaignRequest{Name: []byte("/app/el"), Lease: l1, Value: []byte("a")})
	require.NoError(t, err)
	ld, err := ec.Leader(withToken, &epb.LeaderRequest{Name: []byte("/app/el")})
	require.NoError(t, err)
	require.Equal(t, ca.Leader.Key, ld.Kv.Key)
	require.Equal(t, "a", string(ld.Kv.Value))

	t.Logf("Step 4: outside her prefix: permission denied; without a token: user name is empty")
	_, err = lc.Lock(withToken, &v3lockpb.LockRequest{Name: []byte("/other/lk"), Lease: l1})
	requireRPCError(t, err, codes.Unknown, "etcdserver: permission denied")
	_, err = ec.Leader(withToken, &epb.LeaderRequest{Name: []byte("/other/el")})
	requireRPCError(t, err, codes.Unknown, "etcdserver: permission denied")
	_, err = lc.Lock(ctxT(t, 5*time.Second), &v3lockpb.LockRequest{Name: []byte("/app/lk"), Lease: l1})
	requireRPCError(t, err, codes.Unknown, "etcdserver: user name is empty")
}
