package rocksdb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/native"
)

// DB is the RocksDB engine: one column family per engine.Keyspace.
type DB struct {
	dir string
	cfg Config

	// mu guards the lifetime of n. Every call into native holds mu.RLock and
	// first checks closed; Close takes mu.Lock, so it waits for calls in
	// flight and no call can follow it into freed C memory.
	// Lock order: mu, then live.
	mu     sync.RWMutex
	closed bool // guarded by mu
	n      *native.DB
	// cfIDs maps a keyspace to its column family's RocksDB id, which is how
	// write batch records name it.
	cfIDs [engine.NumKeyspaces]uint32

	// live holds the iterators and snapshots not yet closed, so Close can
	// free their C objects before the database (a RocksDB iterator or
	// snapshot outliving its DB is a use-after-free).
	live struct {
		sync.Mutex
		iters map[*iterator]struct{}
		snaps map[*snapshot]struct{}
	}
}

var _ engine.Engine = (*DB)(nil)

// Version returns the version of the RocksDB library compiled in, e.g. "7.8.3".
func Version() string { return native.Version() }

// Open opens the engine in dir, creating the directory, the database and any
// missing column family. A directory held by another open DB (in this or
// another process) fails with an error wrapping engine.ErrLocked; one whose
// files RocksDB cannot read as a database, with engine.ErrCorrupt.
func Open(dir string, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("rocksdb: open %s: %w", dir, err)
	}
	names := make([]string, engine.NumKeyspaces)
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		names[ks] = ks.String()
	}
	n, err := native.Open(dir, cfg.nativeOptions(), names)
	if err != nil {
		return nil, openError(dir, err)
	}
	db := &DB{dir: dir, cfg: cfg, n: n}
	for ks := range db.cfIDs {
		db.cfIDs[ks] = n.ColumnFamilyID(ks)
	}
	db.live.iters = make(map[*iterator]struct{})
	db.live.snaps = make(map[*snapshot]struct{})
	return db, nil
}

// openError maps RocksDB's open failures onto the engine's sentinels, on one
// line that names the directory.
func openError(dir string, err error) error {
	var ne *native.Error
	if !errors.As(err, &ne) {
		return fmt.Errorf("rocksdb: open %s: %w", dir, err)
	}
	switch {
	case ne.Locked():
		return fmt.Errorf("rocksdb: open %s: %w (%s)", dir, engine.ErrLocked, ne.Msg)
	case ne.Code == native.CodeCorruption:
		return fmt.Errorf("rocksdb: open %s: %w (%s)", dir, engine.ErrCorrupt, ne.Msg)
	case ne.Code == native.CodeIOError || ne.Code == native.CodeInvalidArgument || ne.Code == native.CodeNotFound:
		// NB: a CURRENT file that names a missing or unreadable MANIFEST
		// surfaces as an IO error, not as Corruption. If the directory has a
		// CURRENT file, RocksDB's own metadata is what failed to read.
		// Running out of space or permissions are not corruption.
		if _, statErr := os.Stat(filepath.Join(dir, "CURRENT")); statErr == nil && !ne.NoSpace() && !isPermission(ne) {
			return fmt.Errorf("rocksdb: open %s: %w (%s)", dir, engine.ErrCorrupt, ne.Msg)
		}
	}
	return fmt.Errorf("rocksdb: open %s: %w", dir, err)
}

func isPermission(e *native.Error) bool {
	return strings.Contains(strings.ToLower(e.Msg), "permission denied")
}

// Dir returns the directory the engine was opened on.
func (db *DB) Dir() string { return db.dir }

// Name implements engine.Engine.
func (db *DB) Name() string { return "rocksdb" }

// Close frees every iterator and snapshot still open, then the column
// families, the database, its options and the block cache. It is idempotent.
func (db *DB) Close() error {
	// A manual compaction can run for minutes while holding mu.RLock; abort
	// it first so Close does not wait for it.
	if db.acquire() == nil {
		db.n.StopCompactions()
		db.mu.RUnlock()
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	db.live.Lock()
	for it := range db.live.iters {
		it.release()
	}
	for s := range db.live.snaps {
		s.release()
	}
	db.live.iters, db.live.snaps = nil, nil
	db.live.Unlock()
	db.n.Close()
	return nil
}

// acquire takes mu.RLock for a call into native. It fails, without holding
// the lock, when the engine is closed.
func (db *DB) acquire() error {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return engine.ErrClosed
	}
	return nil
}

func checkKeyspace(ks engine.Keyspace) error {
	if ks >= engine.NumKeyspaces {
		return fmt.Errorf("%w: %d", engine.ErrBadKeyspace, ks)
	}
	return nil
}

// Get implements engine.Reader.
func (db *DB) Get(ks engine.Keyspace, key []byte) ([]byte, error) {
	return db.get(ks, nil, key)
}

