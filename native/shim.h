// shim.h declares the C side of package native: a few functions over
// RocksDB's C API (rocksdb/c.h) that each do a whole batch, page or lookup in
// one call, so that Go crosses cgo once per operation instead of once per key.
//
// Ownership: every pointer argument that comes from Go (batch buffers, page
// buffers, keys, bounds) is read or written only during the call. Anything
// that must outlive the call (iterator bounds) is copied into malloc'd memory
// owned by the C object. Returned error strings are malloc'd; Go frees them.
#ifndef METASTORE_NATIVE_SHIM_H
#define METASTORE_NATIVE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

// Compression choices (mapped to rocksdb_*_compression in shim.c).
enum { MS_COMPRESS_NONE = 0, MS_COMPRESS_LZ4 = 1, MS_COMPRESS_ZSTD = 2 };

typedef struct ms_config {
  uint64_t block_cache_bytes;
  int bloom_bits_per_key;  // 0 disables the filter
  int compression;         // MS_COMPRESS_*
  int bottommost_compression;
  uint64_t bytes_per_sync;
  int max_background_jobs;
  uint64_t write_buffer_bytes;
  int max_write_buffer_number;
  uint64_t max_total_wal_bytes;
  uint64_t db_write_buffer_bytes;  // total memtable budget over column families (0: none)
  uint64_t arena_block_bytes;      // memtable arena block size (0: RocksDB's, write_buffer_bytes/8)
  int disable_fsync;  // sync writes do not fsync the WAL
  // prefix_cf (>= 0) is the index in names of the column family whose keys
  // end in a prefix_suffix_len-byte suffix: its prefix extractor strips
  // the suffix, so bloom filters answer "no key with this prefix" for
  // iterators opened in prefix mode. -1: no such column family.
  int prefix_cf;
  int prefix_suffix_len;
} ms_config;

typedef struct ms_db {
  rocksdb_t* db;
  rocksdb_options_t* opts;
  rocksdb_options_t* prefix_opts;  // prefix_cf's options, or NULL
  rocksdb_cache_t* cache;
  rocksdb_writeoptions_t* wo_sync;
  rocksdb_writeoptions_t* wo_nosync;
  rocksdb_readoptions_t* ro;
  rocksdb_compactoptions_t* co;
  int ncf;
  rocksdb_column_family_handle_t** cfs;
  uint32_t* cf_ids;  // cf_ids[i] is the RocksDB id of cfs[i]
} ms_db;

typedef struct ms_open_result {
  ms_db* db;
  char* err;
} ms_open_result;

// ms_open opens (creating if missing) the database in dir with the column
// families names[0..n). names must list every column family the database
// already has (see ms_list_cfs) plus any to create; handle i is names[i].
ms_open_result ms_open(const char* dir, const ms_config* cfg, const char* const* names, int n);
void ms_close(ms_db* db);

// ms_list_cfs returns the column family names of an existing database as one
// malloc'd buffer of NUL-terminated names, and their count in *n.
char* ms_list_cfs(const char* dir, int* n, size_t* len, char** err);

// ms_write checks a batch in RocksDB's WriteBatch encoding (see batch.go),
// then writes it atomically in one rocksdb_write.
char* ms_write(ms_db* db, const char* buf, size_t len, int sync);
// A spill holds the first part of a large write batch in C memory
// (spill.cc); ms_write_spilled appends tail (the part still in Go memory),
// stamps count into the header, checks it as ms_write does and writes it.
// The spill is left empty; the caller still frees it.
typedef struct ms_spill ms_spill;
ms_spill* ms_spill_new(void);
void ms_spill_free(ms_spill* s);
void ms_spill_append(ms_spill* s, const char* p, size_t n);
char* ms_spill_data(ms_spill* s, size_t* len);
rocksdb_writebatch_t* ms_spill_take(ms_spill* s);
char* ms_write_spilled(ms_db* db, ms_spill* s, const char* tail, size_t tail_len, uint32_t count,
                       int sync);
// ms_build_batch checks and builds the write batch as ms_write would, then
// drops it unwritten; it returns the batch's count or -1 if malformed.
// Benchmarks use it to time the crossing and batch building alone.
int ms_build_batch(ms_db* db, const char* buf, size_t len);

// Get results.
enum { MS_GET_FOUND = 0, MS_GET_NOT_FOUND = 1, MS_GET_TOO_BIG = 2, MS_GET_ERROR = 3 };
typedef struct ms_get_result {
  int status;
  size_t len;                       // value length when found
  rocksdb_pinnableslice_t* pinned;  // set with MS_GET_TOO_BIG
  char* err;
} ms_get_result;

