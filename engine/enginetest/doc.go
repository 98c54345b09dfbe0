// Package enginetest is the conformance suite every engine.Engine must pass.
//
// An implementation runs it from one test:
//
//	func TestConformance(t *testing.T) {
//		enginetest.Run(t, enginetest.Factory{
//			Open: func(t *testing.T, dir string) engine.Engine {
//				db, err := rocksdb.Open(dir, rocksdb.Options{})
//				if err != nil {
//					t.Fatal(err)
//				}
//				return db
//			},
//			Durable: true,
//		})
//	}
//
// Factory.Open is called with three kinds of directory:
//   - a fresh, existing, empty directory (one per subtest) for a new engine;
//   - a directory the engine's own Checkpoint wrote, to check the copy opens
//     and holds exactly the data at checkpoint time;
//   - when Factory.Durable is set, the directory of an engine the suite has
//     closed, to check synced data survives Close and reopen.
//
// Open must fail the test itself (t.Fatal) if it cannot open. The suite closes
// every engine it opens (Close is required to be idempotent).
//
// Each case is a subtest of t named after what it checks, so a single case
// runs with -run 'TestConformance/Iter'. The suite is sized to finish in a few
// seconds per engine; the concurrency case is meant to run under -race.
//
// Behaviour the suite pins down beyond engine.go's comments:
//   - Seek on a forward iterator goes to the first key >= max(key, Lower); on
//     a reverse iterator to the last key <= key that is < Upper. A Next after
//     the iterator became invalid returns false. A fresh iterator is not Valid.
//   - NewIterator copies IterOptions' bounds: the caller may reuse them at once.
//   - An Iterator is point-in-time: writes committed after NewIterator are not
//     seen, even by an iterator that crosses internal page boundaries after
//     the write.
//   - Invalid keyspace (>= engine.NumKeyspaces): Get, ApproximateSize and
//     Compact return an error wrapping engine.ErrBadKeyspace; NewIterator
//     returns an iterator that is never valid and whose Err wraps
//     engine.ErrBadKeyspace; a Batch write to an invalid keyspace poisons the
//     batch: Commit returns an error wrapping engine.ErrBadKeyspace and applies
//     none of the batch (Reset clears the poison). Nothing panics and no data
//     is lost.
//   - Empty keys and empty (or nil) values are stored; Get of an empty value
//     returns a zero-length slice and a nil error.
//   - DeleteRange(start, end) with start == end deletes nothing.
//   - After Close: Close again returns nil; Get, Commit (of a batch created
//     before or after Close), ApproximateSize, DiskSize, Checkpoint and
//     Compact return engine.ErrClosed; NewIterator returns an iterator that is
//     never valid with Err engine.ErrClosed; a snapshot taken after Close
//     returns engine.ErrClosed from Get. Closed batches and snapshots return
//     engine.ErrClosed from Commit and Get.
//   - Checkpoint into an existing directory fails.
//   - ApproximateSize over a range holding ~1 MiB of incompressible values is
//     at least 256 KiB, and DiskSize grows after writing it.
package enginetest
