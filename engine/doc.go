// Package engine defines the storage contract MetaStore's state machine and raft
// log are written against: ordered byte keys and values in a few separate
// keyspaces, atomic batches committed with or without fsync, point reads,
// bounded forward/reverse iteration, point-in-time snapshots, size estimates
// and on-disk checkpoints.
//
// Two implementations exist: engine/rocksdb (durable, the default; hot paths go
// through the native/ cgo shim so that a batch is one cgo crossing and a scan is
// one crossing per page) and engine/memory (an ordered in-memory tree with
// copy-on-write snapshots). Both pass the same conformance suite in
// engine/enginetest.
//
// Invariants every implementation keeps:
//   - A Batch is applied atomically: after a crash either all or none of it is
//     visible. Commit(sync=true) returns only after the batch is durable.
//   - Keys are compared bytewise (bytes.Compare); keyspaces never see each
//     other's keys.
//   - Slices returned by Get are owned by the caller. Slices returned by
//     Iterator.Key/Value are valid only until the next call on that iterator;
//     copy them to keep them.
//   - An Iterator or Snapshot sees a fixed point in time: writes committed
//     after it was created are not visible through it.
//   - Every Iterator, Snapshot and Batch must be closed; Close is idempotent.
//
// The engine knows nothing about revisions, leases or protobufs: key encoding
// lives in mvcc/, the raft log layout in raft/.
package engine