// ms_get looks key up in column family cf through ro (NULL: the default read
// options, latest state). A value of up to cap bytes is copied into buf;
// a larger one is left pinned for ms_pinned_copy.
ms_get_result ms_get(ms_db* db, int cf, const rocksdb_readoptions_t* ro, const char* key,
                     size_t klen, char* buf, size_t cap);
// ms_pinned_copy copies the pinned value into buf (which holds its length)
// and releases it.
void ms_pinned_copy(rocksdb_pinnableslice_t* p, char* buf);

typedef struct ms_snap {
  const rocksdb_snapshot_t* snap;
  rocksdb_readoptions_t* ro;
} ms_snap;
ms_snap* ms_snap_new(ms_db* db);
void ms_snap_free(ms_db* db, ms_snap* s);

typedef struct ms_iter {
  rocksdb_iterator_t* it;
  rocksdb_readoptions_t* ro;
  char* lower;  // malloc'd copies; NULL when unbounded
  size_t lower_len;
  char* upper;
  size_t upper_len;
  int reverse;
} ms_iter;

// ms_iter_new copies the bounds; snap may be NULL. With prefix_mode the
// iterator only visits keys with the prefix of its first seek target
// (prefix_same_as_start) and may skip files and memtables by their prefix
// bloom filters; otherwise it is a total-order iterator.
ms_iter* ms_iter_new(ms_db* db, int cf, ms_snap* snap, const char* lower, size_t lower_len,
                     int has_lower, const char* upper, size_t upper_len, int has_upper,
                     int reverse, int prefix_mode);
void ms_iter_free(ms_iter* it);

// Positioning before a page fill.
enum { MS_POS_CONTINUE = 0, MS_POS_FIRST = 1, MS_POS_SEEK = 2 };
// Page fill results.
enum { MS_PAGE_MORE = 0, MS_PAGE_END = 1, MS_PAGE_NEED = 2, MS_PAGE_ERROR = 3 };
typedef struct ms_page {
  int status;
  int count;    // records written
  size_t used;  // bytes written
  size_t need;  // with MS_PAGE_NEED: bytes the next record needs
  char* err;
} ms_page;

// ms_iter_fill positions the iterator (pos), then writes records
//   klen u32le | key | vlen u32le | value
// into buf until max records or cap bytes. On return the iterator stands on
// the first entry not written, so MS_POS_CONTINUE resumes there.
ms_page ms_iter_fill(ms_iter* it, int pos, const char* key, size_t klen, char* buf, size_t cap,
                     int max);

char* ms_checkpoint(ms_db* db, const char* dir);

typedef struct ms_size_result {
  uint64_t size;
  char* err;
} ms_size_result;
// ms_approx_size estimates the bytes of [start, limit) in cf (SST files and
// memtables); without a limit, up to the column family's last key.
ms_size_result ms_approx_size(ms_db* db, int cf, const char* start, size_t start_len,
                              const char* limit, size_t limit_len, int has_limit);

// ms_approx_sizes_with_memtables (approx.cc) is DB::GetApproximateSizes with
// memtables included, which the C API does not offer.
char* ms_approx_sizes_with_memtables(rocksdb_t* db, rocksdb_column_family_handle_t* cf,
                                     const char* start, size_t start_len, const char* limit,
                                     size_t limit_len, uint64_t* size);

// ms_compact compacts [start, limit) of cf (NULL: unbounded) without
// excluding automatic compactions, so writes never stall behind it.
void ms_compact(ms_db* db, int cf, const char* start, size_t start_len, int has_start,
                const char* limit, size_t limit_len, int has_limit);

// ms_stop_compactions aborts running manual compactions (their ms_compact
// calls return early) and refuses new ones; used on the way to close.
void ms_stop_compactions(ms_db* db);

// ms_flush flushes every column family's memtable to SST files.
char* ms_flush(ms_db* db);

// ms_property_int reads an integer property of cf; returns 0 on success.
int ms_property_int(ms_db* db, int cf, const char* name, uint64_t* out);

// ms_malloc_trim returns the C heap's free memory to the OS (glibc's
// malloc_trim): RocksDB frees a large memtable after its flush, and glibc
// keeps freed memory in its arenas otherwise.
void ms_malloc_trim(void);

// ms_fix_mmap_threshold makes every allocation of n bytes or more a mapping
// of its own (glibc's mallopt M_MMAP_THRESHOLD, which also stops glibc from
// raising the threshold by itself); nonzero on success.
int ms_fix_mmap_threshold(size_t n);

// ms_mapped_after_free frees a block of `freed` bytes (which raises glibc's
// threshold unless it is fixed), then says whether a block of n bytes gets a
// mapping of its own (1) or comes from an arena (0). For tests.
int ms_mapped_after_free(size_t freed, size_t n);

// The RocksDB version this package was compiled against (version.cc: the
// macros live in a C++ header).
int ms_version_major(void);
int ms_version_minor(void);
int ms_version_patch(void);

#endif
