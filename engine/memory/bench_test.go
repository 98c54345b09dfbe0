package memory

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/metastore/metastore/engine"
)

// BenchmarkBatchPut1000 commits batches of 1,000 new 16-byte keys with
// 100-byte values into a growing tree.
func BenchmarkBatchPut1000(b *testing.B) {
	db, _ := Open("")
	defer db.Close()
	val := make([]byte, 100)
	batch := db.NewBatch()
	defer batch.Close()
	key := make([]byte, 0, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch.Reset()
		for j := 0; j < 1000; j++ {
			key = strconv.AppendInt(append(key[:0], "key/"...), int64(1e12+i*1000+j), 10)
			batch.Put(engine.Data, key, val)
		}
		if err := batch.Commit(false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/put")
}

func fillForBench(b *testing.B, n int) *DB {
	b.Helper()
	db, _ := Open("")
	batch := db.NewBatch()
	val := make([]byte, 100)
	for i := 0; i < n; i++ {
		batch.Put(engine.Data, []byte(fmt.Sprintf("key/%012d", i)), val)
	}
	if err := batch.Commit(false); err != nil {
		b.Fatal(err)
	}
	batch.Close()
	return db
}

// BenchmarkScan10000 iterates 10,000 keys, forward and reverse.
func BenchmarkScan10000(b *testing.B) {
	db := fillForBench(b, 10000)
	defer db.Close()
	for _, rev := range []bool{false, true} {
		b.Run(fmt.Sprintf("reverse=%v", rev), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				it := db.NewIterator(engine.Data, engine.IterOptions{Reverse: rev})
				n := 0
				for ok := it.First(); ok; ok = it.Next() {
					n += len(it.Value())
				}
				it.Close()
				if n != 10000*100 {
					b.Fatalf("scanned %d bytes", n)
				}
			}
		})
	}
}

// BenchmarkGet reads random keys from a 100,000-key keyspace.
func BenchmarkGet(b *testing.B) {
	db := fillForBench(b, 100000)
	defer db.Close()
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key/%012d", (i*7919)%100000))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.Get(engine.Data, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
	}
}
