package rocksdb

import (
	"encoding/binary"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/metastore/metastore/engine"
)

// The benchmarks compare native/'s one-crossing-per-batch/page paths with
// the per-key cgo calls of a general binding (grocksdb), on the same RocksDB
// build and settings. Run:
//
//	go test -run xxx -bench . -benchtime 2s ./engine/rocksdb/

const (
	benchKeyBytes   = 16
	benchValueBytes = 256
	benchBatchOps   = 1000
	benchScanPairs  = 10000
)

func benchKey(buf []byte, i uint64) []byte {
	buf = buf[:benchKeyBytes]
	binary.BigEndian.PutUint64(buf, 0x6b65792d6b65792d) // "key-key-"
	binary.BigEndian.PutUint64(buf[8:], i)
	return buf
}

func benchValue() []byte {
	v := make([]byte, benchValueBytes)
	for i := range v {
		v[i] = byte(i * 31)
	}
	return v
}

// openGrocksdb opens dir with grocksdb using the engine's column families and
// the same cache, filter and compression settings.
func openGrocksdb(b testing.TB, dir string) (*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, func()) {
	cfg := DefaultConfig()
	bbto := grocksdb.NewDefaultBlockBasedTableOptions()
	cache := grocksdb.NewLRUCache(cfg.BlockCacheBytes)
	bbto.SetBlockCache(cache)
	bbto.SetFilterPolicy(grocksdb.NewBloomFilterFull(float64(cfg.BloomBitsPerKey)))
	bbto.SetFormatVersion(5)
	bbto.SetCacheIndexAndFilterBlocks(true)
	bbto.SetPinL0FilterAndIndexBlocksInCache(true)
	opts := grocksdb.NewDefaultOptions()
	opts.SetCreateIfMissing(true)
	opts.SetCreateIfMissingColumnFamilies(true)
	opts.SetBlockBasedTableFactory(bbto)
	opts.SetWriteBufferSize(cfg.WriteBufferBytes)
	opts.SetMaxWriteBufferNumber(cfg.MaxWriteBufferNumber)
	opts.SetMaxBackgroundJobs(cfg.MaxBackgroundJobs)
	opts.SetBytesPerSync(cfg.BytesPerSync)
	opts.SetCompression(grocksdb.LZ4Compression)
	opts.SetBottommostCompression(grocksdb.ZSTDCompression)
	opts.SetLevelCompactionDynamicLevelBytes(true)
	names := []string{"data", "changelog", "raftlog", "meta", "default"}
	cfOpts := []*grocksdb.Options{opts, opts, opts, opts, opts}
	db, cfs, err := grocksdb.OpenDbColumnFamilies(opts, dir, names, cfOpts)
	if err != nil {
		b.Fatal(err)
	}
	return db, cfs, func() {
		for _, cf := range cfs {
			cf.Destroy()
		}
		db.Close()
		opts.Destroy()
		bbto.Destroy()
		cache.Destroy()
	}
}

func reportPairs(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkBatchCommit1000 commits batches of 1,000 puts (16 B keys, 256 B
// values) without sync, so the difference is the cost of getting the batch
// into RocksDB: one cgo call (native) versus one per put (grocksdb).
func BenchmarkBatchCommit1000(b *testing.B) {
	val := benchValue()
	b.Run("native", func(b *testing.B) {
		db, err := Open(b.TempDir(), DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		batch := db.NewBatch()
		defer batch.Close()
		key := make([]byte, benchKeyBytes)
		var n uint64
		b.SetBytes(benchBatchOps * (benchKeyBytes + benchValueBytes))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			batch.Reset()
			for j := 0; j < benchBatchOps; j++ {
				n++
				batch.Put(engine.Data, benchKey(key, n), val)
			}
			if err := batch.Commit(false); err != nil {
				b.Fatal(err)
			}
		}
		reportPairs(b, benchBatchOps)
	})
	b.Run("grocksdb-per-put", func(b *testing.B) {
		db, cfs, closeDB := openGrocksdb(b, b.TempDir())
		defer closeDB()
		wo := grocksdb.NewDefaultWriteOptions()
		defer wo.Destroy()
		wb := grocksdb.NewWriteBatch()
		defer wb.Destroy()
		key := make([]byte, benchKeyBytes)
		var n uint64
		b.SetBytes(benchBatchOps * (benchKeyBytes + benchValueBytes))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			wb.Clear()
			for j := 0; j < benchBatchOps; j++ {
				n++
				wb.PutCF(cfs[0], benchKey(key, n), val)
			}
			if err := db.Write(wo, wb); err != nil {
				b.Fatal(err)
			}
		}
		reportPairs(b, benchBatchOps)
	})
}

// BenchmarkBatchBuild1000 is BenchmarkBatchCommit1000 without the write:
// both sides build a rocksdb_writebatch_t holding the same 1,000 puts and
// drop it, which isolates the crossing cost from RocksDB's WAL and memtable
// work (about 90% of a commit, identical on both sides).
func BenchmarkBatchBuild1000(b *testing.B) {
	val := benchValue()
	b.Run("native", func(b *testing.B) {
		db, err := Open(b.TempDir(), DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		batch := db.NewBatch().(*batch)
		defer batch.Close()
		key := make([]byte, benchKeyBytes)
		var n uint64
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			batch.Reset()
			for j := 0; j < benchBatchOps; j++ {
				n++
				batch.Put(engine.Data, benchKey(key, n), val)
			}
			if c, err := db.n.BuildBatch(&batch.wb); err != nil || c != benchBatchOps {
				b.Fatalf("built %d operations, err %v", c, err)
			}
		}
		reportPairs(b, benchBatchOps)
	})
	b.Run("grocksdb-per-put", func(b *testing.B) {
		_, cfs, closeDB := openGrocksdb(b, b.TempDir())
		defer closeDB()
		wb := grocksdb.NewWriteBatch()
		defer wb.Destroy()
		key := make([]byte, benchKeyBytes)
		var n uint64
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			wb.Clear()
			for j := 0; j < benchBatchOps; j++ {
				n++
				wb.PutCF(cfs[0], benchKey(key, n), val)
			}
			if c := wb.Count(); c != benchBatchOps {
				b.Fatalf("built %d operations", c)
			}
		}
		reportPairs(b, benchBatchOps)
	})
}

