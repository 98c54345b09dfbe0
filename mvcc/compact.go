package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/metastore/metastore/engine"
)

// compactor deletes superseded versions in the background.
//
// For a compaction at revision R it walks the change log from its start up
// to R. For each record (rev r, key k) it looks up the newest version of k at
// or below R: when that is newer than r, version r is superseded and goes;
// when it is r itself and a tombstone, it goes too (a deleted key leaves no
// trace at R). Change records below R go; records at R stay so that a watch
// from R still sees R's events. Each batch examines at most
// CompactionBatchLimit records and commits on its own, and the compactor
// pauses CompactionSleepInterval between batches (etcd's
// --compaction-sleep-interval), so writers are never held up for more than
// one small batch and get the disk between batches; the work is idempotent,
// so a crash just makes the next start redo part of it.
type compactor struct {
	s *Store

	mu struct {
		sync.Mutex
		target  int64 // newest compaction revision asked for
		stopped bool
	}
	wake    chan struct{}
	stopc   chan struct{}
	donec   chan struct{}
	changed *sync.Cond // signalled when finishedRev moves or the compactor stops
}

func newCompactor(s *Store) *compactor {
	c := &compactor{s: s, wake: make(chan struct{}, 1), stopc: make(chan struct{}), donec: make(chan struct{})}
	c.mu.target = noCompaction
	c.changed = sync.NewCond(&c.mu)
	go c.run()
	return c
}

func (c *compactor) schedule(rev int64) {
	c.mu.Lock()
	c.mu.target = max(c.mu.target, rev)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *compactor) wait(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.mu.stopped && c.s.finishedRev.Load() < rev {
		c.changed.Wait()
	}
}

func (c *compactor) stop() {
	close(c.stopc)
	<-c.donec
}

func (c *compactor) run() {
	defer close(c.donec)
	defer func() {
		c.mu.Lock()
		c.mu.stopped = true
		c.changed.Broadcast()
		c.mu.Unlock()
	}()
	for {
		select {
		case <-c.stopc:
			return
		case <-c.wake:
		}
		for {
			c.mu.Lock()
			target := c.mu.target
			c.mu.Unlock()
			if target <= c.s.finishedRev.Load() {
				break
			}
			err := c.compact(target)
			if errors.Is(err, errCompactorStopped) {
				return
			}
			if err != nil {
				// A failed engine write on this path is not recoverable here:
				// stop compacting and leave the store readable; the next
				// start resumes from the persisted scheduled revision.
				panic(fmt.Sprintf("mvcc: compaction at %d failed: %v", target, err))
			}
			c.mu.Lock()
			c.changed.Broadcast()
			c.mu.Unlock()
		}
	}
}

// errCompactorStopped ends a compaction cut short by stop; the next start
// resumes it from the persisted scheduled revision.
var errCompactorStopped = errors.New("mvcc: compactor stopped")

// compact runs compaction at rev to completion in bounded batches.
func (c *compactor) compact(rev int64) error {
	limit := c.s.cfg.CompactionBatchLimit
	upper := changeKey(nil, rev+1, 0)
	prevDone := c.s.finishedRev.Load()
	var cursor []byte
	for {
		select {
		case <-c.stopc:
			return errCompactorStopped
		default:
		}
		next, done, err := c.compactBatch(rev, prevDone, cursor, upper, limit)
		if err != nil {
			return err
		}
		if done {
			break
		}
		cursor = next
		if d := c.s.cfg.CompactionSleepInterval; d > 0 {
			select {
			case <-c.stopc:
				return errCompactorStopped
			case <-time.After(d):
			}
		}
	}
	b := c.s.eng.NewBatch()
	defer b.Close()
	b.Put(engine.Meta, metaFinishedRev, encodeInt64(rev))
	if err := b.Commit(false); err != nil {
		return err
	}
	c.s.finishedRev.Store(rev)
	return nil
}

// compactBatch examines up to limit change records from cursor; it returns
// where to continue and whether the walk is complete. prevDone is the
// revision of the last finished compaction.
//
// A record whose version is superseded deletes that version. The record of
// a key's newest version at or below rev also deletes the key's versions at
// or below prevDone that are older than it: those were the newest when an
// earlier compaction ran (so they stayed) and their change records went
// with it, so no record of this walk names them. Without that, a delete
// whose tombstone is compacted away would bring such a version back to
// life. They go in the same batch as the tombstone.
func (c *compactor) compactBatch(rev, prevDone int64, cursor, upper []byte, limit int) (next []byte, done bool, err error) {
	it := c.s.eng.NewIterator(engine.ChangeLog, engine.IterOptions{Lower: cursor, Upper: upper})
	defer it.Close()
	b := c.s.eng.NewBatch()
	defer b.Close()
	n := 0
	var dk []byte
	ok := it.First()
	for ; ok && n < limit; ok = it.Next() {
		main, _, err := splitChangeKey(it.Key())
		if err != nil {
			return nil, false, err
		}
		val := it.Value()
		if len(val) == 0 {
			return nil, false, fmt.Errorf("%w: empty change record", ErrCorruptRecord)
		}
		key := val[1:]
		v, newest, found, err := newestVersion(c.s.eng, key, rev, false)
		if err != nil {
			return nil, false, err
		}
		switch {
		case !found:
		case main < newest:
			dk = dataKey(dk[:0], key, main)
			b.Delete(engine.Data, dk)
		case main == newest:
			if err := c.deleteLeftovers(b, key, min(newest-1, prevDone)); err != nil {
				return nil, false, err
			}
			if v.tombstone {
				dk = dataKey(dk[:0], key, main)
				b.Delete(engine.Data, dk)
			}
		}
		if main < rev {
			b.Delete(engine.ChangeLog, it.Key())
		}
		n++
	}
	if err := it.Err(); err != nil {
		return nil, false, err
	}
	if ok {
		next = bytes.Clone(it.Key())
	}
	if b.Count() > 0 {
		if err := b.Commit(false); err != nil {
			return nil, false, err
		}
	}
	return next, !ok, nil
}

// deleteLeftovers adds to b the deletion of every version of key at or
// below from.
func (c *compactor) deleteLeftovers(b engine.Batch, key []byte, from int64) error {
	if from <= 0 {
		return nil
	}
	prefix := appendEscaped(nil, key)
	it := c.s.eng.NewIterator(engine.Data, engine.IterOptions{Lower: dataKey(nil, key, from), Upper: skipKey(nil, prefix)})
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		b.Delete(engine.Data, it.Key())
	}
	return it.Err()
}

// compactedAway reports whether the version (rev, tombstone) of a key, whose
// newest version at or below compactRev is newestRev, is logically gone
// after a compaction at compactRev. Hashes use it so that they do not depend
// on how far the physical deletion has got.
func compactedAway(rev int64, tombstone bool, newestRev, compactRev int64) bool {
	if rev > compactRev {
		return false
	}
	return rev < newestRev || tombstone
}
