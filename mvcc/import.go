package mvcc

import (
	"errors"
	"fmt"

	"github.com/metastore/metastore/engine"
)

// Importing another store's history
//
// An Importer fills an empty engine with versions whose revisions were
// assigned elsewhere (migrate/ feeds it etcd's bbolt "key" bucket), so that
// a store opened on the engine afterwards holds exactly that history: the
// same create/mod revisions and versions, the same current revision, and
// the same compaction revision, with everything between the compaction and
// the current revision readable and replayable by watches.
//
// It writes what Apply and the compactor would have left behind:
//
//   - every version as a data key, tombstones included;
//   - a change log record for every version at or above the finished
//     compaction revision F. Below F the compactor has already dropped the
//     records (it keeps those at F itself, so a watch from F sees F's
//     events), and the versions left there are the newest of their key at F.
//     NB: etcd 3.7 keeps a tombstone at F in its file (so its watches from
//     F see the delete); MetaStore's compactor drops such a tombstone and
//     keeps only its change record. Imported, the tombstone stays: reads,
//     hashes and watches are the same either way, and the next compaction
//     removes it;
//   - the current, scheduled and finished compaction revisions in Meta.
//
// A compaction scheduled past F (the source was copied mid-compaction)
// stays scheduled: the store's compactor finishes it on Open, walking the
// change records from F on, as it would after a crash.
//
// Versions must come in revision order, (main, sub) strictly increasing,
// which is the order of etcd's key bucket. Writes go out in engine batches
// of about ImportBatchBytes; nothing is visible to a store until Finish has
// written the current revision, and a failed import leaves a partial engine
// that the caller throws away.

// ImportBatchBytes is the size at which an Importer commits its batch.
const ImportBatchBytes = 4 << 20

// ErrImport is wrapped by every rejection of imported data.
var ErrImport = errors.New("mvcc: bad import")

// ImportVersion is one version of a key as the source recorded it.
type ImportVersion struct {
	Key       []byte
	Main, Sub int64 // the version's revision (its mod revision)
	Tombstone bool  // a delete: the other fields below are ignored
	CreateRev int64
	Version   int64
	Lease     int64
	Value     []byte
}

// ImportStats counts what an import wrote.
type ImportStats struct {
	Versions   int64 // data versions written (tombstones included)
	Tombstones int64
	Changes    int64 // change log records written
	Rev        int64 // the current revision
	CompactRev int64 // reads below it fail with ErrCompacted; -1: never compacted
}

// Importer writes imported versions into an engine. It is not safe for
// concurrent use.
type Importer struct {
	eng      engine.Engine
	b        engine.Batch
	finished int64 // versions below it get no change record
	lastMain int64
	lastSub  int64
	mainKeys map[string]struct{} // keys written at lastMain
	stats    ImportStats
	buf      []byte
	done     bool // Finish or Close was called
}

// NewImporter returns an Importer writing into eng, whose Data, ChangeLog
// and mvcc Meta records must all be empty. finishedCompactRev is the
// compaction revision whose physical compaction the source had completed
// (0: none).
func NewImporter(eng engine.Engine, finishedCompactRev int64) (*Importer, error) {
	if finishedCompactRev < 0 {
		return nil, fmt.Errorf("%w: compaction revision %d", ErrImport, finishedCompactRev)
	}
	for _, ks := range []engine.Keyspace{engine.Data, engine.ChangeLog} {
		it := eng.NewIterator(ks, engine.IterOptions{})
		ok := it.First()
		err := it.Err()
		it.Close()
		if err != nil {
			return nil, err
		}
		if ok {
			return nil, fmt.Errorf("%w: the engine's %s keyspace is not empty", ErrImport, ks)
		}
	}
	for _, k := range [][]byte{metaCurrentRev, metaScheduledRev, metaFinishedRev} {
		if _, err := eng.Get(engine.Meta, k); err == nil {
			return nil, fmt.Errorf("%w: the engine already holds %s", ErrImport, k)
		} else if !errors.Is(err, engine.ErrNotFound) {
			return nil, err
		}
	}
	return &Importer{eng: eng, b: eng.NewBatch(), finished: finishedCompactRev,
		mainKeys: make(map[string]struct{})}, nil
}

