package rocksdb

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/native"
)

// batch builds its operations directly in RocksDB's WriteBatch encoding in
// Go memory (native.WriteBatch). Put/Delete only append bytes; Commit hands
// the whole buffer to C in one cgo call, which checks it and writes it. A
// batch of 1,000 puts crosses cgo once, where a WriteBatch built through
// grocksdb crosses 1,001 times and re-encodes every operation in C++.
type batch struct {
	db     *DB
	wb     native.WriteBatch
	noops  int   // empty DeleteRanges: counted, not encoded
	err    error // sticky: set by a write to an invalid keyspace, cleared by Reset
	closed bool
}

// batchBufs recycles batch buffers; oversized ones are dropped so one huge
// batch does not pin its memory forever.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooledBatchBytes = 1 << 20

func newBatch(db *DB) *batch {
	bp := batchBufs.Get().(*[]byte)
	return &batch{db: db, wb: native.NewWriteBatch(*bp)}
}

func (b *batch) check(ks engine.Keyspace) bool {
	if b.err != nil {
		return false
	}
	if err := checkKeyspace(ks); err != nil {
		b.err = fmt.Errorf("rocksdb: batch: %w", err)
		return false
	}
	return true
}

// Put implements engine.Batch.
func (b *batch) Put(ks engine.Keyspace, key, value []byte) {
	if b.closed || !b.check(ks) {
		return
	}
	b.wb.Put(b.db.cfIDs[ks], key, value)
}

// Delete implements engine.Batch.
func (b *batch) Delete(ks engine.Keyspace, key []byte) {
	if b.closed || !b.check(ks) {
		return
	}
	b.wb.Delete(b.db.cfIDs[ks], key)
}

// DeleteRange implements engine.Batch.
func (b *batch) DeleteRange(ks engine.Keyspace, start, end []byte) {
	if b.closed || !b.check(ks) {
		return
	}
	// NB: an empty or inverted range deletes nothing; RocksDB is not asked
	// to store a range tombstone for it (it does not validate start < end).
	// It still counts as an operation of the batch.
	if bytes.Compare(start, end) < 0 {
		b.wb.DeleteRange(b.db.cfIDs[ks], start, end)
	} else {
		b.noops++
	}
}

// Count implements engine.Batch.
func (b *batch) Count() int { return b.wb.Count() + b.noops }

// Size implements engine.Batch: the size of the encoded operations (keys,
// values and 3-4 bytes each), without the 12-byte WriteBatch header.
func (b *batch) Size() int { return b.wb.Size() - native.WriteBatchHeaderBytes }

// Commit implements engine.Batch. The buffer is passed to C by pointer and
// only read during the call.
func (b *batch) Commit(sync bool) error {
	if b.closed {
		return engine.ErrClosed
	}
	if b.err != nil {
		return b.err
	}
	if err := b.db.acquire(); err != nil {
		return err
	}
	err := b.db.n.Write(&b.wb, sync)
	b.db.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("rocksdb: commit of %d operations: %w", b.Count(), err)
	}
	return nil
}

// Reset implements engine.Batch.
func (b *batch) Reset() {
	if b.closed {
		return
	}
	buf := b.wb.Release() // frees what a large batch spilled to C memory
	if cap(buf) > maxPooledBatchBytes {
		buf = make([]byte, 0, 16<<10)
	}
	b.wb = native.NewWriteBatch(buf)
	b.noops = 0
	b.err = nil
}

// Close implements engine.Batch; the buffer goes back to the pool.
func (b *batch) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if buf := b.wb.Release(); cap(buf) <= maxPooledBatchBytes {
		batchBufs.Put(&buf)
	}
	b.noops = 0
	return nil
}