// scanDir writes benchScanPairs pairs into the data keyspace, flushed to an
// SST file, and returns the closed database's directory.
func scanDir(b *testing.B) string {
	dir := b.TempDir()
	db, err := Open(dir, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	batch := db.NewBatch()
	key, val := make([]byte, benchKeyBytes), benchValue()
	for i := 0; i < benchScanPairs; i++ {
		batch.Put(engine.Data, benchKey(key, uint64(i)), val)
	}
	if err := batch.Commit(false); err != nil {
		b.Fatal(err)
	}
	batch.Close()
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkScan10000 reads 10,000 pairs (16 B keys, 256 B values) from the
// block cache: native pages (one cgo call per up to 512 pairs) versus
// grocksdb's Valid/Key/Value/Next (four cgo calls per pair).
func BenchmarkScan10000(b *testing.B) {
	dir := scanDir(b)
	b.Run("native-pages", func(b *testing.B) {
		db, err := Open(dir, DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		b.SetBytes(benchScanPairs * (benchKeyBytes + benchValueBytes))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			it := db.NewIterator(engine.Data, engine.IterOptions{})
			n, bytes := 0, 0
			for ok := it.First(); ok; ok = it.Next() {
				n++
				bytes += len(it.Key()) + len(it.Value())
			}
			if err := it.Err(); err != nil || n != benchScanPairs || bytes != benchScanPairs*(benchKeyBytes+benchValueBytes) {
				b.Fatalf("scanned %d pairs, %d bytes, err %v", n, bytes, err)
			}
			it.Close()
		}
		reportPairs(b, benchScanPairs)
	})
	b.Run("grocksdb-per-next", func(b *testing.B) {
		db, cfs, closeDB := openGrocksdb(b, dir)
		defer closeDB()
		ro := grocksdb.NewDefaultReadOptions()
		defer ro.Destroy()
		b.SetBytes(benchScanPairs * (benchKeyBytes + benchValueBytes))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			it := db.NewIteratorCF(ro, cfs[0])
			n, bytes := 0, 0
			for it.SeekToFirst(); it.Valid(); it.Next() {
				k, v := it.Key(), it.Value()
				n++
				bytes += len(k.Data()) + len(v.Data())
				k.Free()
				v.Free()
			}
			if err := it.Err(); err != nil || n != benchScanPairs || bytes != benchScanPairs*(benchKeyBytes+benchValueBytes) {
				b.Fatalf("scanned %d pairs, %d bytes, err %v", n, bytes, err)
			}
			it.Close()
		}
		reportPairs(b, benchScanPairs)
	})
}

// BenchmarkGet reads one of 10,000 keys (256 B values) from the block cache:
// native's single crossing (lookup and copy into a pooled buffer, then an
// exact-size Go copy) versus grocksdb's GetCF (lookup, then Data and Free).
func BenchmarkGet(b *testing.B) {
	dir := scanDir(b)
	b.Run("native", func(b *testing.B) {
		db, err := Open(dir, DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		key := make([]byte, benchKeyBytes)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			v, err := db.Get(engine.Data, benchKey(key, uint64(i%benchScanPairs)))
			if err != nil || len(v) != benchValueBytes {
				b.Fatalf("got %d bytes, err %v", len(v), err)
			}
		}
	})
	b.Run("grocksdb", func(b *testing.B) {
		db, cfs, closeDB := openGrocksdb(b, dir)
		defer closeDB()
		ro := grocksdb.NewDefaultReadOptions()
		defer ro.Destroy()
		key := make([]byte, benchKeyBytes)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s, err := db.GetCF(ro, cfs[0], benchKey(key, uint64(i%benchScanPairs)))
			if err != nil {
				b.Fatal(err)
			}
			v := append([]byte(nil), s.Data()...) // engine.Reader.Get returns an owned copy
			s.Free()
			if len(v) != benchValueBytes {
				b.Fatalf("got %d bytes", len(v))
			}
		}
	})
}
