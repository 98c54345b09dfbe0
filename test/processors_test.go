package test

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestServe_TwoProcsOnOneCPU: a member allowed one CPU (here an affinity
// mask, as a one-CPU cgroup quota would) runs with two Ps, since one P
// stalled every request behind the log's fdatasync (procs.go); an
// operator's GOMAXPROCS still wins.
func TestServe_TwoProcsOnOneCPU(t *testing.T) {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("taskset (util-linux) is not installed")
	}
	var allowed unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &allowed))
	cpu := -1
	for i := 0; i < 1024 && cpu < 0; i++ {
		if allowed.IsSet(i) {
			cpu = i
		}
	}
	require.GreaterOrEqual(t, cpu, 0, "an allowed CPU")
	oneCPU := []string{taskset, "-c", fmt.Sprint(cpu)}

	t.Logf("Step 1: start a member on CPU %d alone, GOMAXPROCS unset", cpu)
	m := startMember(t, engineMemory, memberOpts{command: oneCPU, env: []string{"GOMAXPROCS="}})

	t.Logf("Step 2: /metrics says it runs with 2 Ps")
	body := string(httpDo(t, "GET", m.clientURL+"/metrics", nil).body)
	require.Equal(t, 2.0, metricValue(t, body, "go_sched_gomaxprocs_threads"))

	t.Logf("Step 3: start another with GOMAXPROCS=1 in its environment")
	m1 := startMember(t, engineMemory, memberOpts{command: oneCPU, env: []string{"GOMAXPROCS=1"}})

	t.Logf("Step 4: it keeps the operator's 1")
	body = string(httpDo(t, "GET", m1.clientURL+"/metrics", nil).body)
	require.Equal(t, 1.0, metricValue(t, body, "go_sched_gomaxprocs_threads"))
}
