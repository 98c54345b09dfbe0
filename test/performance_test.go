package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Performance tests: load against real members, asserting that every
// operation is accounted for and none failed, and logging throughput and
// latency. They run small by default (a few seconds each, so `make test`
// stays quick); METASTORE_PERF_FULL=1 (set by `make bench`) runs the full
// sizes. The twins on RocksDB are in performance_rocksdb_test.go; this file
// runs on the memory engine and holds the shared load helpers.

const perfFullEnv = "METASTORE_PERF_FULL"

// perfSize picks the short or the full size.
func perfSize[T any](short, full T) T {
	if os.Getenv(perfFullEnv) == "1" {
		return full
	}
	return short
}

// perfStats accounts for operations of one kind: successes, failures (with
// the first error) and latencies.
type perfStats struct {
	name     string
	ok       atomic.Int64
	failed   atomic.Int64
	mu       sync.Mutex
	lat      []time.Duration
	firstErr error
}

func (s *perfStats) observe(start time.Time, err error) {
	d := time.Since(start)
	if err != nil {
		s.failed.Add(1)
		s.mu.Lock()
		if s.firstErr == nil {
			s.firstErr = err
		}
		s.mu.Unlock()
		return
	}
	s.ok.Add(1)
	s.mu.Lock()
	s.lat = append(s.lat, d)
	s.mu.Unlock()
}

// requireNoErrors asserts that every operation succeeded and that exactly
// want of them ran (want < 0: any number, but at least one).
func (s *perfStats) requireNoErrors(t *testing.T, want int64) {
	t.Helper()
	s.mu.Lock()
	first := s.firstErr
	s.mu.Unlock()
	require.Zero(t, s.failed.Load(), "%s: %d of %d failed, first: %v", s.name, s.failed.Load(), s.ok.Load()+s.failed.Load(), first)
	if want >= 0 {
		require.Equal(t, want, s.ok.Load(), "%s: operations accounted for", s.name)
	} else {
		require.Positive(t, s.ok.Load(), "%s: no operation ran", s.name)
	}
}

// log reports throughput over elapsed and latency percentiles.
func (s *perfStats) log(t *testing.T, elapsed time.Duration) {
	t.Helper()
	s.mu.Lock()
	lat := append([]time.Duration(nil), s.lat...)
	s.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		i := int(p / 100 * float64(len(lat)))
		if i >= len(lat) {
			i = len(lat) - 1
		}
		return lat[i]
	}
	t.Logf("  %-10s %6d ok, %d failed, %8.1f ops/s, p50 %v, p90 %v, p99 %v, max %v",
		s.name, s.ok.Load(), s.failed.Load(), float64(s.ok.Load())/elapsed.Seconds(),
		pct(50).Round(time.Microsecond), pct(90).Round(time.Microsecond), pct(99).Round(time.Microsecond), pct(100).Round(time.Microsecond))
}

// perfClients opens n clients to one member; load goroutines share them
// round-robin the way applications share connections.
func perfClients(t *testing.T, m *member, n int) []*clientv3.Client {
	clis := make([]*clientv3.Client, n)
	for i := range clis {
		clis[i] = newClient(t, m.endpoint())
	}
	return clis
}

// waitGroupWithin waits for wg, failing the test after d.
func waitGroupWithin(t *testing.T, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// opTimeoutPerf bounds each single operation under load.
const opTimeoutPerf = 15 * time.Second

func perfCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeoutPerf)
}

