package test

// systemd's notification protocol as the packaged unit (Type=notify,
// WatchdogSec=) sees it: a fake NOTIFY_SOCKET, a unixgram socket like the one
// systemd passes, receives what `metastore serve` sends.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// notifySocket is a fake systemd notification socket.
type notifySocket struct {
	path string
	msgs chan notifyMsg
}

type notifyMsg struct {
	at    time.Time
	lines []string // "READY=1", "STATUS=...", ...
}

func (m notifyMsg) has(state string) bool {
	for _, l := range m.lines {
		if l == state {
			return true
		}
	}
	return false
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	s := &notifySocket{path: path, msgs: make(chan notifyMsg, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return // closed at cleanup
			}
			s.msgs <- notifyMsg{at: time.Now(), lines: strings.Split(strings.TrimSpace(string(buf[:n])), "\n")}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return s
}

// next returns the next message that has state, or fails after timeout.
// Messages without it are skipped.
func (s *notifySocket) next(t *testing.T, state string, timeout time.Duration) notifyMsg {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-s.msgs:
			if m.has(state) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within %v", state, timeout)
		}
	}
}

// none fails if a message with state arrives within d.
func (s *notifySocket) none(t *testing.T, state string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-s.msgs:
			require.False(t, m.has(state), "unexpected %s: %q", state, m.lines)
		case <-deadline:
			return
		}
	}
}

// notifiedMember is a serve process started with a NOTIFY_SOCKET.
type notifiedMember struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error
	logPath string
	client  string // host:port
}

// startNotified starts `metastore serve args...` with NOTIFY_SOCKET (and
// extra environment), killing it at cleanup.
func startNotified(t *testing.T, sock *notifySocket, client string, env []string, args ...string) *notifiedMember {
	t.Helper()
	m := &notifiedMember{exited: make(chan struct{}), logPath: filepath.Join(t.TempDir(), "serve.log"), client: client}
	logf, err := os.Create(m.logPath)
	require.NoError(t, err)
	m.cmd = exec.Command(binPath, args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	for _, kv := range os.Environ() { // the test may itself run under systemd
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "WATCHDOG_") {
			m.cmd.Env = append(m.cmd.Env, kv)
		}
	}
	m.cmd.Env = append(append(m.cmd.Env, "NOTIFY_SOCKET="+sock.path), env...)
	require.NoError(t, m.cmd.Start())
	go func() {
		m.err = m.cmd.Wait()
		logf.Close()
		close(m.exited)
	}()
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		<-m.exited
		if t.Failed() {
			b, _ := os.ReadFile(m.logPath)
			t.Logf("--- log of %v ---\n%s", args, b)
		}
	})
	return m
}

// firstAccept polls a TCP address from now on and reports when it first
// accepted a connection.
func firstAccept(addr string, stop <-chan struct{}) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
			if err == nil {
				at := time.Now()
				c.Close()
				out <- at
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return out
}

func serveArgs(name, dataDir, clientURL, peerURL, initialCluster, token string) []string {
	return []string{"serve", "--name", name, "--data-dir", dataDir, "--engine", engineRocksDB,
		"--listen-client-urls", clientURL, "--listen-peer-urls", peerURL,
		"--initial-cluster", initialCluster, "--initial-cluster-token", token, "--log-level", "warn"}
}

