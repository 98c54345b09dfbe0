package raft

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metastore/metastore/engine/rocksdb"
)

// BenchmarkPropose measures the proposal path without any front end:
// proposers on the leader each propose a command and wait until the leader
// applied it. The raft log is in RocksDB (fsync per Ready is the point); the
// toy state is in memory. Reports proposals/s, p50/p99 latency and the
// leader's fsyncs/s (synced log batches) and commands per fsync.
//
//	go test ./raft/ -run '^$' -bench Propose -benchtime 3000x
func BenchmarkPropose(b *testing.B) {
	for _, members := range []int{1, 3} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			var waiters sync.Map // command -> chan struct{}
			c := newBenchCluster(b, members, func(cmd []byte) {
				if ch, ok := waiters.LoadAndDelete(string(cmd)); ok {
					close(ch.(chan struct{}))
				}
			})
			leader := c.waitLeader(10 * time.Second)
			var seq atomic.Int64
			for _, proposers := range []int{1, 16, 256} {
				b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
					lat := make([]time.Duration, b.N)
					var next atomic.Int64
					syncs0 := leader.node.store.syncs.Load()
					b.ResetTimer()
					start := time.Now()
					var wg sync.WaitGroup
					for p := 0; p < proposers; p++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for {
								i := next.Add(1) - 1
								if i >= int64(b.N) {
									return
								}
								cmd := fmt.Sprintf("r%09d=%0100d", seq.Add(1), i)
								ch := make(chan struct{})
								waiters.Store(cmd, ch)
								t0 := time.Now()
								ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
								if err := leader.node.Propose(ctx, []byte(cmd)); err != nil {
									cancel()
									b.Error(err)
									return
								}
								select {
								case <-ch:
								case <-ctx.Done():
									b.Error("proposal not applied in 10s")
								}
								cancel()
								lat[i] = time.Since(t0)
							}
						}()
					}
					wg.Wait()
					elapsed := time.Since(start)
					b.StopTimer()
					syncs := leader.node.store.syncs.Load() - syncs0
					slices.Sort(lat)
					b.ReportMetric(float64(b.N)/elapsed.Seconds(), "props/s")
					b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(lat[b.N*99/100].Microseconds())/1000, "p99-ms")
					b.ReportMetric(float64(syncs)/elapsed.Seconds(), "fsyncs/s")
					b.ReportMetric(float64(b.N)/float64(max(syncs, 1)), "props/fsync")
				})
			}
		})
	}
}

func newBenchCluster(b *testing.B, members int, onApplied func([]byte)) *testCluster {
	var mu sync.Mutex
	var dbs []*rocksdb.DB
	c := newClusterWith(b, members, func(cfg *Config) {
		db, err := rocksdb.Open(b.TempDir(), rocksdb.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		dbs = append(dbs, db)
		mu.Unlock()
		cfg.LogEngine = db
	}, onApplied)
	// Cleanups run LIFO: stop the members before closing their log DBs.
	b.Cleanup(func() {
		c.stopAll()
		for _, db := range dbs {
			db.Close()
		}
	})
	return c
}

// BenchmarkFdatasync measures this disk's fsync latency the way a raft log
// append sees it: append 2300 bytes, then fdatasync.
func BenchmarkFdatasync(b *testing.B) {
	f, err := os.CreateTemp(b.TempDir(), "fsync")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 2300)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
}
