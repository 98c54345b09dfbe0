package memory

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tidwall/btree"

	"github.com/metastore/metastore/engine"
)

// item is one key/value pair in a keyspace tree. key and value share one
// allocation made when the pair was written; both are immutable once the item
// is in a tree, because published trees share nodes with later versions.
type item struct {
	key, value []byte
}

func lessItem(a, b item) bool { return bytes.Compare(a.key, b.key) < 0 }

type tree = btree.BTreeG[item]

// NB: trees are created without the btree package's internal RWMutex. Every
// tree is either private to the writer (DB.mu.w) or published and never
// mutated again, so no lock is needed; with the internal lock an open iterator
// would hold a read lock on its tree for its whole life.
func newTree() *tree {
	return btree.NewBTreeGOptions(lessItem, btree.Options{NoLocks: true})
}

// state is one published, immutable version of the whole engine. Readers load
// it with one atomic pointer read; a Snapshot or Iterator simply keeps it.
type state struct {
	trees [engine.NumKeyspaces]*tree
	// bytes is the sum of len(key)+len(value) over each keyspace.
	bytes [engine.NumKeyspaces]int64
}

// DB is an ordered in-memory engine. Each keyspace is a copy-on-write B-tree.
//
// Concurrency design: a committing writer holds mu, applies the batch to its
// private trees (mu.w), then publishes an O(1) copy-on-write clone of every
// touched tree as a new *state with one atomic store. Readers never take a
// lock: they load the current state and read it. Because the whole batch is
// published in a single store, readers see all of a batch or none of it, even
// across keyspaces. The price is that the first write to a tree node after a
// publication copies that node's root path.
type DB struct {
	dir    string
	cur    atomic.Pointer[state]
	closed atomic.Bool

	// pmu serialises Persist; persisted is what the state directory of the
	// last Persist (or Open) holds, nil when unknown (persist.go).
	pmu       sync.Mutex
	persisted *persisted

	// mu serialises writers (Commit, Close). Lock order: pmu before mu.
	mu struct {
		sync.Mutex
		// w are the writer's private trees; published trees are clones.
		w       [engine.NumKeyspaces]*tree
		bytes   [engine.NumKeyspaces]int64
		scratch []item // DeleteRange victims, reused
	}
}

var _ engine.Engine = (*DB)(nil)

// Open returns an in-memory engine. With dir == "" it starts empty and lives
// purely in RAM. Otherwise, if dir holds a checkpoint file (CheckpointFile)
// written by Checkpoint or Persist, the engine starts from its contents and
// then Persist's deltas, in order; a file that fails its checksum or cannot
// be parsed, or a missing delta, yields an error wrapping engine.ErrCorrupt.
// A missing dir or checkpoint file means an empty engine. If dir is missing
// but dir.old exists (Persist swapping in a new base was interrupted),
// dir.old is renamed back to dir first; apart from that the memory engine
// writes to dir only in Persist.
func Open(dir string) (*DB, error) {
	db := &DB{dir: dir}
	var trees [engine.NumKeyspaces]*tree
	var sizes [engine.NumKeyspaces]int64
	var p *persisted
	if dir != "" {
		var err error
		if p, err = loadStateDir(dir, &trees, &sizes); err != nil {
			return nil, err
		}
	}
	for ks := range trees {
		if trees[ks] == nil {
			trees[ks] = newTree()
		}
	}
	db.mu.w = trees
	db.mu.bytes = sizes
	db.publishLocked(^uint64(0))
	if p != nil {
		p.st = db.cur.Load()
		db.persisted = p
	}
	return db, nil
}

// publishLocked publishes clones of the writer trees whose bit is set in
// touched, keeping the previously published trees for the others.
// REQUIRES: db.mu held (or db not yet shared).
func (db *DB) publishLocked(touched uint64) {
	st := new(state)
	if old := db.cur.Load(); old != nil {
		*st = *old
	}
	for ks := range db.mu.w {
		if touched&(1<<uint(ks)) != 0 {
			// Copy re-stamps mu.w[ks] so its next write copies shared nodes
			// instead of mutating what readers see.
			st.trees[ks] = db.mu.w[ks].Copy()
		}
	}
	st.bytes = db.mu.bytes
	db.cur.Store(st)
}