func TestPerformance_WatchScalability(t *testing.T) {
	watchers := perfSize(50, 1000)
	puts := perfSize(100, 500)
	m := startMember(t, engineMemory)
	// Watchers spread over 5 clients, each its own gRPC connection and
	// (clientv3 shares one per client and context) one watch stream.
	clis := perfClients(t, m, 5)
	writer := newClient(t, m.endpoint())
	const key = "perf/watch/key"

	t.Logf("Step 1: creating %d watchers and waiting until each is created...", watchers)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	chans := make([]clientv3.WatchChan, watchers)
	created := time.Now()
	for i := range chans {
		chans[i] = clis[i%len(clis)].Watch(ctx, key, clientv3.WithCreatedNotify())
		select {
		case resp, ok := <-chans[i]:
			require.True(t, ok, "watcher %d: channel closed before it was created", i)
			require.NoError(t, resp.Err(), "watcher %d: create", i)
			require.True(t, resp.Created, "watcher %d: first response is the created notification", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher %d: not created within 10s", i)
		}
	}
	t.Logf("  %d watchers created in %v", watchers, time.Since(created).Round(time.Millisecond))

	t.Logf("Step 2: starting %d receivers...", watchers)
	got := make([][]string, watchers)
	var revOrderErrs atomic.Int64
	var wg sync.WaitGroup
	for i, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lastRev int64
			for len(got[i]) < puts {
				resp, ok := <-ch
				if !ok || resp.Err() != nil {
					return
				}
				for _, ev := range resp.Events {
					if ev.Kv.ModRevision <= lastRev {
						revOrderErrs.Add(1)
					}
					lastRev = ev.Kv.ModRevision
					got[i] = append(got[i], string(ev.Kv.Value))
				}
			}
		}()
	}

	t.Logf("Step 3: writing %d puts to the watched key...", puts)
	putStats := &perfStats{name: "put"}
	start := time.Now()
	for i := 0; i < puts; i++ {
		ctx, cancel := perfCtx()
		t0 := time.Now()
		_, err := writer.Put(ctx, key, strconv.Itoa(i))
		cancel()
		putStats.observe(t0, err)
	}
	putStats.requireNoErrors(t, int64(puts))

	t.Logf("Step 4: waiting for every watcher to receive every event and verifying...")
	waitGroupWithin(t, &wg, 30*time.Second, "every watcher's events")
	elapsed := time.Since(start)
	want := make([]string, puts)
	for i := range want {
		want[i] = strconv.Itoa(i)
	}
	for i := range got {
		require.Equal(t, want, got[i], "watcher %d: the events, in order", i)
	}
	require.Zero(t, revOrderErrs.Load(), "mod revisions increase along each watcher's events")
	putStats.log(t, elapsed)
	t.Logf("  %d events delivered in %v: %.0f events/s", watchers*puts, elapsed.Round(time.Millisecond),
		float64(watchers*puts)/elapsed.Seconds())
}

func TestPerformance_LargeScaleLoad(t *testing.T) {
	perfLargeScaleLoad(t, engineMemory)
}

// perfLargeScaleLoad runs clients x ops Put+Get pairs, each client on its
// own keys, and checks every Get saw its Put and the final key count.
func perfLargeScaleLoad(t *testing.T, engine string) {
	clients := perfSize(10, 50)
	ops := perfSize(50, 1000)
	m := startMember(t, engine)
	clis := perfClients(t, m, 5)

	t.Logf("Step 1: %d clients ready on a %s member", clients, engine)
	puts, gets := &perfStats{name: "put"}, &perfStats{name: "get"}
	var mismatches atomic.Int64

	t.Logf("Step 2: each client does %d Put+Get pairs on its own keys...", ops)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[c%len(clis)]
			for i := 0; i < ops; i++ {
				key := fmt.Sprintf("perf/large/c%03d/%06d", c, i)
				val := fmt.Sprintf("v-%d-%d", c, i)
				ctx, cancel := perfCtx()
				t0 := time.Now()
				_, err := cli.Put(ctx, key, val)
				puts.observe(t0, err)
				t0 = time.Now()
				resp, err := cli.Get(ctx, key)
				gets.observe(t0, err)
				cancel()
				if err == nil && (len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != val) {
					mismatches.Add(1)
				}
			}
		}()
	}

	t.Logf("Step 3: waiting for %d operations...", 2*clients*ops)
	waitGroupWithin(t, &wg, 5*time.Minute, "the load")
	elapsed := time.Since(start)

	t.Logf("Step 4: verifying every op and the key count")
	puts.requireNoErrors(t, int64(clients*ops))
	gets.requireNoErrors(t, int64(clients*ops))
	require.Zero(t, mismatches.Load(), "a Get did not return the value just put")
	ctx, cancel := perfCtx()
	defer cancel()
	resp, err := clis[0].Get(ctx, "perf/large/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Equal(t, int64(clients*ops), resp.Count)
	puts.log(t, elapsed)
	gets.log(t, elapsed)
	t.Logf("  total %.0f ops/s over %v", float64(2*clients*ops)/elapsed.Seconds(), elapsed.Round(time.Millisecond))
}

func TestPerformance_SustainedLoad(t *testing.T) {
	perfSustainedLoad(t, engineMemory)
}

