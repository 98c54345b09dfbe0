// Package memory is an ordered in-memory implementation of engine.Engine.
//
// Each keyspace is a copy-on-write B-tree (github.com/tidwall/btree). A
// committing writer applies its batch to private trees under a mutex and then
// publishes O(1) clones of the touched trees as one immutable state with a
// single atomic pointer store. Consequently:
//   - readers (Get, iterators, snapshots) take no lock and never block or are
//     blocked by writers;
//   - a batch is visible all at once or not at all, across keyspaces;
//   - NewSnapshot and NewIterator just keep the current state, so they are
//     point-in-time at no copying cost.
//
// Durability: nothing is written to disk except by Checkpoint, which stores
// the whole state in one CRC-32C-checksummed file (see CheckpointFile for the
// format), and Persist, which keeps a state directory up to date with such a
// file plus checksummed files of the changes since (persist.go). Open(dir)
// loads what dir holds; Open("") is RAM only. Commit's sync flag is ignored.
//
// Sizes: DiskSize and ApproximateSize report live key plus value bytes.
// Compact is a no-op.
//
// Invalid keyspaces: Get, ApproximateSize and Compact return an error
// wrapping engine.ErrBadKeyspace; NewIterator returns an iterator that is
// never valid and whose Err wraps it; a Batch operation on an invalid
// keyspace is dropped and makes Commit return that error without applying
// any of the batch.
package memory
