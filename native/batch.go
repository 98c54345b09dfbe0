package native

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/binary"
	"math"
)

// A WriteBatch is built in Go memory directly in RocksDB's WriteBatch wire
// format, the format of a WAL record (db/write_batch.cc):
//
//	header:  sequence fixed64 (0; RocksDB assigns it) | count fixed32
//	records: tag u8 | [cf id varint32] | key varstring | [value varstring]
//
// where varstring is a varint32 length and the bytes, and the tag is
//
//	0x01 put, 0x00 delete, 0x0F delete-range (key = start, value = end)
//
// for the default column family, or 0x05, 0x04, 0x0E followed by the column
// family id for the others. RocksDB must keep reading this format across
// versions (it replays old WALs), so encoding it here is safe; it saves the
// per-operation rocksdb_writebatch_put_cf calls, which cost as much as the
// cgo crossings they would replace. DB.Write passes the buffer to C, which
// checks every record and the count, then hands the bytes to
// rocksdb_writebatch_create_from and rocksdb_write: one crossing per batch.
const (
	tagDelete            = 0x00
	tagPut               = 0x01
	tagCFDelete          = 0x04
	tagCFPut             = 0x05
	tagCFDeleteRange     = 0x0E
	tagDeleteRange       = 0x0F
	batchHeaderBytes     = 12
	batchCountOffset     = 8
	maxBatchStringLength = math.MaxUint32
)

// WriteBatchHeaderBytes is the size of an empty WriteBatch encoding.
const WriteBatchHeaderBytes = batchHeaderBytes

// WriteBatch collects operations for DB.Write. Column families are named by
// id (DB.ColumnFamilyID). The zero value is an empty batch.
type WriteBatch struct {
	rep   []byte
	count uint32
}

// NewWriteBatch returns an empty batch that reuses buf's memory.
func NewWriteBatch(buf []byte) WriteBatch {
	var b WriteBatch
	b.rep = buf[:0]
	b.Reset()
	return b
}

// Reset empties the batch, keeping its memory.
func (b *WriteBatch) Reset() {
	b.rep = append(b.rep[:0], make([]byte, batchHeaderBytes)...)
	b.count = 0
}

// Count is the number of operations in the batch.
func (b *WriteBatch) Count() int { return int(b.count) }

// Size is the encoded size in bytes, header included.
func (b *WriteBatch) Size() int {
	if len(b.rep) == 0 {
		return batchHeaderBytes
	}
	return len(b.rep)
}

// Buffer returns the batch's memory for reuse after the batch is dropped.
func (b *WriteBatch) Buffer() []byte { return b.rep[:0] }

// Put records key=value in column family cf.
func (b *WriteBatch) Put(cf uint32, key, value []byte) {
	b.record(tagPut, tagCFPut, cf)
	b.appendString(key)
	b.appendString(value)
}

// Delete records the removal of key from column family cf.
func (b *WriteBatch) Delete(cf uint32, key []byte) {
	b.record(tagDelete, tagCFDelete, cf)
	b.appendString(key)
}

// DeleteRange records the removal of [start, end) from column family cf.
// The caller ensures start < end (RocksDB does not check).
func (b *WriteBatch) DeleteRange(cf uint32, start, end []byte) {
	b.record(tagDeleteRange, tagCFDeleteRange, cf)
	b.appendString(start)
	b.appendString(end)
}

func (b *WriteBatch) record(defaultTag, cfTag byte, cf uint32) {
	if len(b.rep) == 0 {
		b.Reset()
	}
	if b.count == math.MaxUint32 {
		panic("native: write batch holds 2^32-1 operations")
	}
	b.count++
	if cf == 0 {
		b.rep = append(b.rep, defaultTag)
		return
	}
	b.rep = append(b.rep, cfTag)
	b.rep = binary.AppendUvarint(b.rep, uint64(cf))
}

func (b *WriteBatch) appendString(s []byte) {
	if uint64(len(s)) > maxBatchStringLength {
		panic("native: key or value longer than 4 GiB")
	}
	// NB: RocksDB's varint32 is the same LEB128 encoding as Go's uvarint.
	b.rep = binary.AppendUvarint(b.rep, uint64(len(s)))
	b.rep = append(b.rep, s...)
}

// finish stamps the count into the header and returns the encoding.
func (b *WriteBatch) finish() []byte {
	if len(b.rep) == 0 {
		b.Reset()
	}
	binary.LittleEndian.PutUint32(b.rep[batchCountOffset:], b.count)
	return b.rep
}

// Write applies the batch atomically in one cgo call. With sync the WAL is
// fsynced before Write returns (unless Options.DisableFsync). C reads the
// batch's memory only during the call. An empty batch writes nothing.
func (db *DB) Write(b *WriteBatch, sync bool) error {
	if b.count == 0 {
		return nil
	}
	rep := b.finish()
	if e := C.ms_write(db.c, bytesPtr(rep), C.size_t(len(rep)), cbool(sync)); e != nil {
		return takeError(e)
	}
	return nil
}

// BuildBatch does everything Write does except writing: one cgo call that
// checks the batch and builds the rocksdb_writebatch_t, which is dropped.
// It returns RocksDB's count of the batch. Benchmarks use it to time the
// crossing without RocksDB's WAL and memtable work.
func (db *DB) BuildBatch(b *WriteBatch) (int, error) {
	rep := b.finish()
	n := C.ms_build_batch(db.c, bytesPtr(rep), C.size_t(len(rep)))
	if n < 0 {
		return 0, newError(badBatch)
	}
	return int(n), nil
}

const badBatch = "Invalid argument: malformed write batch"

// Data returns the batch's encoding with its count stamped in, byte for
// byte what RocksDB's WriteBatch::Data() holds for the same operations. It
// aliases the batch's memory.
func (b *WriteBatch) Data() []byte { return b.finish() }
