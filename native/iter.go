package native

/*
#include "shim.h"
*/
import "C"

import "encoding/binary"

// Page buffer format, written by Iterator.Fill: a sequence of records
//
//	klen u32 little-endian | key | vlen u32 little-endian | value
//
// in iteration order. PageRecord decodes one.

// PageOverhead is the number of bytes a page record adds to its key and value.
const PageOverhead = 8

// Pos says how Fill positions the iterator before filling.
type Pos int

const (
	// PosContinue resumes at the first entry the previous Fill did not return.
	PosContinue Pos = C.MS_POS_CONTINUE
	// PosFirst starts at the first entry in iteration order.
	PosFirst Pos = C.MS_POS_FIRST
	// PosSeek starts at the first key >= the given key (reverse: the last key <= it).
	PosSeek Pos = C.MS_POS_SEEK
)

// PageStatus says what Fill left behind.
type PageStatus int

const (
	// PageMore: the page is full by count or bytes; more entries may follow.
	PageMore PageStatus = C.MS_PAGE_MORE
	// PageEnd: iteration reached its bound; the page holds the last entries.
	PageEnd PageStatus = C.MS_PAGE_END
	// PageNeed: the next entry alone needs Page.Need bytes; nothing was
	// written and the iterator still stands on it. Fill again (PosContinue)
	// with a larger buffer.
	PageNeed PageStatus = C.MS_PAGE_NEED
)

// Page describes one Fill.
type Page struct {
	Status PageStatus
	Count  int // records written
	Used   int // bytes written
	Need   int // with PageNeed
}

// Iterator is a RocksDB iterator over one column family with its bounds.
type Iterator struct {
	c *C.ms_iter
}

// NewIterator returns an iterator over cf restricted to lower <= key < upper
// (nil: unbounded), through snap when it is not nil, walking down when
// reverse. The bounds are copied into C memory. With prefix, the iterator
// is in RocksDB's prefix mode (see Options.PrefixCF): it visits only keys
// sharing the prefix of its first seek target, and skips memtables and
// files whose prefix bloom filter rules that prefix out.
func (db *DB) NewIterator(cf int, snap *Snapshot, lower, upper []byte, reverse, prefix bool) *Iterator {
	var s *C.ms_snap
	if snap != nil {
		s = snap.c
	}
	c := C.ms_iter_new(db.c, C.int(cf), s,
		bytesPtr(lower), C.size_t(len(lower)), cbool(lower != nil),
		bytesPtr(upper), C.size_t(len(upper)), cbool(upper != nil),
		cbool(reverse), cbool(prefix))
	return &Iterator{c: c}
}

// Fill positions the iterator (key is used with PosSeek only) and copies up
// to max entries, as many as fit, into buf in one cgo call.
func (it *Iterator) Fill(pos Pos, key, buf []byte, max int) (Page, error) {
	r := C.ms_iter_fill(it.c, C.int(pos), bytesPtr(key), C.size_t(len(key)),
		bytesPtr(buf), C.size_t(len(buf)), C.int(max))
	if r.status == C.MS_PAGE_ERROR {
		return Page{}, takeError(r.err)
	}
	return Page{Status: PageStatus(r.status), Count: int(r.count), Used: int(r.used), Need: int(r.need)}, nil
}

// Close frees the iterator.
func (it *Iterator) Close() {
	if it.c != nil {
		C.ms_iter_free(it.c)
		it.c = nil
	}
}

// PageRecord decodes the record at page[off:] and returns its key and value
// (aliasing page) and the offset of the next record. The page must come from
// Fill; a truncated record panics.
func PageRecord(page []byte, off int) (key, value []byte, next int) {
	kl := int(binary.LittleEndian.Uint32(page[off:]))
	off += 4
	key = page[off : off+kl : off+kl]
	off += kl
	vl := int(binary.LittleEndian.Uint32(page[off:]))
	off += 4
	value = page[off : off+vl : off+vl]
	return key, value, off + vl
}