// Add writes one version. Versions must come in increasing (Main, Sub)
// order, and a key may appear only once per main revision.
func (im *Importer) Add(v ImportVersion) error {
	if im.done {
		return fmt.Errorf("%w: Add after Finish or Close", ErrImport)
	}
	if err := im.check(v); err != nil {
		return err
	}
	im.buf = dataKey(im.buf[:0], v.Key, v.Main)
	n := len(im.buf)
	im.buf = appendVersion(im.buf, version{tombstone: v.Tombstone, create: v.CreateRev, ver: v.Version,
		lease: v.Lease, value: v.Value})
	im.b.Put(engine.Data, im.buf[:n], im.buf[n:])
	im.stats.Versions++
	kind := byte(kindPut)
	if v.Tombstone {
		kind = kindDelete
		im.stats.Tombstones++
	}
	if v.Main >= im.finished {
		im.buf = changeKey(im.buf[:0], v.Main, v.Sub)
		n = len(im.buf)
		im.buf = changeValue(im.buf, kind, v.Key)
		im.b.Put(engine.ChangeLog, im.buf[:n], im.buf[n:])
		im.stats.Changes++
	}
	if im.b.Size() >= ImportBatchBytes {
		if err := im.b.Commit(false); err != nil {
			return err
		}
		im.b.Reset()
	}
	return nil
}

// check validates v against the versions before it.
func (im *Importer) check(v ImportVersion) error {
	switch {
	case len(v.Key) == 0:
		return fmt.Errorf("%w: empty key at revision %d", ErrImport, v.Main)
	case v.Main < 1 || v.Sub < 0:
		return fmt.Errorf("%w: revision (%d, %d) of key %q", ErrImport, v.Main, v.Sub, v.Key)
	case v.Main < im.lastMain || (v.Main == im.lastMain && v.Sub <= im.lastSub):
		return fmt.Errorf("%w: revision (%d, %d) of key %q after (%d, %d): not in revision order",
			ErrImport, v.Main, v.Sub, v.Key, im.lastMain, im.lastSub)
	}
	if !v.Tombstone {
		if v.CreateRev < 1 || v.CreateRev > v.Main || v.Version < 1 {
			return fmt.Errorf("%w: key %q at revision %d has create revision %d, version %d",
				ErrImport, v.Key, v.Main, v.CreateRev, v.Version)
		}
	}
	if v.Main != im.lastMain {
		clear(im.mainKeys)
	}
	if _, dup := im.mainKeys[string(v.Key)]; dup {
		return fmt.Errorf("%w: key %q written twice in revision %d", ErrImport, v.Key, v.Main)
	}
	im.mainKeys[string(v.Key)] = struct{}{}
	im.lastMain, im.lastSub = v.Main, v.Sub
	return nil
}

// Finish writes the revisions and commits the last batch, synced. The
// current revision is the newest imported one, raised to the compaction
// revisions (as etcd does: a compaction can have removed every version up
// to it) and to at least 1 (an empty store's). scheduledCompactRev is the
// compaction the source had asked for (0: none); below the finished one it
// is ignored.
func (im *Importer) Finish(scheduledCompactRev int64) (ImportStats, error) {
	if im.done {
		return ImportStats{}, fmt.Errorf("%w: Finish after Finish or Close", ErrImport)
	}
	im.done = true
	defer im.b.Close()
	scheduled := max(scheduledCompactRev, im.finished)
	rev := max(im.lastMain, scheduled, 1)
	im.b.Put(engine.Meta, metaCurrentRev, encodeInt64(rev))
	im.b.Put(engine.Meta, metaKeyFormat, []byte(keyFormat))
	if scheduled > 0 {
		im.b.Put(engine.Meta, metaScheduledRev, encodeInt64(scheduled))
	}
	if im.finished > 0 {
		im.b.Put(engine.Meta, metaFinishedRev, encodeInt64(im.finished))
	}
	if err := im.b.Commit(true); err != nil {
		return ImportStats{}, err
	}
	im.stats.Rev, im.stats.CompactRev = rev, scheduled
	if scheduled == 0 {
		im.stats.CompactRev = noCompaction // what the store reads: no record
	}
	return im.stats, nil
}

// Close drops an unfinished import's pending batch (what was committed
// before stays: throw the engine away). It is a no-op after Finish.
func (im *Importer) Close() error {
	if im.done {
		return nil
	}
	im.done = true
	return im.b.Close()
}