// TestSystemdNotify_ReadyOnlyOnceTheMemberServes: a member of a 2-member
// cluster listens but has no quorum alone: it sends no READY=1 (and a Put
// would fail). Once its peer starts, READY=1 arrives on both, after their
// client ports accept connections, and a Put sent the moment READY arrives
// succeeds. SIGTERM brings STOPPING=1, then exit 0.
func TestSystemdNotify_ReadyOnlyOnceTheMemberServes(t *testing.T) {
	ports := freePorts(t, 4)
	url := func(p int) string { return fmt.Sprintf("http://127.0.0.1:%d", p) }
	ic := fmt.Sprintf("m1=%s,m2=%s", url(ports[1]), url(ports[3]))
	token := fmt.Sprintf("notify-%d", time.Now().UnixNano())
	socks := []*notifySocket{newNotifySocket(t), newNotifySocket(t)}
	stop := make(chan struct{})
	defer close(stop)

	t.Logf("Step 1: start m1 alone with NOTIFY_SOCKET; its client port accepts connections")
	accepted1 := firstAccept(fmt.Sprintf("127.0.0.1:%d", ports[0]), stop)
	m1 := startNotified(t, socks[0], fmt.Sprintf("127.0.0.1:%d", ports[0]), nil,
		serveArgs("m1", filepath.Join(t.TempDir(), "m1"), url(ports[0]), url(ports[1]), ic, token)...)
	var acceptedAt1 time.Time
	select {
	case acceptedAt1 = <-accepted1:
	case <-time.After(20 * time.Second):
		t.Fatal("m1's client port never accepted a connection")
	}

	t.Logf("Step 2: without quorum m1 sends no READY=1, and indeed cannot serve a Put")
	_, err := newClient(t, m1.client).Put(ctxT(t, time.Second), "k", "v")
	require.Error(t, err)
	socks[0].none(t, "READY=1", 2*time.Second)

	t.Logf("Step 3: start m2; READY=1 arrives from both, after their client ports accept")
	accepted2 := firstAccept(fmt.Sprintf("127.0.0.1:%d", ports[2]), stop)
	m2 := startNotified(t, socks[1], fmt.Sprintf("127.0.0.1:%d", ports[2]), nil,
		serveArgs("m2", filepath.Join(t.TempDir(), "m2"), url(ports[2]), url(ports[3]), ic, token)...)
	for i, m := range []*notifiedMember{m1, m2} {
		ready := socks[i].next(t, "READY=1", 30*time.Second)
		t.Logf("Step 4.%d: READY=1 from m%d (%q); a Put sent right away succeeds", i+1, i+1, ready.lines)
		cli := newClient(t, m.client)
		put, err := cli.Put(ctxT(t, 5*time.Second), fmt.Sprintf("ready-%d", i+1), "yes")
		require.NoError(t, err)
		require.NotZero(t, put.Header.Revision)
		get, err := cli.Get(ctxT(t, 5*time.Second), fmt.Sprintf("ready-%d", i+1))
		require.NoError(t, err)
		require.Len(t, get.Kvs, 1)
		require.Equal(t, "yes", string(get.Kvs[0].Value))
		require.Contains(t, strings.Join(ready.lines, "\n"), "STATUS=serving; member ")
		acceptedAt := acceptedAt1
		if i == 1 {
			select {
			case acceptedAt = <-accepted2:
			case <-time.After(time.Second):
				t.Fatal("READY=1 from m2, but its client port does not accept connections")
			}
		}
		require.True(t, ready.at.After(acceptedAt), "READY=1 at %v, client port accepting from %v", ready.at, acceptedAt)
	}

	t.Logf("Step 5: SIGTERM m1: STOPPING=1, then exit 0")
	require.NoError(t, m1.cmd.Process.Signal(syscall.SIGTERM))
	stopping := socks[0].next(t, "STOPPING=1", 15*time.Second)
	select {
	case <-m1.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("m1 did not exit after SIGTERM")
	}
	require.NoError(t, m1.err, "exit status after SIGTERM")
	require.False(t, stopping.at.IsZero())
}

// TestSystemdNotify_Watchdog: with WATCHDOG_USEC set, as systemd does for
// WatchdogSec=, the member pings WATCHDOG=1 every half interval while it
// lives, and stops pinging once it stops.
func TestSystemdNotify_Watchdog(t *testing.T) {
	ports := freePorts(t, 2)
	sock := newNotifySocket(t)
	client := fmt.Sprintf("127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])

	t.Logf("Step 1: start one member with WATCHDOG_USEC=1000000 (1s)")
	m := startNotified(t, sock, client, []string{"WATCHDOG_USEC=1000000"},
		serveArgs("w1", filepath.Join(t.TempDir(), "w1"), "http://"+client, peer, "w1="+peer, "watchdog")...)

	t.Logf("Step 2: pings arrive every 500ms or so, never 1s apart (systemd's deadline)")
	var pings []time.Time
	for len(pings) < 5 {
		pings = append(pings, sock.next(t, "WATCHDOG=1", 5*time.Second).at)
	}
	for i := 1; i < len(pings); i++ {
		require.Less(t, pings[i].Sub(pings[i-1]), time.Second, "ping gap")
	}
	mean := pings[len(pings)-1].Sub(pings[0]) / time.Duration(len(pings)-1)
	require.True(t, mean > 350*time.Millisecond && mean < 800*time.Millisecond, "mean ping gap %v, want about 500ms", mean)

	t.Logf("Step 3: SIGTERM: STOPPING=1, exit 0, and no ping afterwards")
	require.NoError(t, m.cmd.Process.Signal(syscall.SIGTERM))
	sock.next(t, "STOPPING=1", 15*time.Second)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	require.NoError(t, m.err)
	sock.none(t, "WATCHDOG=1", 1200*time.Millisecond)
}
