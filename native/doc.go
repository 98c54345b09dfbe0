// Package native is MetaStore's cgo shim over RocksDB's C API
// (rocksdb/c.h, RocksDB 7.8.3). Only engine/rocksdb imports it.
//
// # Why a shim
//
// A general-purpose binding (grocksdb) crosses cgo once per operation: a
// write batch of 1,000 puts is 1,001 crossings, each re-encoding the put in
// C++, and a scan of 10,000 keys is ~40,000 crossings (Valid, Key, Value,
// Next per key, Key and Value each allocating a Go wrapper). This package
// moves whole units of work across instead:
//
//   - Write: Go builds the batch directly in RocksDB's WriteBatch encoding
//     in one []byte (WriteBatch); DB.Write passes &buf[0] and its length to
//     ms_write, which checks every record, wraps the bytes with
//     rocksdb_writebatch_create_from and calls rocksdb_write with or without
//     sync. One crossing per batch, and no per-operation C++ re-encoding.
//     A batch that grows past 1 MiB moves its bytes to C memory a megabyte
//     at a time (spill.cc), and ms_write_spilled moves them, not copies
//     them, into RocksDB's WriteBatch: a large batch is never held whole in
//     the Go heap (a DeleteRange of 250,000 keys of 256 B: 776 MB of Go heap
//     in use before the commit and 1.5 GB allocated, now 195 MB and 355 MB,
//     and twice as fast: mvcc's BenchmarkDeleteRangeLarge).
//   - Iterator.Fill: one crossing positions the iterator (first, seek,
//     seek-for-prev, or continue) and copies as many entries as fit (by count
//     and by bytes) into a Go page buffer, forward or reverse.
//   - DB.Get: one crossing looks the key up (rocksdb_get_pinned_cf) and
//     copies the value into a Go buffer. Only a value larger than that
//     buffer takes a second call, which copies it out of the still-pinned
//     slice (so the two calls cannot see different values).
//
// # Buffer formats
//
// Write batch (batch.go; RocksDB's db/write_batch.cc format, which is also
// the WAL record format and so must stay readable across RocksDB versions):
//
//	sequence fixed64 = 0 | count fixed32 | records
//	record: tag u8 | [cf id varint32] | key varstring | [value varstring]
//
// with tags 0x01 put, 0x00 delete, 0x0F delete-range for the default column
// family and 0x05, 0x04, 0x0E (followed by the id) for the others; a
// delete-range carries start as the key and the exclusive end as the value.
// Column families are named by RocksDB id (DB.ColumnFamilyID). Because
// RocksDB appends a batch to the WAL before parsing it, ms_write first walks
// it (known tags, lengths in bounds, open column family ids, record count
// equal to the header's) and rejects anything else as Invalid argument.
// engine/rocksdb's TestWriteBatchMatchesRocksDBEncoding checks the bytes
// against batches built through the C API.
//
// Page record (iter.go, integers little-endian):
//
//	klen u32 | key | vlen u32 | value
//
// Fill reports PageMore (full, entries may follow), PageEnd (bound reached)
// or PageNeed (the next entry alone is larger than the buffer: nothing was
// written, the iterator still stands on it, Fill again with Page.Need bytes).
// After a Fill the C iterator stands on the first entry not returned, so
// PosContinue resumes exactly there. Seeks outside the bounds are clamped in
// C (forward: to Lower; reverse at or above Upper: to the last key below it)
// so results never depend on RocksDB's handling of out-of-range targets.
//
// # Ownership rules
//
//   - C never keeps a Go pointer. Go buffers (batches, pages, keys, Get
//     buffers) are passed for the duration of one call; they hold no Go
//     pointers, as the cgo rules require. rocksdb_writebatch_create_from
//     copies the batch bytes into C++ memory before rocksdb_write. Iterator bounds must outlive the
//     call (RocksDB's read options keep a Slice, not a copy), so ms_iter_new
//     copies them into malloc'd memory owned by the iterator.
//   - Values and keys are always copied into Go memory; nothing returned to
//     Go points into RocksDB.
//   - Error strings are malloc'd by C and freed by Go after conversion into
//     *Error (Code from the Status prefix; Locked and NoSpace helpers).
//   - DB does no locking: the caller must not call into a DB, Iterator or
//     Snapshot after freeing it, and must free iterators and snapshots before
//     DB.Close. engine/rocksdb guarantees this with a RWMutex and a registry
//     of live iterators and snapshots.
//
// # Why native opens the database itself
//
// The fast paths need the raw rocksdb_t* and rocksdb_column_family_handle_t*.
// grocksdb v1.7.15 keeps them in unexported fields, so using it would mean
// reading its private struct layout with unsafe. Instead this package opens
// the database through the C API itself (options, shared LRU block cache,
// bloom filter, column families, checkpoint, compaction, properties all
// exist there) and does not depend on grocksdb at all; engine/rocksdb's
// benchmarks use grocksdb only as the per-key baseline.
//
// One function goes around the C API: ms_approx_sizes_with_memtables in
// approx.cc. The C API's rocksdb_approximate_sizes_cf counts SST files only,
// so freshly written data would weigh nothing; approx.cc calls
// DB::GetApproximateSizes with include_memtables, reaching the C++ objects
// through the C API's handle structs, whose one-pointer layout it copies
// from RocksDB 7.8.3's db/c.cc. TestApproximateSizeCountsMemtable checks it.
// version.cc is C++ only because rocksdb/version.h is.
//
// # Linking
//
// The package links with -lrocksdb and nothing else (no dlopen), so a fully
// static build works with
// CGO_LDFLAGS="-static -lrocksdb -lstdc++ -lm -lz -lbz2 -lsnappy -llz4 -lzstd -lpthread".
package native
