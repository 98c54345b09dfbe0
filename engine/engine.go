package engine

import "errors"

// Keyspace names one of the separate key ranges of an engine. In RocksDB each
// is a column family; in memory each is its own tree.
type Keyspace uint8

const (
	// Data holds the MVCC key versions (see mvcc/ for the encoding).
	Data Keyspace = iota
	// ChangeLog holds the revision-ordered change feed (watch replay, compaction).
	ChangeLog
	// RaftLog holds raft entries, HardState, ConfState and snapshot metadata.
	RaftLog
	// Meta holds small bookkeeping records: applied index, consistent index,
	// compaction progress, cluster membership, auth, leases.
	Meta

	// NumKeyspaces is the number of keyspaces; valid keyspaces are below it.
	NumKeyspaces
)

// String returns the keyspace's name, which is also its RocksDB column family name.
func (k Keyspace) String() string {
	switch k {
	case Data:
		return "data"
	case ChangeLog:
		return "changelog"
	case RaftLog:
		return "raftlog"
	case Meta:
		return "meta"
	}
	return "unknown"
}

var (
	// ErrNotFound is returned by Get when the key does not exist.
	ErrNotFound = errors.New("engine: key not found")
	// ErrClosed is returned by operations on a closed engine, batch or snapshot.
	ErrClosed = errors.New("engine: closed")
	// ErrLocked is returned by Open when another process holds the data directory.
	ErrLocked = errors.New("engine: data directory is locked by another process")
	// ErrCorrupt is returned by Open when the data directory cannot be read as an engine.
	ErrCorrupt = errors.New("engine: data directory is corrupt")
	// ErrBadKeyspace is returned for a keyspace number outside [0, NumKeyspaces).
	ErrBadKeyspace = errors.New("engine: unknown keyspace")
)

// Reader is the read side shared by an Engine, a Snapshot and an IndexedBatch.
type Reader interface {
	// Get returns a copy of the value stored under key, or ErrNotFound.
	Get(ks Keyspace, key []byte) ([]byte, error)
	// NewIterator returns an iterator over ks within opts' bounds. It is not
	// positioned: call First or Seek before Key/Value.
	NewIterator(ks Keyspace, opts IterOptions) Iterator
}

// Engine is a storage engine. All methods are safe for concurrent use.
type Engine interface {
	Reader
	// NewBatch returns an empty write batch.
	NewBatch() Batch
	// NewSnapshot returns a consistent point-in-time view.
	NewSnapshot() Snapshot
	// ApproximateSize estimates the bytes used by keys in [start, end) of ks
	// (nil end means to the end of the keyspace).
	ApproximateSize(ks Keyspace, start, end []byte) (uint64, error)
	// DiskSize returns the bytes the engine occupies (files on disk for a
	// durable engine, live data for an in-memory one).
	DiskSize() (uint64, error)
	// Checkpoint writes a consistent, openable copy of the whole engine into
	// dir, which must not exist yet.
	Checkpoint(dir string) error
	// Compact asks the engine to reclaim space in [start, end) of ks (nil end:
	// to the end). It must not block concurrent reads or writes.
	Compact(ks Keyspace, start, end []byte) error
	// Name is "rocksdb" or "memory".
	Name() string
	// Close releases the engine. Outstanding iterators and snapshots must be
	// closed first.
	Close() error
}

// Batch collects writes that commit atomically. A Batch is not safe for
// concurrent use. The key and value slices are copied by Put/Delete, so the
// caller may reuse them at once.
type Batch interface {
	Put(ks Keyspace, key, value []byte)
	Delete(ks Keyspace, key []byte)
	// DeleteRange removes every key in [start, end) of ks.
	DeleteRange(ks Keyspace, start, end []byte)
	// Count is the number of operations in the batch.
	Count() int
	// Size is the approximate number of bytes the batch holds.
	Size() int
	// Commit applies the batch atomically; with sync it returns after the
	// data is durable. The batch may be Reset and reused after Commit.
	Commit(sync bool) error
	// Reset empties the batch for reuse.
	Reset()
	Close() error
}

// Snapshot is a consistent point-in-time view of the whole engine.
type Snapshot interface {
	Reader
	Close() error
}

// IterOptions bounds an iteration: keys k with Lower <= k < Upper (nil means
// unbounded). Reverse iterates from the largest key down.
type IterOptions struct {
	Lower, Upper []byte
	Reverse      bool
	// SameSuffixedKey is a hint for the Data keyspace, where every key ends
	// in an 8-byte suffix (mvcc's revision): the caller promises that all
	// keys in [Lower, Upper) and every Seek target share all their bytes
	// but those last 8 (the versions of one mvcc key), and positions the
	// iterator with Seek only. An engine may then skip whole files and
	// memtables by a bloom filter over that prefix (RocksDB's prefix
	// mode); what the iterator returns is the same.
	//
	// Without Upper, each Seek target sets the prefix: the iterator
	// returns the first key at or after the target as usual when that key
	// has the target's prefix; past the last key with that prefix it may
	// stop or go on to other keys. Callers compare the prefix themselves
	// (IndexedBatch.SeekVersion reuses one such iterator for many keys).
	SameSuffixedKey bool
}

// Iterator walks keys in one direction (ascending, or descending when
// IterOptions.Reverse is set) within its bounds.
//
// Positioning methods return whether the iterator is at a valid entry.
type Iterator interface {
	// First moves to the first key in iteration order (the smallest, or with
	// Reverse the largest, within bounds).
	First() bool
	// Seek moves to the first key >= key (ascending) or, with Reverse, to the
	// last key <= key.
	Seek(key []byte) bool
	// Next moves one key in iteration order.
	Next() bool
	Valid() bool
	// Key and Value are valid until the next positioning call or Close.
	Key() []byte
	Value() []byte
	// Err reports an I/O or corruption error that ended iteration.
	Err() error
	Close() error
}
