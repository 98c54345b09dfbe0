// Package rocksdb is the durable engine.Engine, on RocksDB through the
// native/ cgo shim.
//
// Open(dir, cfg) opens or creates the database with one column family per
// engine.Keyspace (named by Keyspace.String(): data, changelog, raftlog,
// meta) plus RocksDB's "default"; missing ones are created. Config
// (DefaultConfig) holds the NVMe-oriented settings: a 64 MiB LRU block
// cache shared by all column families (it also holds the partitions of the
// index and filter blocks, at high priority; the top levels stay pinned),
// a 10 bits/key bloom filter (whole keys, and in the data column
// family also the key without its 8-byte revision: DataPrefixFilter), lz4
// with zstd at the bottommost level, incremental syncs every 1 MiB, 4
// background jobs, 32 MiB memtables with 128 MiB over all column families,
// dynamic level sizes, and
// DisableFsync for --unsafe-no-fsync. Open fails with errors wrapping
// engine.ErrLocked (the LOCK file is held by another DB, in this or another
// process) or engine.ErrCorrupt (CURRENT or MANIFEST unreadable), on one line
// naming the directory.
//
// # Hot paths: one cgo crossing per batch or page
//
//   - A Batch encodes each operation straight into one Go buffer in
//     RocksDB's WriteBatch format (native.WriteBatch); Commit hands it to C,
//     which checks it and writes it in the same call. Put/Delete never cross
//     cgo. Keyspaces map to column family ids fixed at Open.
//   - An Iterator reads pages: each positioning call fills a Go buffer with
//     several entries in one crossing, and Next walks the page in Go. First
//     and Seek fetch a 4-entry page (mvcc usually reads one or two entries
//     after a seek, so a point lookup by Seek stays cheap); each following
//     page is 4x larger, up to 512 entries or 256 KiB. Key and Value are
//     slices of the page, valid until the next positioning call or Close.
//     Page buffers are pooled by size class.
//   - Get is one crossing that copies the value into a pooled scratch
//     buffer; the caller gets an exact-size copy it owns.
//
// # Lifetime and concurrency
//
// All DB methods are safe for concurrent use. Every call into native holds
// DB.mu for reading; Close takes it for writing, so it waits for calls in
// flight, then frees every iterator and snapshot still registered (their
// later calls report engine.ErrClosed instead of touching freed memory), the
// column families, the database, its options and the block cache. Close is
// idempotent. A Compact in progress is aborted by Close (it returns early).
//
// ApproximateSize counts SST files and memtables. DiskSize sums the regular
// files under the directory (SST, WAL, MANIFEST, OPTIONS, info LOG), one stat
// per file: cache it on hot paths. Checkpoint is a RocksDB checkpoint
// (memtables flushed, SST files hard-linked), openable with Open. Compact
// is a non-exclusive manual compaction that also rewrites the bottommost
// level; it does not block writes.
package rocksdb
