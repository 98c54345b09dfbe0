package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/metastore/metastore/server"
)

// TestTuneGC: serve raises GOGC and sets a soft memory limit by default,
// and leaves both alone when the operator set them in the environment;
// the memory engine keeps Go's defaults.
func TestTuneGC(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	})

	t.Logf("Step 1: no GOGC or GOMEMLIMIT: the serving defaults")
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	tuneGC(zap.NewNop(), server.EngineRocksDB)
	percent, limit := gcSettings()
	require.Equal(t, uint64(defaultGCPercent), percent)
	require.Equal(t, uint64(defaultMemoryLimit), limit)

	t.Logf("Step 2: the environment wins")
	debug.SetGCPercent(55)
	debug.SetMemoryLimit(123 << 20)
	t.Setenv("GOGC", "55")
	t.Setenv("GOMEMLIMIT", "123MiB")
	tuneGC(zap.NewNop(), server.EngineRocksDB)
	percent, limit = gcSettings()
	require.Equal(t, uint64(55), percent)
	require.Equal(t, uint64(123<<20), limit)

	t.Logf("Step 3: the memory engine keeps Go's defaults (its state is the heap)")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	tuneGC(zap.NewNop(), server.EngineMemory)
	percent, limit = gcSettings()
	require.Equal(t, uint64(100), percent)
	require.Equal(t, uint64(math.MaxInt64), limit)
}