// getBufs holds scratch buffers for Get: C copies a value into one in the
// same cgo call as the lookup, then Go copies it out at its exact length.
var getBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// get looks key up, through s when it is not nil.
func (db *DB) get(ks engine.Keyspace, s *snapshot, key []byte) ([]byte, error) {
	if err := checkKeyspace(ks); err != nil {
		return nil, err
	}
	if err := db.acquire(); err != nil {
		return nil, err
	}
	var ns *native.Snapshot
	if s != nil {
		if ns = s.n; ns == nil {
			db.mu.RUnlock()
			return nil, engine.ErrClosed
		}
	}
	bp := getBufs.Get().(*[]byte)
	v, found, err := db.n.Get(int(ks), ns, key, *bp)
	db.mu.RUnlock()
	if found && len(v) <= len(*bp) {
		// v aliases the scratch buffer.
		out := make([]byte, len(v))
		copy(out, v)
		v = out
	}
	getBufs.Put(bp)
	if err != nil {
		return nil, fmt.Errorf("rocksdb: get from %s: %w", ks, err)
	}
	if !found {
		return nil, engine.ErrNotFound
	}
	return v, nil
}

// NewIterator implements engine.Reader.
func (db *DB) NewIterator(ks engine.Keyspace, opts engine.IterOptions) engine.Iterator {
	return db.newIterator(ks, nil, opts)
}

// NewBatch implements engine.Engine.
func (db *DB) NewBatch() engine.Batch { return newBatch(db) }

// NewSnapshot implements engine.Engine.
func (db *DB) NewSnapshot() engine.Snapshot { return db.newSnapshot() }

// ApproximateSize implements engine.Engine. It counts SST files and
// memtables (DB::GetApproximateSizes with include_memtables).
func (db *DB) ApproximateSize(ks engine.Keyspace, start, end []byte) (uint64, error) {
	if err := checkKeyspace(ks); err != nil {
		return 0, err
	}
	if err := db.acquire(); err != nil {
		return 0, err
	}
	defer db.mu.RUnlock()
	n, err := db.n.ApproximateSize(int(ks), start, end)
	if err != nil {
		return 0, fmt.Errorf("rocksdb: approximate size of %s: %w", ks, err)
	}
	return n, nil
}

// DiskSize implements engine.Engine: the total size of the regular files
// under the engine's directory (SST files, WAL, MANIFEST, OPTIONS and info
// LOG files), what `du --apparent-size` would count. It costs one stat per
// file, so callers on a hot path should cache it.
func (db *DB) DiskSize() (uint64, error) {
	if err := db.acquire(); err != nil {
		return 0, err
	}
	defer db.mu.RUnlock()
	var total uint64
	err := filepath.WalkDir(db.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a file RocksDB deleted while we walked
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		total += uint64(info.Size())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rocksdb: disk size of %s: %w", db.dir, err)
	}
	return total, nil
}

// Checkpoint implements engine.Engine with a RocksDB checkpoint: memtables
// are flushed, SST files hard-linked (copied across file systems), and the
// MANIFEST, OPTIONS and WAL copied. dir must not exist.
func (db *DB) Checkpoint(dir string) error {
	if err := db.acquire(); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("rocksdb: checkpoint into %s: %w", dir, fs.ErrExist)
	}
	if err := db.n.Checkpoint(dir); err != nil {
		return fmt.Errorf("rocksdb: checkpoint into %s: %w", dir, err)
	}
	return nil
}

// Compact implements engine.Engine. The manual compaction is not exclusive
// (automatic compactions keep running, so writes never stall behind it) and
// rewrites the bottommost level, so deleted data really frees space. It
// returns when the compaction is done, or early if Close aborts it.
func (db *DB) Compact(ks engine.Keyspace, start, end []byte) error {
	if err := checkKeyspace(ks); err != nil {
		return err
	}
	if err := db.acquire(); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	db.n.Compact(int(ks), start, end)
	return nil
}

// Flush writes all memtables to SST files and waits; tests and tools use it.
func (db *DB) Flush() error {
	if err := db.acquire(); err != nil {
		return err
	}
	defer db.mu.RUnlock()
	if err := db.n.Flush(); err != nil {
		return fmt.Errorf("rocksdb: flush: %w", err)
	}
	return nil
}

// Property returns an integer RocksDB property of ks's column family, e.g.
// "rocksdb.estimate-num-keys" or "rocksdb.total-sst-files-size".
func (db *DB) Property(ks engine.Keyspace, name string) (uint64, error) {
	if err := checkKeyspace(ks); err != nil {
		return 0, err
	}
	if err := db.acquire(); err != nil {
		return 0, err
	}
	defer db.mu.RUnlock()
	v, ok := db.n.PropertyInt(int(ks), name)
	if !ok {
		return 0, fmt.Errorf("rocksdb: unknown integer property %q", name)
	}
	return v, nil
}

// ReleaseFreeMemory returns memory RocksDB has freed (a flushed memtable,
// a large batch's copy) from the C heap to the OS; glibc keeps it in its
// arenas otherwise.
func (db *DB) ReleaseFreeMemory() { native.TrimMalloc() }
