package main

import (
	"os"
	"runtime"

	"go.uber.org/zap"
)

// minProcs is the fewest Ps (runtime.GOMAXPROCS) a serving member runs
// with, unless the operator set GOMAXPROCS in the environment.
//
// Go sets GOMAXPROCS to the CPUs the process may use: 1 under a one-CPU
// cgroup quota or affinity mask. With one P a member's throughput under load
// collapsed in some runs: the raft goroutine's synced log write (an fdatasync
// inside a cgo call, about 0.7-0.9 ms here) keeps the only P, and sysmon,
// which takes a P back from a call only after seeing it in two successive
// ticks, had backed off to naps of up to 10 ms, so it never saw a write
// twice. No request was read while the log synced, so a write carried a
// couple of proposals instead of 21-24 (put at 100 clients, member on one
// core: 3.2k-6.4k req/s and p99 80-99 ms, against 11.6k-15.1k req/s and p99
// 16-21 ms with 2 Ps; `make bench-onecpu`, docs/BENCHMARKS.md, eleventh
// round). A second P keeps requests flowing while one is in the write.
const minProcs = 2

// tuneProcs raises GOMAXPROCS to minProcs unless GOMAXPROCS is set.
// Setting it stops Go from following later changes of a cgroup's CPU
// limit, so it is only set when it would otherwise be below minProcs.
func tuneProcs(lg *zap.Logger) {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
	lg.Info("processors", zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)), zap.Int("usable-cpus", runtime.NumCPU()))
}
