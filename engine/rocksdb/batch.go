package rocksdb

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/native"
)

// batch collects operations in one flat buffer in native's batch format
// (op, column family, key, value per record). Put/Delete only append to Go
// memory; Commit hands the whole buffer to C in one cgo call, which builds
// the rocksdb_writebatch_t and writes it. A batch of 1,000 puts crosses cgo
// once, where a WriteBatch built through grocksdb crosses 1,001 times.
type batch struct {
	db     *DB
	buf    []byte
	count  int
	err    error // sticky: set by a write to an invalid keyspace, cleared by Reset
	closed bool
}

// batchBufs recycles batch buffers; oversized ones are dropped so one huge
// batch does not pin its memory forever.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooledBatchBytes = 1 << 20

func newBatch(db *DB) *batch {
	bp := batchBufs.Get().(*[]byte)
	return &batch{db: db, buf: (*bp)[:0]}
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
	b.buf = native.AppendPut(b.buf, int(ks), key, value)
	b.count++
}

// Delete implements engine.Batch.
func (b *batch) Delete(ks engine.Keyspace, key []byte) {
	if b.closed || !b.check(ks) {
		return
	}
	b.buf = native.AppendDelete(b.buf, int(ks), key)
	b.count++
}

// DeleteRange implements engine.Batch.
func (b *batch) DeleteRange(ks engine.Keyspace, start, end []byte) {
	if b.closed || !b.check(ks) {
		return
	}
	// NB: an empty or inverted range deletes nothing; RocksDB is not asked
	// to store a range tombstone for it (it does not validate start < end).
	if bytes.Compare(start, end) < 0 {
		b.buf = native.AppendDeleteRange(b.buf, int(ks), start, end)
	}
	b.count++
}

// Count implements engine.Batch.
func (b *batch) Count() int { return b.count }

// Size implements engine.Batch: the encoded size, keys and values plus 10
// bytes per operation.
func (b *batch) Size() int { return len(b.buf) }

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
	err := b.db.n.Write(b.buf, sync)
	b.db.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("rocksdb: commit of %d operations: %w", b.count, err)
	}
	return nil
}

// Reset implements engine.Batch.
func (b *batch) Reset() {
	if b.closed {
		return
	}
	if cap(b.buf) > maxPooledBatchBytes {
		b.buf = make([]byte, 0, 16<<10)
	}
	b.buf = b.buf[:0]
	b.count = 0
	b.err = nil
}

// Close implements engine.Batch; the buffer goes back to the pool.
func (b *batch) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if cap(b.buf) <= maxPooledBatchBytes {
		buf := b.buf[:0]
		batchBufs.Put(&buf)
	}
	b.buf = nil
	b.count = 0
	return nil
}
