package rocksdb

import (
	"fmt"
	"math/bits"
	"sync"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/native"
)

// Page sizing. A positioning call (First, Seek) fetches a small page because
// mvcc mostly reads one or two entries after a seek (the newest version of a
// key); each following page is 4x larger, up to maxPageEntries entries or
// maxPageBytes bytes, so long scans cross cgo once per ~512 entries.
const (
	seekPageEntries = 4
	maxPageEntries  = 512
	minPageBytes    = 4 << 10
	maxPageBytes    = 256 << 10
	// pageBytesPerEntry sizes the buffer for a page of n entries.
	pageBytesPerEntry = 512
)

// pageBufs pools page buffers by size class: minPageBytes << i.
var pageBufs [7]sync.Pool

func pageClass(size int) int {
	return bits.Len(uint((size - 1) / minPageBytes))
}

func getPageBuf(size int) []byte {
	if size < minPageBytes {
		size = minPageBytes
	}
	c := pageClass(size)
	if c < len(pageBufs) {
		if bp, ok := pageBufs[c].Get().(*[]byte); ok {
			return *bp
		}
		return make([]byte, minPageBytes<<c)
	}
	return make([]byte, size) // one oversized entry: not pooled
}

func putPageBuf(b []byte) {
	if len(b) < minPageBytes {
		return
	}
	c := pageClass(len(b))
	if c < len(pageBufs) && len(b) == minPageBytes<<c {
		pageBufs[c].Put(&b)
	}
}

// iterator reads pages of entries from a native iterator. Key and Value are
// slices of the current page, valid until the next positioning call (which
// may refill the page) or Close.
type iterator struct {
	db *DB
	ks engine.Keyspace
	// n is nil once closed (by Close or DB.Close); guarded by db.mu like
	// snapshot.n.
	n *native.Iterator

	buf     []byte // page buffer
	page    []byte // filled part of buf
	off     int    // offset in page of the next record to decode
	left    int    // records in page not decoded yet
	more    bool   // the native iterator may hold entries beyond page
	entries int    // maximum entries of the next page

	key, value []byte
	valid      bool
	err        error
	closed     bool
}

var _ engine.Iterator = (*iterator)(nil)

func (db *DB) newIterator(ks engine.Keyspace, s *snapshot, opts engine.IterOptions) *iterator {
	it := &iterator{db: db, ks: ks}
	if err := checkKeyspace(ks); err != nil {
		it.err = err
		return it
	}
	if err := db.acquire(); err != nil {
		it.err = err
		return it
	}
	defer db.mu.RUnlock()
	var ns *native.Snapshot
	if s != nil {
		if ns = s.n; ns == nil {
			it.err = engine.ErrClosed
			return it
		}
	}
	prefix := opts.SameSuffixedKey && ks == engine.Data && db.cfg.DataPrefixFilter && !opts.Reverse
	it.n = db.n.NewIterator(int(ks), ns, opts.Lower, opts.Upper, opts.Reverse, prefix)
	db.live.Lock()
	db.live.iters[it] = struct{}{}
	db.live.Unlock()
	return it
}

// First implements engine.Iterator.
func (it *iterator) First() bool {
	return it.position(native.PosFirst, nil)
}

// Seek implements engine.Iterator.
func (it *iterator) Seek(key []byte) bool {
	return it.position(native.PosSeek, key)
}

func (it *iterator) position(pos native.Pos, key []byte) bool {
	it.entries = seekPageEntries
	return it.fill(pos, key)
}

// Next implements engine.Iterator.
func (it *iterator) Next() bool {
	if !it.valid {
		return false
	}
	if it.left > 0 {
		return it.decode()
	}
	if !it.more {
		it.valid = false
		it.key, it.value = nil, nil
		return false
	}
	it.entries = min(it.entries*4, maxPageEntries)
	return it.fill(native.PosContinue, nil)
}

