package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// pid is the member's running process.
func (m *member) pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd.Process.Pid
}

// lockedKB reads VmLck (memory locked in RAM) of process pid, in kB.
func lockedKB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmLck:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no VmLck in /proc/%d/status", pid)
	return 0
}

// TestEtcdFlags_MemoryMlock: etcd's --memory-mlock locks the member's
// memory in RAM. Where the tests may lock memory (root, or no
// RLIMIT_MEMLOCK) the member serves with locked pages; where they may not,
// it refuses to start and says how to allow it.
func TestEtcdFlags_MemoryMlock(t *testing.T) {
	t.Parallel()
	var lim unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim))
	mayLock := os.Geteuid() == 0 || lim.Cur == unix.RLIM_INFINITY
	t.Logf("Step 1: a member with --memory-mlock (euid %d, RLIMIT_MEMLOCK %d: locking allowed %v)", os.Geteuid(), lim.Cur, mayLock)
	if !mayLock {
		ports := freePorts(t, 2)
		m := &member{t: t, name: "m1", engine: engineRocksDB, dataDir: filepath.Join(t.TempDir(), "m1"),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), peerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
		m.logPath = m.dataDir + ".log"
		m.args = []string{"serve", "--name", m.name, "--data-dir", m.dataDir, "--memory-mlock",
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", m.name + "=" + m.peerURL}
		m.start()
		t.Cleanup(m.kill)
		t.Logf("Step 2: it refuses to start, naming the limit")
		waitFor(t, 30*time.Second, "the member to exit", func() bool { return !m.running() })
		require.True(t, logContains(t, m, "--memory-mlock: mlockall:"), "the reason is logged")
		return
	}
	m := startMember(t, engineRocksDB, memberOpts{extraFlags: []string{"--memory-mlock"}})
	cli := newClient(t, m.endpoint())

	t.Logf("Step 2: it serves; 200 puts")
	for i := range 200 {
		mustPut(t, cli, fmt.Sprintf("k%d", i), strings.Repeat("v", 1000))
	}

	t.Logf("Step 3: its memory is locked (VmLck), and a member without the flag has none locked")
	require.Greater(t, lockedKB(t, m.pid()), int64(1024), "more than 1 MB locked")
	plain := startMember(t, engineRocksDB)
	require.Equal(t, int64(0), lockedKB(t, plain.pid()))
}
