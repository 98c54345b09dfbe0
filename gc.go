package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"

	"go.uber.org/zap"

	"github.com/metastore/metastore/server"
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

// tuneGC applies them. The memory engine is the exception: its whole state
// lives in the Go heap, so the live heap is the data set. A 512 MiB limit
// under a larger state made the collector run without pause (GC was half of
// the member's CPU under etcdctl check perf, 300,000 keys of 1 KiB), and
// GOGC=400 would let the heap grow to five times the data. It keeps Go's
// defaults (GOGC=100, no limit) unless the environment sets them.
func tuneGC(lg *zap.Logger, eng string) {
	if eng != server.EngineMemory {
		defaultGCPercentUnlessSet()
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(defaultMemoryLimit)
		}
	}
	percent, limit := gcSettings()
	lg.Info("garbage collector", zap.Uint64("gc-percent", percent), zap.Uint64("memory-limit-bytes", limit))
}

// gcSettings reads the GC percent and the memory limit in effect, from
// runtime/metrics (reading them through debug.Set* would change them for a
// moment).
func gcSettings() (percent, limit uint64) {
	samples := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(samples)
	return samples[0].Value.Uint64(), samples[1].Value.Uint64()
}

// defaultGCPercentUnlessSet sets GOGC=400 unless GOGC is set; `serve` and
// `metastore bench` both use it (bench without the memory limit): decoding
// a watch fan-out allocates per event, and at Go's default the client
// spent a fifth of its CPU collecting (watch-latency with 1,000 watchers
// reached 745 instead of 688 puts/s).
func defaultGCPercentUnlessSet() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
