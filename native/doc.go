// Package native is MetaStore's cgo shim over RocksDB's C API
// (rocksdb/c.h, RocksDB 7.8.3). Only engine/rocksdb imports it.
//
// # Why a shim
//
// A cgo call costs tens of nanoseconds plus scheduler bookkeeping, and a
// general-purpose binding (grocksdb) crosses once per operation: a write
// batch of 1,000 puts is 1,001 crossings, a scan of 10,000 keys is ~40,000
// (Valid, Key, Value, Next per key, each Key/Value also allocating a Go
// wrapper). This package moves whole units of work across instead:
//
//   - Write: Go appends every operation of a batch into one flat []byte;
//     DB.Write passes &buf[0] and its length to ms_write, which replays the
//     records into a rocksdb_writebatch_t (each record names its column
//     family by index) and calls rocksdb_write with or without sync. One
//     crossing per batch.
//   - Iterator.Fill: one crossing positions the iterator (first, seek,
//     seek-for-prev, or continue) and copies as many entries as fit (by count
//     and by bytes) into a Go page buffer, forward or reverse.
//   - DB.Get: one crossing looks the key up (rocksdb_get_pinned_cf) and
//     copies the value into a Go buffer. Only a value larger than that
//     buffer takes a second call, which copies it out of the still-pinned
//     slice (so the two calls cannot see different values).
//
// # Buffer formats (all integers little-endian)
//
// Batch record, see AppendPut/AppendDelete/AppendDeleteRange:
//
//	op u8 | cf u8 | klen u32 | key | vlen u32 | value
//
// with op 1 put, 2 delete (vlen 0), 3 delete-range (key = start, value =
// exclusive end). ms_write validates every length and index and rejects a
// malformed buffer (Invalid argument) before writing anything.
//
// Page record, see PageRecord:
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
//     pointers, as the cgo rules require. Iterator bounds must outlive the
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
