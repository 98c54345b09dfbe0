package mvcc

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/engine/rocksdb"
)

// BenchmarkPut measures puts through Apply, 1 and 100 puts per committed
// batch (the server applies a slice of raft entries per batch: one at one
// client, tens under load), the last one named final as the server does.
func BenchmarkPut(b *testing.B) {
	for _, ec := range engineCases {
		for _, per := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", ec.name, per), func(b *testing.B) {
				s := openBenchStore(b, ec)
				val := make([]byte, 256)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; {
					a := s.NewApply()
					for j := 0; j < per && i < b.N; j, i = j+1, i+1 {
						if j == per-1 || i == b.N-1 {
							a.FinalRequest()
						}
						if _, err := a.Put(&pb.PutRequest{Key: benchKey(uint64(i % 100000)), Value: val}); err != nil {
							b.Fatal(err)
						}
					}
					if _, err := a.Commit(false); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRangeOne measures a single-key read among 100,000 keys.
func BenchmarkRangeOne(b *testing.B) {
	for _, ec := range engineCases {
		b.Run(ec.name, func(b *testing.B) {
			s := openBenchStore(b, ec)
			loadKeys(b, s, 0, 100000, make([]byte, 256))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := s.Range(&pb.RangeRequest{Key: benchKey(uint64(i * 7919 % 100000))})
				if err != nil || len(resp.Kvs) != 1 {
					b.Fatalf("range: %v %v", err, resp)
				}
			}
		})
	}
}

func openBenchStore(b *testing.B, ec engineCase) *Store {
	e := ec.open(&testing.T{}, b.TempDir())
	s, err := Open(e, Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(); e.Close() })
	return s
}

// benchKey is a 16-byte key.
func benchKey(i uint64) []byte {
	k := []byte("key-0000")
	return binary.BigEndian.AppendUint64(k, i)
}

func loadKeys(b *testing.B, s *Store, from, to int, val []byte) {
	for i := from; i < to; {
		a := s.NewApply()
		for j := 0; j < 1000 && i < to; j, i = j+1, i+1 {
			if _, err := a.Put(&pb.PutRequest{Key: benchKey(uint64(i)), Value: val}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := a.Commit(false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad1M writes 1,000,000 keys (16-byte keys, 256-byte values)
// through mvcc on RocksDB and reports RSS and on-disk size at 100k and 1M
// keys. Run it once: go test -run xxx -bench Load1M -benchtime 1x ./mvcc/
// Memory must stay flat: no in-memory key index, only the RocksDB caches.
func BenchmarkLoad1M(b *testing.B) {
	cfg := rocksdb.DefaultConfig()
	cfg.BlockCacheBytes = 64 << 20
	cfg.WriteBufferBytes = 16 << 20
	cfg.MaxWriteBufferNumber = 2
	dir := b.TempDir()
	e, err := rocksdb.Open(dir, cfg)
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(e, Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { s.Close(); e.Close() }()
	val := make([]byte, 256)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	measure := func() (rss, disk float64) {
		runtime.GC()
		debug.FreeOSMemory()
		size, err := e.DiskSize()
		if err != nil {
			b.Fatal(err)
		}
		return float64(rssBytes(b)) / (1 << 20), float64(size) / (1 << 20)
	}
	b.ResetTimer()
	loadKeys(b, s, 0, 100000, val)
	rss100k, disk100k := measure()
	loadKeys(b, s, 100000, 1000000, val)
	rss1m, disk1m := measure()
	b.StopTimer()
	// The caches RocksDB may fill: the block cache plus the memtables of the
	// two column families this load writes (data and change log).
	budget := float64(cfg.BlockCacheBytes+2*cfg.WriteBufferBytes*uint64(cfg.MaxWriteBufferNumber)) / (1 << 20)
	b.ReportMetric(rss100k, "rss_100k_MiB")
	b.ReportMetric(rss1m, "rss_1M_MiB")
	b.ReportMetric(rss1m-rss100k, "rss_growth_MiB")
	b.ReportMetric(budget, "rocksdb_cache_budget_MiB")
	b.ReportMetric(disk100k, "disk_100k_MiB")
	b.ReportMetric(disk1m, "disk_1M_MiB")
	resp, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true})
	if err != nil || resp.Count != 1000000 {
		b.Fatalf("count after load: %v %v", resp, err)
	}
}

func rssBytes(b *testing.B) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal(fmt.Errorf("no VmRSS in /proc/self/status"))
	return 0
}

// BenchmarkDeleteRangeLarge deletes 250,000 keys of 256 B in one
// DeleteRange on RocksDB (etcdctl check perf's cleanup), reporting the Go
// heap in use just before the commit and the Go bytes allocated by the
// delete: a large batch must not be held, nor copied as it grows, in the
// Go heap (native/spill.cc). The delete is the Apply's final request, as
// it is in the server when it comes alone (FinalRequest); -final=false
// measures it as a request followed by others.
func BenchmarkDeleteRangeLarge(b *testing.B) {
	const n = 250000
	val := make([]byte, 1024)
	key := func(i int) []byte {
		k := make([]byte, 256)
		copy(k, "/etcdctl-check-perf/")
		binary.BigEndian.PutUint64(k[20:], uint64(i)*2654435761)
		return k
	}
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		s := openBenchStore(b, engineCases[1])
		for i := 0; i < n; i += 1000 {
			a := s.NewApply()
			for j := i; j < i+1000; j++ {
				if _, err := a.Put(&pb.PutRequest{Key: key(j), Value: val}); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := a.Commit(false); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		a := s.NewApply()
		if *finalDelete {
			a.FinalRequest() // as the server does for an Apply's last request
		}
		resp, err := a.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("/etcdctl-check-perf/"), RangeEnd: []byte("/etcdctl-check-perf0")})
		if err != nil || resp.Deleted != n {
			b.Fatalf("deleted %v, %v", resp, err)
		}
		runtime.ReadMemStats(&after)
		if _, err := a.Commit(false); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-inuse-MB")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), "alloc-MB")
	}
}

var finalDelete = flag.Bool("final", true, "BenchmarkDeleteRangeLarge: the delete is the Apply's final request")
