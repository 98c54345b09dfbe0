package native

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Batch buffer format: a flat sequence of records, each
//
//	op u8 | cf u8 | klen u32 little-endian | key | vlen u32 little-endian | value
//
// Delete records have vlen 0; DeleteRange records carry the range start as
// the key and the (exclusive) end as the value. Write hands the whole buffer
// to C, which replays it into one rocksdb_writebatch_t.
const (
	OpPut         = C.MS_OP_PUT
	OpDelete      = C.MS_OP_DELETE
	OpDeleteRange = C.MS_OP_DELETE_RANGE
)

// RecordOverhead is the number of bytes a batch record adds to its key and value.
const RecordOverhead = 10

// MaxColumnFamilies is the number of column families a batch record can name.
const MaxColumnFamilies = 256

// AppendPut appends a put of key=value in column family cf to buf.
func AppendPut(buf []byte, cf int, key, value []byte) []byte {
	return appendRecord(buf, OpPut, cf, key, value)
}

// AppendDelete appends a delete of key in column family cf to buf.
func AppendDelete(buf []byte, cf int, key []byte) []byte {
	return appendRecord(buf, OpDelete, cf, key, nil)
}

// AppendDeleteRange appends a delete of [start, end) in column family cf to buf.
func AppendDeleteRange(buf []byte, cf int, start, end []byte) []byte {
	return appendRecord(buf, OpDeleteRange, cf, start, end)
}

func appendRecord(buf []byte, op byte, cf int, key, value []byte) []byte {
	if cf < 0 || cf >= MaxColumnFamilies {
		panic(fmt.Sprintf("native: column family index %d out of range", cf))
	}
	if uint64(len(key)) > math.MaxUint32 || uint64(len(value)) > math.MaxUint32 {
		panic("native: key or value longer than 4 GiB")
	}
	buf = append(buf, op, byte(cf))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(key)))
	buf = append(buf, key...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(value)))
	return append(buf, value...)
}

// Write applies every record of buf atomically, in one cgo call. With sync
// the WAL is fsynced before Write returns (unless Options.DisableFsync).
// C only reads buf during the call.
func (db *DB) Write(buf []byte, sync bool) error {
	if len(buf) == 0 {
		return nil
	}
	if e := C.ms_write(db.c, bytesPtr(buf), C.size_t(len(buf)), cbool(sync)); e != nil {
		return takeError(e)
	}
	return nil
}
