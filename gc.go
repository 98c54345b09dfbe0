package main

import (
	"os"
	"runtime/debug"

	"go.uber.org/zap"
)

// The Go garbage collector's defaults for a serving member, unless the
// operator set GOGC or GOMEMLIMIT in the environment (which then win).
//
// A member's live heap is small (no in-memory key index: the data lives in
// the engine), so with Go's default GOGC=100 the collector ran very often
// under load: at 100 put clients, GC was about 10% of the server's CPU.
// GOGC=400 cut the server's CPU per put by about 10% (56 vs 62 µs, etcd's
// benchmark, 100 clients, 100,000 random keys; docs/BENCHMARKS.md). The soft
// memory limit keeps the larger heap target from growing without bound: the
// collector works harder as the Go heap nears it.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 512 << 20
)

func tuneGC(lg *zap.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	lg.Info("garbage collector", zap.Int("gc-percent", currentGCPercent()),
		zap.Int64("memory-limit-bytes", debug.SetMemoryLimit(-1)))
}

// currentGCPercent reads the GC percent without changing it.
func currentGCPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}