// perfSustainedLoad runs writers for a fixed time (short: 3 s, full:
// 60 s), each owning its keys and remembering its last value per key, with
// a stats goroutine logging progress; at the end every key holds its
// writer's last value.
func perfSustainedLoad(t *testing.T, engine string) {
	duration := perfSize(3*time.Second, 60*time.Second)
	every := perfSize(time.Second, 10*time.Second)
	writers, keysPer := 8, 50
	m := startMember(t, engine)
	clis := perfClients(t, m, 4)

	t.Logf("Step 1: %d writers x %d keys on a %s member, for %v", writers, keysPer, engine, duration)
	puts, gets := &perfStats{name: "put"}, &perfStats{name: "get"}
	last := make([]map[string]string, writers)
	stop := make(chan struct{})

	t.Logf("Step 2: starting the stats goroutine (every %v)...", every)
	var statsWG sync.WaitGroup
	statsWG.Add(1)
	go func() {
		defer statsWG.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		start, prev := time.Now(), int64(0)
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				n := puts.ok.Load() + gets.ok.Load()
				t.Logf("  [stats %4.0fs] %d ops, %.0f ops/s in the last %v, %d failed",
					time.Since(start).Seconds(), n, float64(n-prev)/every.Seconds(), every, puts.failed.Load()+gets.failed.Load())
				prev = n
			}
		}
	}()

	t.Logf("Step 3: running the load...")
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
				key := fmt.Sprintf("perf/sustained/w%02d/%03d", w, i%keysPer)
				val := fmt.Sprintf("%d", i)
				ctx, cancel := perfCtx()
				t0 := time.Now()
				_, err := cli.Put(ctx, key, val)
				puts.observe(t0, err)
				if err == nil {
					last[w][key] = val
				}
				if i%4 == 0 {
					t0 = time.Now()
					_, err = cli.Get(ctx, key, clientv3.WithSerializable())
					gets.observe(t0, err)
				}
				cancel()
			}
		}()
	}
	waitGroupWithin(t, &wg, duration+time.Minute, "the writers")
	elapsed := time.Since(start)
	close(stop)
	statsWG.Wait()

	t.Logf("Step 4: verifying: no failure, and every key holds its writer's last value")
	puts.requireNoErrors(t, -1)
	gets.requireNoErrors(t, -1)
	ctx, cancel := perfCtx()
	defer cancel()
	resp, err := clis[0].Get(ctx, "perf/sustained/", clientv3.WithPrefix())
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
	gets.log(t, elapsed)
}

func TestPerformance_MixedWorkload(t *testing.T) {
	perfMixedWorkload(t, engineMemory)
}

// perfMixedWorkload runs Put/Get/Delete/Range in a fixed 4:3:1:2 pattern,
// each client on its own keys with a model of them, so every result can be
// checked exactly and the per-kind success counts are known in advance.
func perfMixedWorkload(t *testing.T, engine string) {
	clients := perfSize(10, 50)
	ops := perfSize(100, 2000) // a multiple of 10
	keysPer := 20
	m := startMember(t, engine)
	clis := perfClients(t, m, 5)

	t.Logf("Step 1: %d clients x %d ops on a %s member", clients, ops, engine)
	kinds := []*perfStats{{name: "put"}, {name: "get"}, {name: "delete"}, {name: "range"}}
	pattern := []int{0, 1, 0, 3, 0, 1, 2, 0, 1, 3} // 4 put, 3 get, 1 delete, 2 range
	var wrong atomic.Int64
	var firstWrong atomic.Value

	t.Logf("Step 2: running the mixed load...")
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[c%len(clis)]
			prefix := fmt.Sprintf("perf/mixed/c%03d/", c)
			model := map[string]string{}
			check := func(ok bool, format string, args ...any) {
				if !ok {
					wrong.Add(1)
					firstWrong.CompareAndSwap(nil, fmt.Sprintf(format, args...))
				}
			}
			for i := 0; i < ops; i++ {
				kind := pattern[i%len(pattern)]
				key := fmt.Sprintf("%s%03d", prefix, (i*7)%keysPer)
				ctx, cancel := perfCtx()
				t0 := time.Now()
				switch kind {
				case 0:
					val := strconv.Itoa(i)
					_, err := cli.Put(ctx, key, val)
					kinds[0].observe(t0, err)
					if err == nil {
						model[key] = val
					}
				case 1:
					resp, err := cli.Get(ctx, key)
					kinds[1].observe(t0, err)
					if err == nil {
						want, present := model[key]
						check(len(resp.Kvs) == map[bool]int{true: 1, false: 0}[present], "get %s: %d kvs, model has it: %v", key, len(resp.Kvs), present)
						if present && len(resp.Kvs) == 1 {
							check(string(resp.Kvs[0].Value) == want, "get %s = %q, want %q", key, resp.Kvs[0].Value, want)
						}
					}
				case 2:
					resp, err := cli.Delete(ctx, key)
					kinds[2].observe(t0, err)
					if err == nil {
						_, present := model[key]
						check(resp.Deleted == map[bool]int64{true: 1, false: 0}[present], "delete %s: deleted %d, model has it: %v", key, resp.Deleted, present)
						delete(model, key)
					}
				case 3:
					resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
					kinds[3].observe(t0, err)
					if err == nil {
						check(len(resp.Kvs) == len(model), "range %s: %d keys, model has %d", prefix, len(resp.Kvs), len(model))
					}
				}
				cancel()
			}
		}()
	}

	t.Logf("Step 3: waiting for %d operations...", clients*ops)
	waitGroupWithin(t, &wg, 5*time.Minute, "the mixed load")
	elapsed := time.Since(start)

	t.Logf("Step 4: verifying per-kind counts and results")
	per := int64(clients * ops / len(pattern))
	for kind, want := range []int64{4 * per, 3 * per, per, 2 * per} {
		kinds[kind].requireNoErrors(t, want)
	}
	require.Zero(t, wrong.Load(), "results that disagree with the model; first: %v", firstWrong.Load())
	for _, k := range kinds {
		k.log(t, elapsed)
	}
	t.Logf("  total %.0f ops/s", float64(clients*ops)/elapsed.Seconds())
}