// Name returns "memory".
func (db *DB) Name() string { return "memory" }

// Dir returns the directory given to Open ("" for a RAM-only engine).
func (db *DB) Dir() string { return db.dir }

func checkKeyspace(ks engine.Keyspace) error {
	if ks >= engine.NumKeyspaces {
		return fmt.Errorf("%w: %d", engine.ErrBadKeyspace, ks)
	}
	return nil
}

// Get returns a copy of the value stored under key.
func (db *DB) Get(ks engine.Keyspace, key []byte) ([]byte, error) {
	if db.closed.Load() {
		return nil, engine.ErrClosed
	}
	return db.cur.Load().get(ks, key)
}

func (st *state) get(ks engine.Keyspace, key []byte) ([]byte, error) {
	if err := checkKeyspace(ks); err != nil {
		return nil, err
	}
	it, ok := st.trees[ks].Get(item{key: key})
	if !ok {
		return nil, engine.ErrNotFound
	}
	v := make([]byte, len(it.value))
	copy(v, it.value)
	return v, nil
}

// NewIterator returns an iterator over the state current at the call; later
// commits are not visible through it.
func (db *DB) NewIterator(ks engine.Keyspace, opts engine.IterOptions) engine.Iterator {
	if db.closed.Load() {
		return &iterator{err: engine.ErrClosed}
	}
	return db.cur.Load().newIterator(ks, opts)
}

// NewBatch returns an empty batch.
func (db *DB) NewBatch() engine.Batch { return &batch{db: db} }

// NewSnapshot returns the current state; it costs one allocation and never
// blocks writers.
func (db *DB) NewSnapshot() engine.Snapshot {
	if db.closed.Load() {
		return &snapshot{closed: true}
	}
	return &snapshot{st: db.cur.Load()}
}

// ApproximateSize returns the exact number of key and value bytes in [start,
// end) of ks. The whole keyspace is O(1); a bounded range is a scan.
func (db *DB) ApproximateSize(ks engine.Keyspace, start, end []byte) (uint64, error) {
	if db.closed.Load() {
		return 0, engine.ErrClosed
	}
	if err := checkKeyspace(ks); err != nil {
		return 0, err
	}
	st := db.cur.Load()
	if start == nil && end == nil {
		return uint64(st.bytes[ks]), nil
	}
	var n uint64
	st.trees[ks].Ascend(item{key: start}, func(it item) bool {
		if end != nil && bytes.Compare(it.key, end) >= 0 {
			return false
		}
		n += uint64(len(it.key) + len(it.value))
		return true
	})
	return n, nil
}

// DiskSize returns the live bytes (keys plus values) in all keyspaces.
func (db *DB) DiskSize() (uint64, error) {
	if db.closed.Load() {
		return 0, engine.ErrClosed
	}
	var n int64
	for _, b := range db.cur.Load().bytes {
		n += b
	}
	return uint64(n), nil
}

// Compact is a no-op: a B-tree holds no garbage to reclaim.
func (db *DB) Compact(ks engine.Keyspace, start, end []byte) error {
	if db.closed.Load() {
		return engine.ErrClosed
	}
	return checkKeyspace(ks)
}

// Close marks the engine closed; later calls return engine.ErrClosed. Close
// is idempotent. Outstanding snapshots and iterators keep working on the
// state they hold.
func (db *DB) Close() error {
	db.mu.Lock()
	db.closed.Store(true)
	db.mu.Unlock()
	return nil
}

// snapshot is a published state held open.
type snapshot struct {
	st     *state
	closed bool
}

func (s *snapshot) Get(ks engine.Keyspace, key []byte) ([]byte, error) {
	if s.closed {
		return nil, engine.ErrClosed
	}
	return s.st.get(ks, key)
}

func (s *snapshot) NewIterator(ks engine.Keyspace, opts engine.IterOptions) engine.Iterator {
	if s.closed {
		return &iterator{err: engine.ErrClosed}
	}
	return s.st.newIterator(ks, opts)
}

func (s *snapshot) Close() error {
	s.closed = true
	s.st = nil
	return nil
}
