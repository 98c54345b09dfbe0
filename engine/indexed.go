package engine

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/tidwall/btree"
)

// IndexedBatch is a write batch that can be read through: Get and NewIterator
// return the base engine's data with the batch's pending writes applied on
// top. The mvcc apply loop uses it to apply several raft entries into one
// batch where later entries must see the writes of earlier ones before the
// batch commits.
//
// Every write goes two places: into a real Batch of the base engine (so
// Commit is exactly one base commit, atomic and with the base's durability),
// and into an in-memory overlay that reads consult first:
//   - per keyspace, a B-tree of point entries (a put with its value, or a
//     delete marker), last write wins;
//   - per keyspace, a sorted list of disjoint range tombstones from
//     DeleteRange. A DeleteRange also drops the point entries it covers, so a
//     point entry, if present, is always newer than any tombstone over it.
//
// A key's visible state is therefore: its point entry if there is one; else
// absent if a tombstone covers it; else whatever the base holds.
//
// Reads see the base engine's current state, not a snapshot: the batch
// assumes it is the only writer while it is open, which holds on the apply
// path. Iterators are point-in-time with respect to the batch's own writes
// and to the base (whose iterators are point-in-time). An iterator reads the
// overlay's B-tree itself; only a write made while an iterator is still open
// moves the batch to a copy-on-write clone (the apply path closes its
// iterators before it writes, so it never pays for the clone: cloning on
// every NewIterator made each later write copy B-tree nodes, 16% of the bytes
// a put allocated).
//
// An IndexedBatch is not safe for concurrent use. Slices returned by an
// iterator's Key and Value stay valid until the next positioning call, as for
// every Iterator; iterators must be closed before Reset.
type IndexedBatch struct {
	base   Engine
	batch  Batch
	points [NumKeyspaces]*btree.BTreeG[ovEntry] // nil until first written
	// readers counts the open iterators reading points[ks] itself; a
	// write first moves points[ks] to a clone when it is not zero.
	readers [NumKeyspaces]int
	tombs   [NumKeyspaces][]span // replaced, never mutated in place
	arena   arena
	victim  []ovEntry // DeleteRange scratch
	// versions is the base iterator SeekVersion reuses: opened on first
	// use, closed by Reset and Close.
	versions Iterator
	closed   bool
}

var (
	_ Reader = (*IndexedBatch)(nil)
	_ Batch  = (*IndexedBatch)(nil)
)

// ovEntry is one pending point write. Deleted entries hide the base key.
type ovEntry struct {
	key, value []byte
	deleted    bool
}

