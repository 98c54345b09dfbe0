package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// etcdctlPath finds an unmodified etcdctl v3.7.3 (built by
// ../shared/peers/etcd/build.sh), or "" when there is none.
func etcdctlPath() string {
	for _, p := range []string{os.Getenv("ETCDCTL_BIN"), "../../shared/peers/etcd/bin/etcdctl", "/tmp/etcdpeer/bin/etcdctl"} {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			if st, err := os.Stat(abs); err == nil && !st.IsDir() {
				return abs
			}
		}
	}
	return ""
}

// TestReadme_ThreeMemberCluster runs the README's "3-member cluster in three
// commands" as written, with only the ports, paths and binaries swapped for
// this run's (fixed ports could collide with other tests).
func TestReadme_ThreeMemberCluster(t *testing.T) {
	t.Logf("Step 1: extracting the three commands from README.md")
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "## A 3-member cluster on one machine in three commands")
	require.True(t, ok, "README section is missing")
	_, block, ok := strings.Cut(after, "```sh\n")
	require.True(t, ok)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok)
	lines := strings.Split(strings.TrimSpace(block), "\n")
	require.Len(t, lines, 3, "three commands")

	t.Logf("Step 2: starting the cluster with the first two commands")
	ports := freePorts(t, 6)
	dir := t.TempDir()
	repl := []string{"bin/metastore", binPath, "/tmp/ms-m", filepath.Join(dir, "ms-m")}
	for i := 1; i <= 3; i++ {
		repl = append(repl, fmt.Sprintf("${i}2379"), "${C$i}", fmt.Sprintf("${i}2380"), "${P$i}")
		repl = append(repl, fmt.Sprintf("127.0.0.1:%d2379", i), "127.0.0.1:"+strconv.Itoa(ports[2*(i-1)]))
		repl = append(repl, fmt.Sprintf("127.0.0.1:%d2380", i), "127.0.0.1:"+strconv.Itoa(ports[2*(i-1)+1]))
	}
	r := strings.NewReplacer(repl...)
	// The loop's ${i}2379 becomes an indirect lookup of this run's ports.
	prelude := "set -e\n"
	for i := 1; i <= 3; i++ {
		prelude += fmt.Sprintf("C%d=%d; P%d=%d\n", i, ports[2*(i-1)], i, ports[2*(i-1)+1])
	}
	script := prelude + r.Replace(lines[0]) + "\n" +
		strings.ReplaceAll(strings.ReplaceAll(r.Replace(lines[1]), "${C$i}", "$(eval echo \\$C$i)"), "${P$i}", "$(eval echo \\$P$i)") +
		"\njobs -p\n"
	out, err := exec.Command("bash", "-c", script).Output()
	require.NoError(t, err, "script:\n%s", script)
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	require.Len(t, pids, 3)
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	t.Logf("Step 3: waiting for the three members to agree on a leader")
	c := &cluster{t: t}
	for i := 1; i <= 3; i++ {
		m := &member{t: t, name: fmt.Sprintf("m%d", i), clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*(i-1)])}
		c.members = append(c.members, m)
	}
	waitFor(t, 30*time.Second, "a leader known to all three", func() bool {
		var leader uint64
		for _, m := range c.members {
			st, err := m.status()
			if err != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				return false
			}
			leader = st.Leader
		}
		return true
	})

	t.Logf("Step 4: the third command (etcdctl endpoint status) lists three members, one leader")
	ctl := etcdctlPath()
	if ctl == "" {
		t.Logf("etcdctl not found (build it with ../shared/peers/etcd/build.sh); step 4 checked with clientv3 only")
		return
	}
	cmd := r.Replace(lines[2])
	cmd = strings.Replace(cmd, "etcdctl", ctl, 1)
	got, err := exec.Command("bash", "-c", cmd).CombinedOutput()
	require.NoError(t, err, "%s\n%s", cmd, got)
	rows := 0
	leaders := 0
	for _, line := range strings.Split(string(got), "\n") {
		if strings.Contains(line, "127.0.0.1:") {
			rows++
			if strings.Contains(line, "| true ") || strings.Contains(line, "│      true │") {
				leaders++
			}
		}
	}
	require.Equal(t, 3, rows, "%s", got)
	require.Equal(t, 1, leaders, "%s", got)
}