func TestPerformance_TransactionThroughput(t *testing.T) {
	clients := perfSize(10, 50)
	keys := perfSize(20, 200)
	casPer := perfSize(20, 200)
	m := startMember(t, engineMemory)
	clis := perfClients(t, m, 5)

	t.Logf("Step 1: %d clients race to create each of %d keys (create-if-absent txns)...", clients, keys)
	creates := &perfStats{name: "create-txn"}
	winners := make([]atomic.Int64, keys) // how many txns succeeded per key
	winnerOf := make([]atomic.Int64, keys)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[c%len(clis)]
			for k := 0; k < keys; k++ {
				key := fmt.Sprintf("perf/txn/create/%04d", k)
				ctx, cancel := perfCtx()
				t0 := time.Now()
				resp, err := cli.Txn(ctx).
					If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
					Then(clientv3.OpPut(key, strconv.Itoa(c))).
					Commit()
				cancel()
				creates.observe(t0, err)
				if err == nil && resp.Succeeded {
					winners[k].Add(1)
					winnerOf[k].Store(int64(c))
				}
			}
		}()
	}
	waitGroupWithin(t, &wg, 5*time.Minute, "the create txns")
	createElapsed := time.Since(start)

	t.Logf("Step 2: verifying exactly one create won per key, and its value stayed")
	creates.requireNoErrors(t, int64(clients*keys))
	ctx, cancel := perfCtx()
	defer cancel()
	resp, err := clis[0].Get(ctx, "perf/txn/create/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, keys)
	for k := 0; k < keys; k++ {
		require.Equal(t, int64(1), winners[k].Load(), "key %d: successful creates", k)
		require.Equal(t, strconv.FormatInt(winnerOf[k].Load(), 10), string(resp.Kvs[k].Value), "key %d holds its winner", k)
		require.Equal(t, int64(1), resp.Kvs[k].Version, "key %d was written once", k)
	}

	t.Logf("Step 3: %d clients x %d compare-and-swap increments on 4 counters...", clients, casPer)
	const counters = 4
	for i := 0; i < counters; i++ {
		_, err := clis[0].Put(ctx, fmt.Sprintf("perf/txn/counter/%d", i), "0")
		require.NoError(t, err)
	}
	cas := &perfStats{name: "cas-txn"}
	var casWon, casLost atomic.Int64
	start = time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[c%len(clis)]
			for i := 0; i < casPer; i++ {
				key := fmt.Sprintf("perf/txn/counter/%d", (c+i)%counters)
				ctx, cancel := perfCtx()
				get, err := cli.Get(ctx, key)
				if err != nil {
					cas.observe(time.Now(), err)
					cancel()
					continue
				}
				n, _ := strconv.Atoi(string(get.Kvs[0].Value))
				t0 := time.Now()
				resp, err := cli.Txn(ctx).
					If(clientv3.Compare(clientv3.ModRevision(key), "=", get.Kvs[0].ModRevision)).
					Then(clientv3.OpPut(key, strconv.Itoa(n+1))).
					Commit()
				cancel()
				cas.observe(t0, err)
				if err == nil {
					if resp.Succeeded {
						casWon.Add(1)
					} else {
						casLost.Add(1)
					}
				}
			}
		}()
	}
	waitGroupWithin(t, &wg, 5*time.Minute, "the CAS txns")
	casElapsed := time.Since(start)

	t.Logf("Step 4: verifying the CAS counts add up")
	cas.requireNoErrors(t, int64(clients*casPer))
	require.Equal(t, int64(clients*casPer), casWon.Load()+casLost.Load())
	var sum int64
	for i := 0; i < counters; i++ {
		get, err := clis[0].Get(ctx, fmt.Sprintf("perf/txn/counter/%d", i))
		require.NoError(t, err)
		n, err := strconv.ParseInt(string(get.Kvs[0].Value), 10, 64)
		require.NoError(t, err)
		require.Equal(t, n+1, get.Kvs[0].Version, "counter %d: one version per successful CAS plus the initial put", i)
		sum += n
	}
	require.Equal(t, casWon.Load(), sum, "the counters add up to the successful CAS txns")
	creates.log(t, createElapsed)
	cas.log(t, casElapsed)
	t.Logf("  CAS: %d won, %d lost to a concurrent writer", casWon.Load(), casLost.Load())
}