func lessEntry(a, b ovEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

// span is a pending range tombstone [start, end).
type span struct{ start, end []byte }

// NewIndexedBatch returns an empty batch over base.
func NewIndexedBatch(base Engine) *IndexedBatch {
	return &IndexedBatch{base: base, batch: base.NewBatch()}
}

func (b *IndexedBatch) tree(ks Keyspace) *btree.BTreeG[ovEntry] {
	t := b.points[ks]
	if t == nil {
		// No internal lock: the batch is single-goroutine, and iterators read
		// their own clones.
		t = btree.NewBTreeGOptions(lessEntry, btree.Options{NoLocks: true})
		b.points[ks] = t
	}
	return t
}

// writableTree is tree(ks) made safe to modify: when open iterators read
// the current tree, they keep it and the batch goes on with a clone.
func (b *IndexedBatch) writableTree(ks Keyspace) *btree.BTreeG[ovEntry] {
	t := b.tree(ks)
	if b.readers[ks] > 0 {
		t = t.Copy()
		b.points[ks] = t
		b.readers[ks] = 0
	}
	return t
}

// Put records a write of value under key.
func (b *IndexedBatch) Put(ks Keyspace, key, value []byte) {
	if b.closed {
		return
	}
	b.batch.Put(ks, key, value)
	if ks >= NumKeyspaces {
		return // the base batch is now poisoned and will refuse to commit
	}
	k, v := b.arena.copy2(key, value)
	b.writableTree(ks).Set(ovEntry{key: k, value: v})
}

// PutUnindexed records a write of value under key that reads through this
// batch do not see until it commits: for records nothing reads back within
// the batch (mvcc's change log, and the versions written by an Apply's
// final request). It costs the base batch's copy only, not
// the overlay's copy and B-tree insert.
func (b *IndexedBatch) PutUnindexed(ks Keyspace, key, value []byte) {
	if b.closed {
		return
	}
	b.batch.Put(ks, key, value)
}

// Delete records the removal of key.
func (b *IndexedBatch) Delete(ks Keyspace, key []byte) {
	if b.closed {
		return
	}
	b.batch.Delete(ks, key)
	if ks >= NumKeyspaces {
		return
	}
	k, _ := b.arena.copy2(key, nil)
	b.writableTree(ks).Set(ovEntry{key: k, deleted: true})
}

// DeleteRange records the removal of every key in [start, end).
func (b *IndexedBatch) DeleteRange(ks Keyspace, start, end []byte) {
	if b.closed {
		return
	}
	b.batch.DeleteRange(ks, start, end)
	if ks >= NumKeyspaces || bytes.Compare(start, end) >= 0 {
		return
	}
	// Drop the pending point writes the range covers: the tombstone is newer.
	if t := b.points[ks]; t != nil && t.Len() > 0 {
		victims := b.victim[:0]
		t.Ascend(ovEntry{key: start}, func(e ovEntry) bool {
			if bytes.Compare(e.key, end) >= 0 {
				return false
			}
			victims = append(victims, e)
			return true
		})
		if len(victims) > 0 {
			t = b.writableTree(ks)
		}
		for _, e := range victims {
			t.Delete(e)
		}
		clear(victims)
		b.victim = victims[:0]
	}
	s, e := b.arena.copy2(start, end)
	b.tombs[ks] = addSpan(b.tombs[ks], span{start: s, end: e})
}

// addSpan returns a new sorted, disjoint span list with sp merged in. It
// never modifies spans, which open iterators may still hold.
func addSpan(spans []span, sp span) []span {
	// First span that ends at or after sp.start: everything before it is
	// entirely to the left and stays. Touching spans ([a,b) and [b,c)) merge.
	i := sort.Search(len(spans), func(i int) bool { return bytes.Compare(spans[i].end, sp.start) >= 0 })
	j := i
	for j < len(spans) && bytes.Compare(spans[j].start, sp.end) <= 0 {
		if bytes.Compare(spans[j].start, sp.start) < 0 {
			sp.start = spans[j].start
		}
		if bytes.Compare(spans[j].end, sp.end) > 0 {
			sp.end = spans[j].end
		}
		j++
	}
	out := make([]span, 0, len(spans)-(j-i)+1)
	out = append(out, spans[:i]...)
	out = append(out, sp)
	return append(out, spans[j:]...)
}

// covering returns the index of the span in spans that holds key.
func covering(spans []span, key []byte) (int, bool) {
	i := sort.Search(len(spans), func(i int) bool { return bytes.Compare(spans[i].end, key) > 0 })
	if i < len(spans) && bytes.Compare(spans[i].start, key) <= 0 {
		return i, true
	}
	return 0, false
}

// Count is the number of operations in the batch.
func (b *IndexedBatch) Count() int { return b.batch.Count() }

// Size is the approximate number of bytes the base batch holds.
func (b *IndexedBatch) Size() int { return b.batch.Size() }

// Commit commits the base batch. Reads keep merging the pending writes, which
// the base now also holds, until Reset.
func (b *IndexedBatch) Commit(sync bool) error {
	if b.closed {
		return ErrClosed
	}
	return b.batch.Commit(sync)
}

// Reset empties the batch for reuse. Iterators must be closed first.
func (b *IndexedBatch) Reset() {
	if b.closed {
		return
	}
	b.batch.Reset()
	for ks := range b.points {
		if t := b.points[ks]; t != nil {
			t.Clear()
		}
		b.tombs[ks] = nil
	}
	b.readers = [NumKeyspaces]int{}
	b.arena.reset()
	b.closeVersions()
}

func (b *IndexedBatch) closeVersions() {
	if b.versions != nil {
		b.versions.Close()
		b.versions = nil
	}
}

// Close releases the batch; Close is idempotent.
func (b *IndexedBatch) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.closeVersions()
	b.points = [NumKeyspaces]*btree.BTreeG[ovEntry]{}
	b.tombs = [NumKeyspaces][]span{}
	b.arena.reset()
	return b.batch.Close()
}

