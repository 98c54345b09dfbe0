package main

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// TestTuneProcs: serve runs with at least minProcs Ps when Go would give it
// fewer, leaves more alone, and leaves an operator's GOMAXPROCS alone.
func TestTuneProcs(t *testing.T) {
	old := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })

	t.Logf("Step 1: one P (a one-CPU cgroup or affinity mask), no GOMAXPROCS: raised to %d", minProcs)
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(1)
	tuneProcs(zap.NewNop())
	require.Equal(t, minProcs, runtime.GOMAXPROCS(0))

	t.Logf("Step 2: more Ps than the floor stay as they are")
	runtime.GOMAXPROCS(minProcs + 3)
	tuneProcs(zap.NewNop())
	require.Equal(t, minProcs+3, runtime.GOMAXPROCS(0))

	t.Logf("Step 3: GOMAXPROCS=1 in the environment wins")
	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	tuneProcs(zap.NewNop())
	require.Equal(t, 1, runtime.GOMAXPROCS(0))
}