// TestPerformance_BenchCommand drives a member with `metastore bench`, the
// tool docs/BENCHMARKS.md's numbers come from, and checks its accounting.
func TestPerformance_BenchCommand(t *testing.T) {
	m := startMember(t, engineMemory)
	ep := m.endpoint()
	runs := []struct {
		name string
		args []string
		want int64
	}{
		{"put", []string{"put", "--clients", "10", "--conns", "2", "--total", "300", "--key-space-size", "100", "--sequential-keys", "--val-size", "64"}, 300},
		{"range", []string{"range", "--clients", "10", "--total", "300", "--consistency", "s", "00000000", "00000050"}, 300},
		{"txn-put", []string{"txn-put", "--clients", "10", "--total", "200", "--txn-ops", "2", "--key-space-size", "100"}, 200},
		{"mixed", []string{"mixed", "--clients", "10", "--total", "300", "--key-space-size", "100"}, 300},
		{"rest-put", []string{"rest-put", "--clients", "10", "--conns", "10", "--total", "300", "--key-space-size", "100", "--sequential-keys"}, 300},
		{"rest-get", []string{"rest-get", "--clients", "10", "--conns", "10", "--total", "300", "--key-space-size", "100"}, 300},
		// Watch rows count events: watchers x puts.
		{"watch", []string{"watch", "--clients", "2", "--streams", "2", "--watchers-per-stream", "10", "--total", "50"}, 20 * 50},
		{"watch-latency", []string{"watch-latency", "--streams", "2", "--watchers-per-stream", "5", "--total", "20", "--rate", "200"}, 10 * 20},
		{"lease-keepalive", []string{"lease-keepalive", "--clients", "5", "--total", "200"}, 200},
	}
	for i, r := range runs {
		t.Logf("Step %d: metastore bench %s", i+1, r.name)
		args := append([]string{"bench"}, r.args...)
		args = append(args[:2], append([]string{"--endpoints", ep, "--json"}, args[2:]...)...)
		code, stdout, stderr := runCLI(t, 60*time.Second, args...)
		require.Equal(t, 0, code, "stderr: %s", stderr)
		res := parseBenchJSON(t, stdout)
		require.Equal(t, r.want, res.Succeeded, "%s: errors %v", r.name, res.Errors)
		require.Zero(t, res.Failed, "%s: errors %v %v", r.name, res.Errors, res.FirstErrors)
		t.Logf("  %s: %.0f ops/s, p50 %.3f ms, p99 %.3f ms", r.name, res.Throughput, res.Latency.P50, res.Latency.P99)
	}
}

// benchJSON is the part of `metastore bench --json` these tests read.
type benchJSON struct {
	Succeeded   int64             `json:"succeeded"`
	Failed      int64             `json:"failed"`
	Errors      map[string]int64  `json:"errors"`
	FirstErrors map[string]string `json:"first_errors"`
	Throughput  float64           `json:"throughput"`
	Latency     struct {
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	} `json:"latency"`
}

func parseBenchJSON(t *testing.T, out string) benchJSON {
	t.Helper()
	var res benchJSON
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &res), "output: %s", out)
	return res
}