// Get returns a copy of the value key has with the pending writes applied.
func (b *IndexedBatch) Get(ks Keyspace, key []byte) ([]byte, error) {
	if b.closed {
		return nil, ErrClosed
	}
	if ks >= NumKeyspaces {
		return nil, fmt.Errorf("%w: %d", ErrBadKeyspace, ks)
	}
	if t := b.points[ks]; t != nil {
		if e, ok := t.Get(ovEntry{key: key}); ok {
			if e.deleted {
				return nil, ErrNotFound
			}
			v := make([]byte, len(e.value))
			copy(v, e.value)
			return v, nil
		}
	}
	if _, ok := covering(b.tombs[ks], key); ok {
		return nil, ErrNotFound
	}
	return b.base.Get(ks, key)
}

// NewIterator returns an iterator over the base merged with the pending
// writes. With nothing pending in ks it is the base iterator itself.
func (b *IndexedBatch) NewIterator(ks Keyspace, opts IterOptions) Iterator {
	if b.closed {
		return &errIterator{err: ErrClosed}
	}
	if ks >= NumKeyspaces {
		return &errIterator{err: fmt.Errorf("%w: %d", ErrBadKeyspace, ks)}
	}
	t := b.points[ks]
	if (t == nil || t.Len() == 0) && len(b.tombs[ks]) == 0 {
		return b.base.NewIterator(ks, opts)
	}
	m := &mergeIter{
		base:    b.base.NewIterator(ks, opts),
		tombs:   b.tombs[ks],
		reverse: opts.Reverse,
	}
	if opts.Lower != nil || opts.Upper != nil {
		buf := make([]byte, len(opts.Lower)+len(opts.Upper))
		if opts.Lower != nil {
			m.lower = buf[:len(opts.Lower):len(opts.Lower)]
			copy(m.lower, opts.Lower)
		}
		if opts.Upper != nil {
			m.upper = buf[len(opts.Lower):]
			copy(m.upper, opts.Upper)
		}
	}
	if t != nil && t.Len() > 0 {
		// The iterator reads t itself; a write while it is open moves the
		// batch to a clone (writableTree), so t never changes under it.
		m.ov.Init(t, false)
		m.hasOv = true
		m.owner, m.ks, m.tree = b, ks, t
		b.readers[ks]++
	}
	return m
}

// dataSuffixLen is the length of the suffix (mvcc's revision) that ends
// every key of the Data keyspace (IterOptions.SameSuffixedKey).
const dataSuffixLen = 8

// SeekVersion returns the first entry of the Data keyspace at or after key
// among the keys that share all of key's bytes but the last 8 (the versions
// of one mvcc key; see IterOptions.SameSuffixedKey), with the pending writes
// applied: what Seek(key) returns on an iterator bounded to those keys. ok is
// false when there is none. The slices are valid until the next call, Reset
// or Close.
//
// The batch opens one base iterator for all its SeekVersion calls instead of
// one per lookup: with random keys, opening a RocksDB iterator for each put's
// lookup of the key's previous version (pinning the memtables and files and
// building their merged view) cost about as much as the seek itself. The
// reused iterator reads the base as it was when it was opened, which is the
// base this batch reads as long as it is the only writer (as NewIterator
// assumes). Keys with pending writes, or any pending DeleteRange in Data, take
// a merged iterator as NewIterator does.
func (b *IndexedBatch) SeekVersion(key []byte) (k, v []byte, ok bool, err error) {
	if b.closed {
		return nil, nil, false, ErrClosed
	}
	if len(key) < dataSuffixLen {
		return nil, nil, false, fmt.Errorf("engine: version key %q is shorter than its %d-byte suffix", key, dataSuffixLen)
	}
	prefix := key[:len(key)-dataSuffixLen]
	same := func(k []byte) bool { return len(k) == len(key) && bytes.HasPrefix(k, prefix) }
	if b.pendingVersions(prefix) {
		it := b.NewIterator(Data, IterOptions{Lower: prefix, SameSuffixedKey: true})
		defer it.Close()
		if !it.Seek(key) || !same(it.Key()) {
			return nil, nil, false, it.Err()
		}
		return bytes.Clone(it.Key()), bytes.Clone(it.Value()), true, nil
	}
	if b.versions == nil {
		b.versions = b.base.NewIterator(Data, IterOptions{SameSuffixedKey: true})
	}
	if !b.versions.Seek(key) || !same(b.versions.Key()) {
		return nil, nil, false, b.versions.Err()
	}
	return b.versions.Key(), b.versions.Value(), true, nil
}

