package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Engines every engine-specific test runs on.
const (
	engineRocksDB = "rocksdb"
	engineMemory  = "memory"
)

// binPath is the metastore binary TestMain builds for this run.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "metastore-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "metastore")
	build := exec.Command("go", "build", "-o", binPath, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building metastore:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// member is one `metastore serve` process.
type member struct {
	t          *testing.T
	name       string
	engine     string
	dataDir    string
	clientURL  string
	peerURL    string
	args       []string // serve flags, kept for restarts
	logPath    string
	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	exitErr    error
	memberOpts // its extra flags, command and environment
}

// cluster is a set of members started together.
type cluster struct {
	t       *testing.T
	engine  string
	members []*member
}

// memberOpts adjusts how members start.
type memberOpts struct {
	// extraFlags are appended to every member's serve flags.
	extraFlags []string
	// command runs before the binary, taking it and its flags as arguments
	// (such as taskset -c 0), and env is added to the member's environment.
	command []string
	env     []string
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startMember starts a single-member cluster and waits until it serves.
func startMember(t *testing.T, engine string, opts ...memberOpts) *member {
	return startCluster(t, engine, 1, opts...).members[0]
}

// startCluster starts n members with the given engine and waits until every
// member knows the leader.
func startCluster(t *testing.T, engine string, n int, opts ...memberOpts) *cluster {
	t.Helper()
	var o memberOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	ports := freePorts(t, 2*n)
	c := &cluster{t: t, engine: engine}
	var initial []string
	for i := 0; i < n; i++ {
		m := &member{
			t: t, name: fmt.Sprintf("m%d", i+1), engine: engine,
			dataDir:   filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i+1)),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.logPath = m.dataDir + ".log"
		m.memberOpts = o
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	token := fmt.Sprintf("test-%d", time.Now().UnixNano())
	for _, m := range c.members {
		m.args = []string{"serve", "--name", m.name, "--data-dir", m.dataDir, "--engine", engine,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", token,
			"--initial-cluster-state", "new", "--log-level", "info"}
		m.args = append(m.args, m.extraFlags...)
		m.start()
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.kill()
		}
		if t.Failed() {
			for _, m := range c.members {
				m.dumpLog()
			}
		}
	})
	c.waitReady(30 * time.Second)
	return c
}

// start launches the process with m.args, logging to m.logPath.
func (m *member) start() {
	m.t.Helper()
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.t.Fatalf("log file: %v", err)
	}
	argv := append(append(append([]string{}, m.command...), binPath), m.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), m.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		m.t.Fatalf("starting %s: %v", m.name, err)
	}
	exited := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		m.mu.Lock()
		m.exitErr = err
		m.mu.Unlock()
		close(exited)
	}()
}

// kill sends SIGKILL and waits for the process to exit.
func (m *member) kill() {
	m.signal(syscall.SIGKILL)
}

// stop sends SIGTERM (graceful stop) and waits for the process to exit; it
// returns the process's exit error (nil for exit 0).
func (m *member) stop() error {
	return m.signal(syscall.SIGTERM)
}

func (m *member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
	default:
		cmd.Process.Signal(sig)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cmd = nil
	return m.exitErr
}

// restart starts the member again from its data directory (after kill or
// stop). The caller waits for readiness (cluster.waitReady or waitServing).
// A member still running is a test mistake: the new process could not bind
// the ports, the test would go on talking to the old one, and the old one
// would outlive the test (its cleanup kills only the newest process).
func (m *member) restart() {
	m.t.Helper()
	if m.running() {
		m.t.Fatalf("restart of %s while it still runs: stop or kill it first", m.name)
	}
	m.start()
}

// running reports whether the process is alive.
func (m *member) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

func (m *member) endpoint() string { return strings.TrimPrefix(m.clientURL, "http://") }

func (m *member) dumpLog() {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	m.t.Logf("--- last log lines of %s (%s) ---\n%s", m.name, m.logPath, strings.Join(lines, "\n"))
}

// status asks the member for its Maintenance status with a short timeout.
// Status needs a user once auth is on (as in etcd 3.7): then it asks as
// the tests' root (root:rootpw, what every auth test sets up).
func (m *member) status() (*clientv3.StatusResponse, error) {
	st, err := m.statusAs("", "")
	if errors.Is(err, rpctypes.ErrUserEmpty) {
		return m.statusAs("root", "rootpw")
	}
	return st, err
}

func (m *member) statusAs(user, password string) (*clientv3.StatusResponse, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.endpoint()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop(),
		Username: user, Password: password})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cli.Status(ctx, m.endpoint())
}

// waitReady waits until every running member reports the same, non-zero
// leader.
func (c *cluster) waitReady(timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, "every member to know the leader", func() bool {
		var leader uint64
		for _, m := range c.members {
			if !m.running() {
				continue
			}
			st, err := m.status()
			if err != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				return false
			}
			leader = st.Leader
		}
		return leader != 0
	})
}

// leader returns the member that leads now.
func (c *cluster) leader() *member {
	c.t.Helper()
	var found *member
	waitFor(c.t, 15*time.Second, "a leader", func() bool {
		for _, m := range c.members {
			if !m.running() {
				continue
			}
			st, err := m.status()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// endpoints lists the client endpoints of the running members.
// followers are c's members other than leader, in c's order.
func (c *cluster) followers(leader *member) []*member {
	var out []*member
	for _, m := range c.members {
		if m != leader {
			out = append(out, m)
		}
	}
	return out
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.endpoint())
	}
	return eps
}

// newClient returns a clientv3 client for the endpoints, closed at cleanup.
func newClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// ctxT is a context bounded by d, cancelled at cleanup.
func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// reconfigure runs a membership change (op, with a 10 s context) again
// while the answer is etcd's "unhealthy cluster" (waitFor; the test fails
// if it still is after 20 s) and returns the first other answer. The
// strict reconfiguration check refuses changes until the member taking
// them has been connected to the other voters for 5 s, so a change soon
// after a cluster (or a member) starts gets that answer for a while, from
// etcd as from MetaStore.
func reconfigure[T any](t *testing.T, op func(ctx context.Context) (T, error)) (T, error) {
	t.Helper()
	var v T
	var err error
	waitFor(t, 20*time.Second, "a membership change not refused as unhealthy cluster", func() bool {
		v, err = op(ctxT(t, 10*time.Second))
		return rpctypes.ErrorDesc(err) != rpctypes.ErrUnhealthy.Error()
	})
	return v, err
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runCLI runs the metastore binary with args and returns its exit code,
// stdout and stderr; it fails the test if the run takes longer than d.
func runCLI(t *testing.T, d time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("metastore %v did not finish within %v", args, d)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("metastore %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}
