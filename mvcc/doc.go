// Package mvcc implements etcd's multi-version keyspace on any engine.Engine:
// revisions, per-key create/mod revision, version and lease, Range with every
// etcd option, Put, DeleteRange, Txn with compares and nested txns, Compact,
// Hash/HashKV and a revision-ordered change feed for watch replay.
//
// # Storage
//
// Versions are stored by user key, then revision newest first (see keys.go),
// so the latest version is one seek and no in-memory key index is needed:
// memory stays flat as the key count grows. A change log keyspace records
// (revision, sub) -> (kind, key) for every write; it drives watch replay and
// compaction. Compaction deletes superseded versions in bounded batches from
// a background goroutine, never holding a lock that writers need.
//
// # Reads and writes
//
// Writes happen only through an Apply (see apply.go), which the server's
// single apply goroutine opens for a slice of committed raft entries: every
// request in the slice is applied into one engine.IndexedBatch, later
// requests read the writes of earlier ones, and Commit writes the batch (and
// whatever the caller added to it, such as the raft applied index) in one
// atomic engine commit. The new revision becomes visible to readers only
// after that commit.
//
// Reads (Range) need no lock: they read the current revision, open an
// engine iterator (a point-in-time view) and ignore versions newer than the
// read revision. Because a read at revision R only needs the newest version
// at or below R, and compaction only removes versions superseded at or below
// the compaction revision, a reader checks after opening its iterator that
// compaction has not been scheduled past R.
//
// # Revisions
//
// As in etcd, an empty store is at revision 1; each write request or txn
// that changes anything takes the next main revision, and the operations of
// one txn take sub revisions 0, 1, 2, ... of it.
package mvcc