// pendingVersions reports whether the batch holds a write that may change
// what SeekVersion finds among the keys that start with prefix.
func (b *IndexedBatch) pendingVersions(prefix []byte) bool {
	if len(b.tombs[Data]) > 0 {
		return true
	}
	t := b.points[Data]
	if t == nil || t.Len() == 0 {
		return false
	}
	pending := false
	t.Ascend(ovEntry{key: prefix}, func(e ovEntry) bool {
		pending = bytes.HasPrefix(e.key, prefix)
		return false
	})
	return pending
}

// arena hands out copies of keys and values from shared chunks, so that a
// write costs an allocation only once per chunk. Chunks are never reused:
// after Reset a new one is started, so slices handed out earlier stay intact.
type arena struct {
	buf []byte
}

const (
	arenaFirst = 1 << 10
	arenaChunk = 32 << 10
	arenaLarge = 4 << 10 // pairs larger than this get their own allocation
)

func (a *arena) copy2(k, v []byte) (kk, vv []byte) {
	n := len(k) + len(v)
	var buf []byte
	if n > arenaLarge {
		buf = make([]byte, n)
	} else {
		if cap(a.buf)-len(a.buf) < n {
			// Chunks start small, so a batch of one small write stays cheap,
			// and double up to arenaChunk.
			size := max(min(max(2*cap(a.buf), arenaFirst), arenaChunk), n)
			a.buf = make([]byte, 0, size)
		}
		off := len(a.buf)
		a.buf = a.buf[:off+n]
		buf = a.buf[off : off+n : off+n]
	}
	copy(buf, k)
	copy(buf[len(k):], v)
	return buf[:len(k):len(k)], buf[len(k):]
}

func (a *arena) reset() { a.buf = nil }

// errIterator is never valid and reports err.
type errIterator struct{ err error }

func (i *errIterator) First() bool          { return false }
func (i *errIterator) Seek(key []byte) bool { return false }
func (i *errIterator) Next() bool           { return false }
func (i *errIterator) Valid() bool          { return false }
func (i *errIterator) Key() []byte          { return nil }
func (i *errIterator) Value() []byte        { return nil }
func (i *errIterator) Err() error           { return i.err }
func (i *errIterator) Close() error         { return nil }

// mergeIter merges a base iterator with a clone of the overlay's point
// entries and the tombstones, all moving in the same direction. At each step
// the nearer of the two keys (in iteration order) wins; on a tie the overlay
// wins and the base steps past it too. Deleted overlay entries and base keys
// under a tombstone are skipped.
type mergeIter struct {
	base  Iterator
	ov    btree.IterG[ovEntry]
	hasOv bool
	// owner, ks, tree: the batch and the overlay tree read, to give the
	// tree back on Close (IndexedBatch.readers).
	owner        *IndexedBatch
	ks           Keyspace
	tree         *btree.BTreeG[ovEntry]
	tombs        []span
	lower, upper []byte
	reverse      bool

	ovValid   bool
	ovCur     ovEntry
	baseValid bool
	cur       int8 // curNone, curOverlay or curBase
	shadow    bool // cur == curOverlay and the base sits on the same key
}

const (
	curNone int8 = iota
	curOverlay
	curBase
)

// ovSettle records the overlay position after a move that reported ok and
// applies the bound on the far side of the direction of travel.
func (m *mergeIter) ovSettle(ok bool) {
	if ok {
		m.ovCur = m.ov.Item()
		if m.reverse {
			ok = m.lower == nil || bytes.Compare(m.ovCur.key, m.lower) >= 0
		} else {
			ok = m.upper == nil || bytes.Compare(m.ovCur.key, m.upper) < 0
		}
	}
	m.ovValid = ok
}

// ovLastBelow moves the overlay to its largest key < upper (nil: the largest).
func (m *mergeIter) ovLastBelow(upper []byte) bool {
	if upper == nil {
		return m.ov.Last()
	}
	if m.ov.Seek(ovEntry{key: upper}) {
		return m.ov.Prev()
	}
	return m.ov.Last()
}

