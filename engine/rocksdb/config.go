package rocksdb

import (
	"fmt"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/native"
)

// Config holds the RocksDB settings MetaStore exposes. The defaults suit an
// NVMe SSD and a metadata workload: small keys and values, many point reads
// and short range scans, a steady stream of small synced batches.
type Config struct {
	// BlockCacheBytes is the LRU block cache shared by all column families.
	BlockCacheBytes uint64
	// BloomBitsPerKey sizes the whole-key bloom filter of each SST file
	// (0 disables it). 10 bits give about 1% false positives.
	BloomBitsPerKey int
	// Compression is "lz4" (the default: lz4 on upper levels, zstd at the
	// bottommost level, where most data lives and is read least), "zstd"
	// (zstd everywhere) or "none".
	Compression string
	// BytesPerSync makes RocksDB sync SST and WAL files incrementally in
	// steps of this size instead of in one large burst.
	BytesPerSync uint64
	// MaxBackgroundJobs bounds concurrent flushes and compactions.
	MaxBackgroundJobs int
	// WriteBufferBytes is the size of one memtable.
	WriteBufferBytes uint64
	// MaxWriteBufferNumber is how many memtables a column family may hold
	// (one active, the rest waiting to flush) before writes stall.
	MaxWriteBufferNumber int
	// TotalWriteBufferBytes bounds the memtables of all column families
	// together (RocksDB's db_write_buffer_size): past it the largest
	// memtable is flushed. 0 means no bound beyond the per-family limits
	// (4 column families x MaxWriteBufferNumber x WriteBufferBytes).
	TotalWriteBufferBytes uint64
	// MaxTotalWALBytes forces a flush of the column families that pin the
	// oldest WAL file once the WAL grows past it. Without it one busy column
	// family and several quiet ones keep every WAL file alive.
	MaxTotalWALBytes uint64
	// DisableFsync (--unsafe-no-fsync) makes Commit(sync=true) return
	// without fsyncing the WAL: a process crash loses nothing, a machine
	// crash may lose recent batches.
	DisableFsync bool
	// DataPrefixFilter gives the Data keyspace a prefix extractor that
	// drops the 8-byte revision suffix of its keys, with bloom filters over
	// the prefix, so that a lookup of one key's newest version
	// (IterOptions.SameSuffixedKey) skips memtables and files that do not
	// hold the key. Without it, such a lookup of a key that does not exist
	// seeks every level: 32% of the server's CPU in etcdctl check perf
	// after 200,000 other puts.
	DataPrefixFilter bool
}

// DefaultConfig returns the recommended settings.
func DefaultConfig() Config {
	return Config{
		BlockCacheBytes:       64 << 20,
		BloomBitsPerKey:       10,
		Compression:           "lz4",
		BytesPerSync:          1 << 20,
		MaxBackgroundJobs:     4,
		WriteBufferBytes:      32 << 20,
		MaxWriteBufferNumber:  4,
		TotalWriteBufferBytes: 128 << 20,
		MaxTotalWALBytes:      512 << 20,
		DataPrefixFilter:      true,
	}
}

// Validate reports the first setting that RocksDB would reject or that
// makes no sense.
func (c Config) Validate() error {
	if _, _, err := c.compression(); err != nil {
		return err
	}
	switch {
	case c.BlockCacheBytes < 1<<20:
		return fmt.Errorf("rocksdb: block cache of %d bytes is below the 1 MiB minimum", c.BlockCacheBytes)
	case c.BloomBitsPerKey < 0 || c.BloomBitsPerKey > 64:
		return fmt.Errorf("rocksdb: bloom bits per key %d outside [0, 64]", c.BloomBitsPerKey)
	case c.MaxBackgroundJobs < 1 || c.MaxBackgroundJobs > 256:
		return fmt.Errorf("rocksdb: max background jobs %d outside [1, 256]", c.MaxBackgroundJobs)
	case c.WriteBufferBytes < 64<<10:
		return fmt.Errorf("rocksdb: write buffer of %d bytes is below the 64 KiB minimum", c.WriteBufferBytes)
	case c.WriteBufferBytes > 4<<30:
		return fmt.Errorf("rocksdb: write buffer of %d bytes is above the 4 GiB maximum", c.WriteBufferBytes)
	case c.MaxWriteBufferNumber < 2 || c.MaxWriteBufferNumber > 64:
		return fmt.Errorf("rocksdb: max write buffer number %d outside [2, 64]", c.MaxWriteBufferNumber)
	case c.BytesPerSync > 1<<30:
		return fmt.Errorf("rocksdb: bytes per sync %d is above the 1 GiB maximum", c.BytesPerSync)
	}
	return nil
}

// compression maps the Compression name to the per-level choice.
func (c Config) compression() (upper, bottom native.Compression, err error) {
	switch c.Compression {
	case "lz4":
		return native.CompressLZ4, native.CompressZSTD, nil
	case "zstd":
		return native.CompressZSTD, native.CompressZSTD, nil
	case "none":
		return native.CompressNone, native.CompressNone, nil
	}
	return 0, 0, fmt.Errorf("rocksdb: unknown compression %q (want lz4, zstd or none)", c.Compression)
}

func (c Config) nativeOptions() native.Options {
	upper, bottom, _ := c.compression()
	return native.Options{
		BlockCacheBytes:       c.BlockCacheBytes,
		BloomBitsPerKey:       c.BloomBitsPerKey,
		Compression:           upper,
		BottommostCompression: bottom,
		BytesPerSync:          c.BytesPerSync,
		MaxBackgroundJobs:     c.MaxBackgroundJobs,
		WriteBufferBytes:      c.WriteBufferBytes,
		MaxWriteBufferNumber:  c.MaxWriteBufferNumber,
		MaxTotalWALBytes:      c.MaxTotalWALBytes,
		TotalWriteBufferBytes: c.TotalWriteBufferBytes,
		DisableFsync:          c.DisableFsync,
		PrefixCF:              int(engine.Data),
		PrefixSuffixLen:       dataPrefixSuffix(c.DataPrefixFilter),
	}
}

func dataPrefixSuffix(on bool) int {
	if on {
		return 8
	}
	return 0
}
