package native

/*
#cgo LDFLAGS: -lrocksdb
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

// Compression selects a block compression algorithm.
type Compression int

const (
	CompressNone Compression = C.MS_COMPRESS_NONE
	CompressLZ4  Compression = C.MS_COMPRESS_LZ4
	CompressZSTD Compression = C.MS_COMPRESS_ZSTD
)

// Options are the RocksDB settings Open applies to the database and to every
// column family. The caller validates them (engine/rocksdb.Config does).
type Options struct {
	BlockCacheBytes       uint64
	BloomBitsPerKey       int
	Compression           Compression
	BottommostCompression Compression
	BytesPerSync          uint64
	MaxBackgroundJobs     int
	WriteBufferBytes      uint64
	MaxWriteBufferNumber  int
	MaxTotalWALBytes      uint64
	// TotalWriteBufferBytes bounds the memtables of all column families
	// together (RocksDB's db_write_buffer_size; 0: no bound).
	TotalWriteBufferBytes uint64
	// DisableFsync makes Write(sync=true) skip the WAL fsync.
	DisableFsync bool
	// PrefixCF, when PrefixSuffixLen is 8, is the index (in Open's names)
	// of the column family whose keys all end in an 8-byte suffix: it gets
	// a prefix extractor that strips it, and prefix bloom filters, used by
	// iterators opened with prefix set. -1 or a PrefixSuffixLen of 0: none.
	PrefixCF        int
	PrefixSuffixLen int
}

// DB is an open RocksDB database with its column family handles.
//
// NB: DB does no locking of its own. The caller guarantees that no call is in
// flight or follows once Close has started, and that iterators and snapshots
// are freed before Close (engine/rocksdb enforces both).
type DB struct {
	c *C.ms_db
	// cfs are the column family names in handle order; ids their RocksDB ids.
	cfs []string
	ids []uint32
}

// Version returns the RocksDB version compiled in, e.g. "7.8.3".
func Version() string {
	return fmt.Sprintf("%d.%d.%d", C.ms_version_major(), C.ms_version_minor(), C.ms_version_patch())
}

// Open opens (creating if missing) the database in dir. Handle i of the
// result is column family want[i]; column families the database has beyond
// want (and "default") are opened too, as RocksDB requires, after them.
func Open(dir string, opts Options, want []string) (*DB, error) {
	fixMmapThreshold.Do(fixMmapThresholdOnce)
	names := append([]string(nil), want...)
	if _, err := os.Stat(filepath.Join(dir, "CURRENT")); err == nil {
		existing, err := listColumnFamilies(dir)
		if err != nil {
			return nil, err
		}
		for _, n := range existing {
			if !contains(names, n) {
				names = append(names, n)
			}
		}
	}
	if !contains(names, "default") {
		names = append(names, "default")
	}

	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	cnames := make([]*C.char, len(names))
	for i, n := range names {
		cnames[i] = C.CString(n)
	}
	defer func() {
		for _, p := range cnames {
			C.free(unsafe.Pointer(p))
		}
	}()
	// NB: cnames is Go memory holding C pointers only, which cgo allows.
	cfg := C.ms_config{
		block_cache_bytes:       C.uint64_t(opts.BlockCacheBytes),
		bloom_bits_per_key:      C.int(opts.BloomBitsPerKey),
		compression:             C.int(opts.Compression),
		bottommost_compression:  C.int(opts.BottommostCompression),
		bytes_per_sync:          C.uint64_t(opts.BytesPerSync),
		max_background_jobs:     C.int(opts.MaxBackgroundJobs),
		write_buffer_bytes:      C.uint64_t(opts.WriteBufferBytes),
		max_write_buffer_number: C.int(opts.MaxWriteBufferNumber),
		max_total_wal_bytes:     C.uint64_t(opts.MaxTotalWALBytes),
		db_write_buffer_bytes:   C.uint64_t(opts.TotalWriteBufferBytes),
	}
	if !mmapThresholdFromEnv() {
		cfg.arena_block_bytes = C.uint64_t(arenaBlockBytes)
	}
	if opts.DisableFsync {
		cfg.disable_fsync = 1
	}
	cfg.prefix_cf = -1
	if opts.PrefixSuffixLen == 8 {
		cfg.prefix_cf = C.int(opts.PrefixCF)
		cfg.prefix_suffix_len = C.int(opts.PrefixSuffixLen)
	} else if opts.PrefixSuffixLen != 0 {
		return nil, fmt.Errorf("native: prefix suffix of %d bytes (only 8 is supported)", opts.PrefixSuffixLen)
	}
	r := C.ms_open(cdir, &cfg, &cnames[0], C.int(len(names)))
	if r.err != nil {
		return nil, takeError(r.err)
	}
	ids := make([]uint32, len(names))
	for i, id := range unsafe.Slice(r.db.cf_ids, len(names)) {
		ids[i] = uint32(id)
	}
	return &DB{c: r.db, cfs: names, ids: ids}, nil
}

func listColumnFamilies(dir string) ([]string, error) {
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var n C.int
	var l C.size_t
	var cerr *C.char
	buf := C.ms_list_cfs(cdir, &n, &l, &cerr)
	if cerr != nil {
		return nil, takeError(cerr)
	}
	defer C.free(unsafe.Pointer(buf))
	joined := C.GoStringN(buf, C.int(l))
	names := strings.Split(strings.TrimSuffix(joined, "\x00"), "\x00")
	if int(n) == 0 {
		names = nil
	}
	return names, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ColumnFamilies returns the names of the open column families in handle order.
func (db *DB) ColumnFamilies() []string { return append([]string(nil), db.cfs...) }

// ColumnFamilyID returns the RocksDB id of the column family with handle i,
// the id WriteBatch operations name it by.
func (db *DB) ColumnFamilyID(i int) uint32 { return db.ids[i] }

// Close releases the column family handles, the database, its options and
// the block cache.
func (db *DB) Close() {
	if db.c == nil {
		return
	}
	C.ms_close(db.c)
	db.c = nil
}

// Snapshot is a RocksDB snapshot together with read options that use it.
type Snapshot struct {
	c *C.ms_snap
}

// NewSnapshot pins the database's current state.
func (db *DB) NewSnapshot() *Snapshot {
	return &Snapshot{c: C.ms_snap_new(db.c)}
}

// ReleaseSnapshot frees s; it must not be used afterwards.
func (db *DB) ReleaseSnapshot(s *Snapshot) {
	if s.c != nil {
		C.ms_snap_free(db.c, s.c)
		s.c = nil
	}
}

// Get looks key up in column family cf, through snap when it is not nil.
// The value is copied into buf when it fits (the result then aliases buf);
// otherwise into a new slice of exactly its length. found is false when the
// key does not exist.
func (db *DB) Get(cf int, snap *Snapshot, key, buf []byte) (value []byte, found bool, err error) {
	var ro *C.rocksdb_readoptions_t
	if snap != nil {
		ro = snap.c.ro
	}
	r := C.ms_get(db.c, C.int(cf), ro, bytesPtr(key), C.size_t(len(key)), bytesPtr(buf), C.size_t(len(buf)))
	switch r.status {
	case C.MS_GET_FOUND:
		return buf[:r.len], true, nil
	case C.MS_GET_NOT_FOUND:
		return nil, false, nil
	case C.MS_GET_TOO_BIG:
		// Rare: a value larger than the caller's buffer. It stays pinned in
		// RocksDB until this second call copies it out.
		v := make([]byte, int(r.len))
		C.ms_pinned_copy(r.pinned, bytesPtr(v))
		return v, true, nil
	}
	return nil, false, takeError(r.err)
}

// Checkpoint writes an openable copy of the database into dir (which must
// not exist), hard-linking SST files where it can.
func (db *DB) Checkpoint(dir string) error {
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	if e := C.ms_checkpoint(db.c, cdir); e != nil {
		return takeError(e)
	}
	return nil
}

// ApproximateSize estimates the bytes of keys in [start, end) of cf; a
// nil end means up to the last key. Both SST files and memtables count.
func (db *DB) ApproximateSize(cf int, start, end []byte) (uint64, error) {
	r := C.ms_approx_size(db.c, C.int(cf), bytesPtr(start), C.size_t(len(start)),
		bytesPtr(end), C.size_t(len(end)), cbool(end != nil))
	if r.err != nil {
		return 0, takeError(r.err)
	}
	return uint64(r.size), nil
}

// Compact compacts [start, end) of cf (nil: unbounded on that side). It
// returns when the compaction is done; concurrent writes are not blocked.
func (db *DB) Compact(cf int, start, end []byte) {
	C.ms_compact(db.c, C.int(cf), bytesPtr(start), C.size_t(len(start)), cbool(start != nil),
		bytesPtr(end), C.size_t(len(end)), cbool(end != nil))
}

// StopCompactions aborts manual compactions in progress (their Compact
// calls return early) and turns later ones into no-ops. Safe to call
// concurrently with other methods; meant for just before Close.
func (db *DB) StopCompactions() { C.ms_stop_compactions(db.c) }

// Flush writes every column family's memtable to SST files and waits.
func (db *DB) Flush() error {
	if e := C.ms_flush(db.c); e != nil {
		return takeError(e)
	}
	return nil
}

// PropertyInt reads an integer property (e.g. "rocksdb.estimate-num-keys")
// of column family cf.
func (db *DB) PropertyInt(cf int, name string) (uint64, bool) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var v C.uint64_t
	if C.ms_property_int(db.c, C.int(cf), cname, &v) != 0 {
		return 0, false
	}
	return uint64(v), true
}

// bytesPtr returns a C view of b's first byte, or nil for an empty slice.
// NB: C reads or writes it only during the call it is passed to.
func bytesPtr(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Code classifies a RocksDB status by the prefix of its message (the C API
// reports errors only as Status::ToString() text).
type Code int

const (
	CodeUnknown Code = iota
	CodeNotFound
	CodeCorruption
	CodeNotSupported
	CodeInvalidArgument
	CodeIOError
	CodeBusy
	CodeIncomplete
	CodeShutdown
	CodeAborted
)

var codePrefixes = []struct {
	prefix string
	code   Code
}{
	{"NotFound: ", CodeNotFound},
	{"Corruption: ", CodeCorruption},
	{"Not implemented: ", CodeNotSupported},
	{"Invalid argument: ", CodeInvalidArgument},
	{"IO error: ", CodeIOError},
	{"Resource busy: ", CodeBusy},
	{"Result incomplete: ", CodeIncomplete},
	{"Shutdown in progress: ", CodeShutdown},
	{"Operation aborted: ", CodeAborted},
}

// Error is a RocksDB error: its status class and its one-line message.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Locked reports whether the error is RocksDB failing to take the LOCK file
// of its directory: another DB in this process or another process has it.
func (e *Error) Locked() bool {
	if e.Code != CodeIOError {
		return false
	}
	m := strings.ToLower(e.Msg)
	return strings.Contains(m, "lock file") || strings.Contains(m, "lock hold") ||
		strings.Contains(m, "/lock:") || strings.Contains(m, "no locks available")
}

// NoSpace reports whether the error is the disk being full.
func (e *Error) NoSpace() bool {
	return e.Code == CodeIOError && strings.Contains(e.Msg, "No space left on device")
}

// newError classifies msg and folds it onto one line.
func newError(msg string) *Error {
	msg = strings.Join(strings.Fields(msg), " ")
	code := CodeUnknown
	for _, p := range codePrefixes {
		if strings.HasPrefix(msg, p.prefix) {
			code = p.code
			break
		}
	}
	return &Error{Code: code, Msg: msg}
}

// takeError converts and frees a malloc'd C error string.
func takeError(e *C.char) error {
	msg := C.GoString(e)
	C.free(unsafe.Pointer(e))
	return newError(msg)
}

// mmapThreshold: C allocations this large or larger that glibc's arenas
// cannot serve from memory they already hold get a mapping of their own,
// returned to the OS when freed, instead of growing an arena.
//
// glibc starts with 128 KiB and raises the threshold to the size of any
// mapped block that is freed, up to 32 MiB. RocksDB frees a memtable's 8
// MiB arena blocks at every flush, so after the first flush every block up
// to 8 MiB came from glibc's arenas, which keep freed memory: the memtables'
// blocks and a large batch's megabyte chunks (spill.cc) stayed in RSS after
// they were freed. Measured with etcdctl check perf --load=l (300,000 keys,
// then one DeleteRange of all of them): RSS peaked at 904-909 MB and was
// 695-772 MB when it returned, against 768-790 and 496-637 MB with the
// threshold fixed (docs/BENCHMARKS.md, eleventh round). The hot paths allocate no blocks this
// large (scan pages are Go memory), so no mapping is made per request.
const mmapThreshold = 1 << 20

// arenaBlockBytes: memtables allocate in blocks of this size, below
// mmapThreshold, so that glibc serves them from its arenas and a new
// memtable reuses the pages of a flushed one. Left at RocksDB's default (an
// eighth of the memtable, 4 MiB here) every block got a mapping of its own,
// faulted in a page at a time: 0.8-1 minor page fault per put and 3% of the
// member's CPU under etcdctl check perf (docs/BENCHMARKS.md, fourteenth
// round). What the arenas keep is handed back after a large batch
// (ReleaseFreeMemory, a malloc_trim).
const arenaBlockBytes = mmapThreshold / 2

var fixMmapThreshold sync.Once

// fixMmapThresholdOnce sets it, unless the operator chose glibc's threshold
// in the environment, which glibc then already applied.
func fixMmapThresholdOnce() {
	if !mmapThresholdFromEnv() {
		C.ms_fix_mmap_threshold(C.size_t(mmapThreshold))
	}
}

// mmapThresholdFromEnv says whether the environment sets glibc's mmap
// threshold: MALLOC_MMAP_THRESHOLD_, or GLIBC_TUNABLES with
// glibc.malloc.mmap_threshold.
func mmapThresholdFromEnv() bool {
	_, set := os.LookupEnv("MALLOC_MMAP_THRESHOLD_")
	return set || strings.Contains(os.Getenv("GLIBC_TUNABLES"), "mmap_threshold")
}

// mappedAfterFree reports whether, after a block of freed bytes was freed,
// an n-byte C allocation gets a mapping of its own (native_test.go).
func mappedAfterFree(freed, n int) bool {
	return C.ms_mapped_after_free(C.size_t(freed), C.size_t(n)) != 0
}

// TrimMalloc hands the C heap's free memory back to the OS (malloc_trim).
// It walks every malloc arena: call it after large frees, not per request.
func TrimMalloc() { C.ms_malloc_trim() }