// fill fetches the next page in one cgo call and decodes its first entry.
func (it *iterator) fill(pos native.Pos, key []byte) bool {
	it.valid = false
	it.key, it.value = nil, nil
	it.page, it.off, it.left, it.more = nil, 0, 0, false
	if it.closed {
		it.err = engine.ErrClosed
	}
	if it.err != nil {
		return false
	}
	if err := it.db.acquire(); err != nil {
		it.err = err
		return false
	}
	defer it.db.mu.RUnlock()
	if it.n == nil { // freed by DB.Close
		it.err = engine.ErrClosed
		return false
	}
	want := min(max(it.entries*pageBytesPerEntry, minPageBytes), maxPageBytes)
	if len(it.buf) < want {
		it.swapBuf(want)
	}
	for {
		p, err := it.n.Fill(pos, key, it.buf, it.entries)
		if err != nil {
			it.err = fmt.Errorf("rocksdb: iterate %s: %w", it.ks, err)
			return false
		}
		if p.Status == native.PageNeed {
			// One entry larger than the buffer: grow and resume on it.
			it.swapBuf(p.Need)
			pos = native.PosContinue
			continue
		}
		it.page = it.buf[:p.Used]
		it.left = p.Count
		it.more = p.Status == native.PageMore
		return it.decode()
	}
}

func (it *iterator) swapBuf(size int) {
	putPageBuf(it.buf)
	it.buf = getPageBuf(size)
}

// decode makes the next record of the page current.
func (it *iterator) decode() bool {
	if it.left == 0 {
		return false
	}
	it.key, it.value, it.off = native.PageRecord(it.page, it.off)
	it.left--
	it.valid = true
	return true
}

// Valid implements engine.Iterator.
func (it *iterator) Valid() bool { return it.valid }

// Key implements engine.Iterator.
func (it *iterator) Key() []byte { return it.key }

// Value implements engine.Iterator.
func (it *iterator) Value() []byte { return it.value }

// Err implements engine.Iterator.
func (it *iterator) Err() error { return it.err }

// Close implements engine.Iterator.
func (it *iterator) Close() error {
	if it.closed {
		return nil
	}
	it.closed = true
	it.valid = false
	it.key, it.value, it.page = nil, nil, nil
	it.db.mu.RLock()
	if it.n != nil && !it.db.closed {
		it.db.live.Lock()
		delete(it.db.live.iters, it)
		it.db.live.Unlock()
		it.release()
	}
	it.db.mu.RUnlock()
	putPageBuf(it.buf)
	it.buf = nil
	return nil
}

// release frees the native iterator.
// REQUIRES: db.mu held (RLock by the owner, or Lock by DB.Close).
func (it *iterator) release() {
	if it.n != nil {
		it.n.Close()
		it.n = nil
	}
}

// snapshot is a RocksDB snapshot; Gets and iterators through it read with
// read options that carry it.
type snapshot struct {
	db *DB
	// n is the native snapshot; nil once closed (by Close or by DB.Close).
	// Guarded by db.mu: written under Lock by DB.Close, or under RLock by
	// Close (a snapshot is not shared between goroutines while closing).
	n *native.Snapshot
}

var _ engine.Snapshot = (*snapshot)(nil)

func (db *DB) newSnapshot() *snapshot {
	s := &snapshot{db: db}
	if db.acquire() != nil {
		return s // closed engine: every call returns ErrClosed
	}
	defer db.mu.RUnlock()
	s.n = db.n.NewSnapshot()
	db.live.Lock()
	db.live.snaps[s] = struct{}{}
	db.live.Unlock()
	return s
}

// Get implements engine.Reader.
func (s *snapshot) Get(ks engine.Keyspace, key []byte) ([]byte, error) {
	return s.db.get(ks, s, key)
}

// NewIterator implements engine.Reader.
func (s *snapshot) NewIterator(ks engine.Keyspace, opts engine.IterOptions) engine.Iterator {
	return s.db.newIterator(ks, s, opts)
}

// Close implements engine.Snapshot.
func (s *snapshot) Close() error {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	if s.n == nil || s.db.closed {
		return nil
	}
	s.db.live.Lock()
	delete(s.db.live.snaps, s)
	s.db.live.Unlock()
	s.release()
	return nil
}

// release frees the native snapshot.
// REQUIRES: db.mu held (RLock by the owner, or Lock by DB.Close).
func (s *snapshot) release() {
	if s.n != nil {
		s.db.n.ReleaseSnapshot(s.n)
		s.n = nil
	}
}
