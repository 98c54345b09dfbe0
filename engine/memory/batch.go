package memory

import (
	"bytes"

	"github.com/tidwall/btree"

	"github.com/metastore/metastore/engine"
)

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opDeleteRange
)

// op is one recorded write. For opDeleteRange, key is the start and value the
// end of the range.
type op struct {
	kind  opKind
	ks    engine.Keyspace
	key   []byte
	value []byte
}

// opOverhead is what Size charges per operation on top of its bytes, roughly
// what a RocksDB write batch record costs (tag, keyspace, two varints).
const opOverhead = 8

// batch records writes and applies them under the DB's writer lock.
//
// Put copies key and value into ONE fresh allocation that the tree later
// keeps as the item, so a put costs one allocation and one copy end to end.
// The allocation is never reused by the batch (Reset drops it), because after
// Commit the tree owns it.
type batch struct {
	db     *DB
	ops    []op
	size   int
	err    error // first bad keyspace; Commit returns it and applies nothing
	closed bool
}

func (b *batch) record(kind opKind, ks engine.Keyspace, key, value []byte) {
	if err := checkKeyspace(ks); err != nil {
		if b.err == nil {
			b.err = err
		}
		return
	}
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	b.ops = append(b.ops, op{
		kind:  kind,
		ks:    ks,
		key:   buf[:len(key):len(key)],
		value: buf[len(key):],
	})
	b.size += len(buf) + opOverhead
}

// Put records a write of value under key.
func (b *batch) Put(ks engine.Keyspace, key, value []byte) { b.record(opPut, ks, key, value) }

// Delete records the removal of key.
func (b *batch) Delete(ks engine.Keyspace, key []byte) { b.record(opDelete, ks, key, nil) }

// DeleteRange records the removal of every key in [start, end).
func (b *batch) DeleteRange(ks engine.Keyspace, start, end []byte) {
	b.record(opDeleteRange, ks, start, end)
}

// Count returns the number of recorded operations; an operation on an invalid
// keyspace is not counted (it poisons the batch instead).
func (b *batch) Count() int { return len(b.ops) }

// Size returns the bytes recorded plus a small per-operation overhead.
func (b *batch) Size() int { return b.size }

// Commit applies every recorded operation atomically. sync is ignored: the
// memory engine has nothing to make durable.
func (b *batch) Commit(sync bool) error {
	if b.closed {
		return engine.ErrClosed
	}
	if b.err != nil {
		return b.err
	}
	return b.db.apply(b.ops)
}

// Reset empties the batch, clearing any bad-keyspace error.
func (b *batch) Reset() {
	clear(b.ops) // drop references so committed-over values can be collected
	b.ops = b.ops[:0]
	b.size = 0
	b.err = nil
}

// Close releases the batch; Close is idempotent.
func (b *batch) Close() error {
	b.Reset()
	b.ops = nil
	b.closed = true
	return nil
}

// apply runs ops against the writer trees and publishes the result.
func (db *DB) apply(ops []op) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed.Load() {
		return engine.ErrClosed
	}
	if len(ops) == 0 {
		return nil
	}
	var touched uint64
	// Batches are usually clustered (consecutive raft log indexes, one
	// revision's keys), so remembering the last path per keyspace skips most
	// of each descent's binary searches.
	var hints [engine.NumKeyspaces]btree.PathHint
	for i := range ops {
		o := &ops[i]
		touched |= 1 << uint(o.ks)
		w := db.mu.w[o.ks]
		switch o.kind {
		case opPut:
			prev, replaced := w.SetHint(item{key: o.key, value: o.value}, &hints[o.ks])
			if replaced {
				db.mu.bytes[o.ks] -= int64(len(prev.key) + len(prev.value))
			}
			db.mu.bytes[o.ks] += int64(len(o.key) + len(o.value))
		case opDelete:
			if prev, ok := w.DeleteHint(item{key: o.key}, &hints[o.ks]); ok {
				db.mu.bytes[o.ks] -= int64(len(prev.key) + len(prev.value))
			}
		case opDeleteRange:
			db.deleteRangeLocked(o.ks, o.key, o.value)
		}
	}
	db.publishLocked(touched)
	return nil
}

// deleteRangeLocked removes [start, end) from the writer tree of ks.
// REQUIRES: db.mu held.
func (db *DB) deleteRangeLocked(ks engine.Keyspace, start, end []byte) {
	if bytes.Compare(start, end) >= 0 {
		return
	}
	w := db.mu.w[ks]
	victims := db.mu.scratch[:0]
	w.Ascend(item{key: start}, func(it item) bool {
		if bytes.Compare(it.key, end) >= 0 {
			return false
		}
		victims = append(victims, it)
		return true
	})
	for _, it := range victims {
		w.Delete(it)
		db.mu.bytes[ks] -= int64(len(it.key) + len(it.value))
	}
	clear(victims)
	db.mu.scratch = victims[:0]
}
