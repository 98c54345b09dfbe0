package test

import (
	"bytes"
	"os"
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
	clientv3 "go.etcd.io/etcd/client/v3"
)

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
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
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
