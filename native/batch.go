package native

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/binary"
	"math"
	"unsafe"
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
//
// A batch that grows past spillBytes moves its bytes so far to C memory
// (spill.cc), one crossing per spillBytes, and goes on in its Go buffer; at
// the write C appends the rest and moves the whole into RocksDB's
// WriteBatch. So a batch of hundreds of megabytes (a DeleteRange over a
// million keys) is held once, outside the Go heap, instead of in a Go slice
// that is copied at every growth and whose garbage the collector lets pile
// up. Spilled batches must be released (Release or Reset) to free it.
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
	spillBytes           = 1 << 20
)

// WriteBatchHeaderBytes is the size of an empty WriteBatch encoding.
const WriteBatchHeaderBytes = batchHeaderBytes

// WriteBatch collects operations for DB.Write. Column families are named by
// id (DB.ColumnFamilyID). The zero value is an empty batch.
type WriteBatch struct {
	rep   []byte
	count uint32
	// spill holds the batch's first spilled bytes in C memory (nil: none);
	// rep then holds only what came after them.
	spill   *C.ms_spill
	spilled int
	// consumed: a spilled batch was written; its bytes are gone.
	consumed bool
}

// NewWriteBatch returns an empty batch that reuses buf's memory.
func NewWriteBatch(buf []byte) WriteBatch {
	var b WriteBatch
	b.rep = buf[:0]
	b.Reset()
	return b
}

// Reset empties the batch, keeping its Go memory (spilled C memory is
// freed).
func (b *WriteBatch) Reset() {
	b.freeSpill()
	b.rep = append(b.rep[:0], make([]byte, batchHeaderBytes)...)
	b.count = 0
}

// Release frees the batch's C memory, if it spilled, and returns its Go
// buffer for reuse; the batch is empty after it.
func (b *WriteBatch) Release() []byte {
	b.freeSpill()
	buf := b.rep[:0]
	*b = WriteBatch{}
	return buf
}

func (b *WriteBatch) freeSpill() {
	if b.spill != nil {
		C.ms_spill_free(b.spill)
	}
	b.spill, b.spilled, b.consumed = nil, 0, false
}

// Spilled reports whether the batch moved bytes to C memory.
func (b *WriteBatch) Spilled() bool { return b.spill != nil }

// maybeSpill moves the Go buffer's bytes to C memory once it holds
// spillBytes (called after each whole operation).
func (b *WriteBatch) maybeSpill() {
	if len(b.rep) < spillBytes {
		return
	}
	if b.spill == nil {
		b.spill = C.ms_spill_new()
	}
	C.ms_spill_append(b.spill, bytesPtr(b.rep), C.size_t(len(b.rep)))
	b.spilled += len(b.rep)
	b.rep = b.rep[:0]
}

// Count is the number of operations in the batch.
func (b *WriteBatch) Count() int { return int(b.count) }

// Size is the encoded size in bytes, header included.
func (b *WriteBatch) Size() int {
	if len(b.rep) == 0 && b.spill == nil {
		return batchHeaderBytes
	}
	return b.spilled + len(b.rep)
}

// Put records key=value in column family cf.
func (b *WriteBatch) Put(cf uint32, key, value []byte) {
	b.record(tagPut, tagCFPut, cf)
	b.appendString(key)
	b.appendString(value)
	b.maybeSpill()
}

// Delete records the removal of key from column family cf.
func (b *WriteBatch) Delete(cf uint32, key []byte) {
	b.record(tagDelete, tagCFDelete, cf)
	b.appendString(key)
	b.maybeSpill()
}

// DeleteRange records the removal of [start, end) from column family cf.
// The caller ensures start < end (RocksDB does not check).
func (b *WriteBatch) DeleteRange(cf uint32, start, end []byte) {
	b.record(tagDeleteRange, tagCFDeleteRange, cf)
	b.appendString(start)
	b.appendString(end)
	b.maybeSpill()
}

func (b *WriteBatch) record(defaultTag, cfTag byte, cf uint32) {
	if len(b.rep) == 0 && b.spill == nil {
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

// finish stamps the count into the header and returns the encoding of a
// batch that did not spill.
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
	if b.spill != nil {
		if b.consumed {
			return newError(spilledTwice)
		}
		b.consumed = true
		e := C.ms_write_spilled(db.c, b.spill, bytesPtr(b.rep), C.size_t(len(b.rep)), C.uint32_t(b.count), cbool(sync))
		if e != nil {
			return takeError(e)
		}
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
	rep := b.Data()
	n := C.ms_build_batch(db.c, bytesPtr(rep), C.size_t(len(rep)))
	if n < 0 {
		return 0, newError(badBatch)
	}
	return int(n), nil
}

const (
	badBatch     = "Invalid argument: malformed write batch"
	spilledTwice = "Invalid argument: a spilled write batch is written once"
)

// Data returns the batch's encoding with its count stamped in, byte for
// byte what RocksDB's WriteBatch::Data() holds for the same operations. It
// aliases the batch's memory, unless the batch spilled: then it is a copy
// (nil once the batch was written).
func (b *WriteBatch) Data() []byte {
	if b.spill == nil {
		return b.finish()
	}
	if b.consumed {
		return nil
	}
	var n C.size_t
	p := C.ms_spill_data(b.spill, &n)
	out := make([]byte, 0, int(n)+len(b.rep))
	out = append(out, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))...)
	out = append(out, b.rep...)
	binary.LittleEndian.PutUint32(out[batchCountOffset:], b.count)
	return out
}
