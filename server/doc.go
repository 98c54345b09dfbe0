// Package server is MetaStore's sequencer: it turns client requests into
// raft proposals, waits for them to be applied, and answers; it applies
// committed entries to the state machine (mvcc) as one engine batch per
// slice; and it serves reads at a linearizable point (ReadIndex) or locally
// (serializable). It holds no business logic: validation and semantics live
// in mvcc (and lease/auth), consensus in raft.
//
// # Put path
//
//  1. A front end validates the request and calls Put.
//  2. Put wraps it in an etcdserverpb.InternalRaftRequest with a request id
//     unique across members (low 16 bits of the member id, then a counter
//     seeded from the clock), registers a waiter under that id, and
//     proposes the marshalled request.
//  3. raft persists the entry with one synced batch per Ready (group
//     commit), replicates it, and hands committed entries to Apply.
//  4. Apply opens one mvcc.Apply for the whole slice, applies each request,
//     writes the applied index into the same batch and commits it once.
//  5. After the commit, each waiter gets its response; the front end fills
//     nothing itself: the header (cluster id, member id, revision, raft
//     term) is set here.
//
// # Engines
//
// With the RocksDB engine one RocksDB instance under data-dir/db holds the
// state and the raft log (in its own column family). State batches are
// committed without fsync: the raft log's synced batches share the same
// write-ahead log, so a crash can lose only state that the log replays.
// With the memory engine the state lives in RAM (engine/memory) and the raft
// log in a small RocksDB under data-dir/raft; the state is checkpointed to
// data-dir/state every SnapshotCount/2 entries, and DurableIndex tells raft
// not to compact the log past the last checkpoint, so a restart loads the
// checkpoint and replays the log.
package server