func (m *mergeIter) ovFirst() {
	if !m.hasOv {
		return
	}
	switch {
	case m.reverse:
		m.ovSettle(m.ovLastBelow(m.upper))
	case m.lower != nil:
		m.ovSettle(m.ov.Seek(ovEntry{key: m.lower}))
	default:
		m.ovSettle(m.ov.First())
	}
}

func (m *mergeIter) ovSeek(key []byte) {
	if !m.hasOv {
		return
	}
	if !m.reverse {
		if m.lower != nil && bytes.Compare(key, m.lower) < 0 {
			key = m.lower
		}
		m.ovSettle(m.ov.Seek(ovEntry{key: key}))
		return
	}
	if m.upper != nil && bytes.Compare(key, m.upper) >= 0 {
		m.ovSettle(m.ovLastBelow(m.upper))
		return
	}
	switch {
	case !m.ov.Seek(ovEntry{key: key}):
		m.ovSettle(m.ov.Last())
	case bytes.Equal(m.ov.Item().key, key):
		m.ovSettle(true)
	default:
		m.ovSettle(m.ov.Prev())
	}
}

func (m *mergeIter) ovNext() {
	if m.reverse {
		m.ovSettle(m.ov.Prev())
	} else {
		m.ovSettle(m.ov.Next())
	}
}

// settle skips hidden entries and picks the current one.
func (m *mergeIter) settle() bool {
	for {
		if !m.baseValid && m.base.Err() != nil {
			m.cur = curNone // a failed base ends the iteration
			return false
		}
		if m.baseValid && len(m.tombs) > 0 {
			if i, ok := covering(m.tombs, m.base.Key()); ok {
				// Jump the base past the whole tombstone in one seek.
				if !m.reverse {
					m.baseValid = m.base.Seek(m.tombs[i].end)
				} else {
					m.baseValid = m.base.Seek(m.tombs[i].start)
					if m.baseValid && bytes.Equal(m.base.Key(), m.tombs[i].start) {
						m.baseValid = m.base.Next()
					}
				}
				continue
			}
		}
		if m.ovValid {
			c := -1
			if m.baseValid {
				c = bytes.Compare(m.ovCur.key, m.base.Key())
				if m.reverse {
					c = -c
				}
			}
			if c <= 0 {
				if m.ovCur.deleted {
					if c == 0 {
						m.baseValid = m.base.Next()
					}
					m.ovNext()
					continue
				}
				m.cur, m.shadow = curOverlay, c == 0
				return true
			}
		}
		if m.baseValid {
			m.cur = curBase
			return true
		}
		m.cur = curNone
		return false
	}
}

func (m *mergeIter) First() bool {
	m.baseValid = m.base.First()
	m.ovValid = false
	m.ovFirst()
	return m.settle()
}

func (m *mergeIter) Seek(key []byte) bool {
	m.baseValid = m.base.Seek(key)
	m.ovValid = false
	m.ovSeek(key)
	return m.settle()
}

func (m *mergeIter) Next() bool {
	switch m.cur {
	case curOverlay:
		if m.shadow {
			m.baseValid = m.base.Next()
		}
		m.ovNext()
	case curBase:
		m.baseValid = m.base.Next()
	default:
		return false
	}
	return m.settle()
}

func (m *mergeIter) Valid() bool { return m.cur != curNone }

func (m *mergeIter) Key() []byte {
	switch m.cur {
	case curOverlay:
		return m.ovCur.key
	case curBase:
		return m.base.Key()
	}
	return nil
}

func (m *mergeIter) Value() []byte {
	switch m.cur {
	case curOverlay:
		return m.ovCur.value
	case curBase:
		return m.base.Value()
	}
	return nil
}

func (m *mergeIter) Err() error { return m.base.Err() }

// Close releases both sides; Close is idempotent.
func (m *mergeIter) Close() error {
	if m.hasOv {
		m.ov.Release()
		m.hasOv = false
		if b := m.owner; b != nil && b.points[m.ks] == m.tree && b.readers[m.ks] > 0 {
			b.readers[m.ks]--
		}
		m.owner, m.tree = nil, nil
	}
	m.cur = curNone
	m.ovValid, m.baseValid = false, false
	return m.base.Close()
}
