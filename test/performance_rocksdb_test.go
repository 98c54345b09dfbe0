package test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The performance tests on the RocksDB engine. The load helpers live in
// performance_test.go; sizes follow METASTORE_PERF_FULL the same way.

func TestPerformanceRocksDB_LargeScaleLoad(t *testing.T) {
	perfLargeScaleLoad(t, engineRocksDB)
}

func TestPerformanceRocksDB_SustainedLoad(t *testing.T) {
	perfSustainedLoad(t, engineRocksDB)
}

func TestPerformanceRocksDB_MixedWorkload(t *testing.T) {
	perfMixedWorkload(t, engineRocksDB)
}

// TestPerformanceRocksDB_Compaction compacts history again and again while
// writers keep going: no write may fail, and revisions below the last
// compaction must answer ErrCompacted while the latest values stay exact.
func TestPerformanceRocksDB_Compaction(t *testing.T) {
	duration := perfSize(3*time.Second, 30*time.Second)
	writers, keysPer := 8, 20
	m := startMember(t, engineRocksDB)
	clis := perfClients(t, m, 4)
	admin := newClient(t, m.endpoint())

	t.Logf("Step 1: %d writers x %d keys; remembering the first revision written", writers, keysPer)
	ctx, cancel := perfCtx()
	first, err := admin.Put(ctx, "perf/compact/first", "x")
	cancel()
	require.NoError(t, err)
	firstRev := first.Header.Revision
	puts := &perfStats{name: "put"}
	var lastRev atomic.Int64
	last := make([]map[string]string, writers)
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		last[w] = map[string]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[w%len(clis)]
			for i := 0; time.Now().Before(deadline); i++ {
				key := fmt.Sprintf("perf/compact/w%02d/%03d", w, i%keysPer)
				val := strconv.Itoa(i)
				ctx, cancel := perfCtx()
				t0 := time.Now()
				resp, err := cli.Put(ctx, key, val)
				cancel()
				puts.observe(t0, err)
				if err == nil {
					last[w][key] = val
					for {
						cur := lastRev.Load()
						if resp.Header.Revision <= cur || lastRev.CompareAndSwap(cur, resp.Header.Revision) {
							break
						}
					}
				}
			}
		}()
	}

	t.Logf("Step 2: compacting every 200 ms to 50 revisions behind the writers (every other one physical)...")
	compacts := &perfStats{name: "compact"}
	var compactedTo int64
	for i := 0; time.Now().Before(deadline); i++ {
		time.Sleep(200 * time.Millisecond)
		rev := lastRev.Load() - 50
		if rev <= compactedTo {
			continue
		}
		var opts []clientv3.CompactOption
		if i%2 == 1 {
			opts = append(opts, clientv3.WithCompactPhysical())
		}
		ctx, cancel := perfCtx()
		t0 := time.Now()
		_, err := admin.Compact(ctx, rev, opts...)
		cancel()
		compacts.observe(t0, err)
		if err == nil {
			compactedTo = rev
		}
	}
	waitGroupWithin(t, &wg, time.Minute, "the writers")
	elapsed := time.Since(start)

	t.Logf("Step 3: no write and no compaction failed")
	puts.requireNoErrors(t, -1)
	compacts.requireNoErrors(t, -1)
	require.Greater(t, compactedTo, firstRev, "history was compacted past the first write")

	t.Logf("Step 4: old revisions are compacted, current data is exact")
	ctx, cancel = perfCtx()
	defer cancel()
	_, err = admin.Get(ctx, "perf/compact/first", clientv3.WithRev(firstRev))
	require.True(t, errors.Is(err, rpctypes.ErrCompacted), "read at revision %d after compacting to %d: got %v", firstRev, compactedTo, err)
	_, err = admin.Get(ctx, "perf/compact/first", clientv3.WithRev(compactedTo-1))
	require.True(t, errors.Is(err, rpctypes.ErrCompacted), "read just below the compaction: got %v", err)
	_, err = admin.Compact(ctx, compactedTo)
	require.True(t, errors.Is(err, rpctypes.ErrCompacted), "compacting again at %d: got %v", compactedTo, err)
	at, err := admin.Get(ctx, "perf/compact/first", clientv3.WithRev(compactedTo))
	require.NoError(t, err, "a read at the compacted revision itself still works")
	require.Len(t, at.Kvs, 1)
	require.Equal(t, "x", string(at.Kvs[0].Value))
	resp, err := admin.Get(ctx, "perf/compact/w", clientv3.WithPrefix())
	require.NoError(t, err)
	gotVals := map[string]string{}
	for _, kv := range resp.Kvs {
		gotVals[string(kv.Key)] = string(kv.Value)
	}
	wantVals := map[string]string{}
	for _, l := range last {
		for k, v := range l {
			wantVals[k] = v
		}
	}
	require.Equal(t, wantVals, gotVals)
	puts.log(t, elapsed)
	compacts.log(t, elapsed)
	t.Logf("  compacted up to revision %d of %d", compactedTo, lastRev.Load())
}
