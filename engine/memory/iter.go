package memory

import (
	"bytes"

	"github.com/tidwall/btree"

	"github.com/metastore/metastore/engine"
)

// iterator walks one published (immutable) tree within bounds. It holds the
// tree, so it is point-in-time and never blocks or is disturbed by writers.
// Key and Value return slices of the stored item without copying.
type iterator struct {
	it      btree.IterG[item]
	lower   []byte
	upper   []byte
	reverse bool
	init    bool // it was initialised and must be released
	valid   bool
	cur     item
	err     error
}

var _ engine.Iterator = (*iterator)(nil)

func (st *state) newIterator(ks engine.Keyspace, opts engine.IterOptions) engine.Iterator {
	if err := checkKeyspace(ks); err != nil {
		return &iterator{err: err}
	}
	i := &iterator{reverse: opts.Reverse, init: true}
	// The caller may reuse its bound slices; keep our own copies in one
	// allocation.
	if opts.Lower != nil || opts.Upper != nil {
		buf := make([]byte, len(opts.Lower)+len(opts.Upper))
		if opts.Lower != nil {
			i.lower = buf[:len(opts.Lower):len(opts.Lower)]
			copy(i.lower, opts.Lower)
		}
		if opts.Upper != nil {
			i.upper = buf[len(opts.Lower):]
			copy(i.upper, opts.Upper)
		}
	}
	// Init (rather than Iter) keeps the iterator's path stack inside i.
	i.it.Init(st.trees[ks], false)
	return i
}

// settle records the btree iterator's position after a move that reported
// ok, and applies the bound on the far side of the iteration direction.
func (i *iterator) settle(ok bool) bool {
	if ok {
		i.cur = i.it.Item()
		if i.reverse {
			ok = i.lower == nil || bytes.Compare(i.cur.key, i.lower) >= 0
		} else {
			ok = i.upper == nil || bytes.Compare(i.cur.key, i.upper) < 0
		}
	}
	if !ok {
		i.cur = item{}
	}
	i.valid = ok
	return ok
}

// lastBelow positions at the largest key < upper (or the largest key).
func (i *iterator) lastBelow(upper []byte) bool {
	if upper == nil {
		return i.it.Last()
	}
	if i.it.Seek(item{key: upper}) {
		return i.it.Prev()
	}
	return i.it.Last()
}

func (i *iterator) First() bool {
	if !i.init {
		return false
	}
	if i.reverse {
		return i.settle(i.lastBelow(i.upper))
	}
	if i.lower != nil {
		return i.settle(i.it.Seek(item{key: i.lower}))
	}
	return i.settle(i.it.First())
}

func (i *iterator) Seek(key []byte) bool {
	if !i.init {
		return false
	}
	if !i.reverse {
		if i.lower != nil && bytes.Compare(key, i.lower) < 0 {
			key = i.lower
		}
		return i.settle(i.it.Seek(item{key: key}))
	}
	if i.upper != nil && bytes.Compare(key, i.upper) >= 0 {
		return i.settle(i.lastBelow(i.upper))
	}
	// Last key <= key: the first key >= key if it is equal, else the one
	// before it.
	if !i.it.Seek(item{key: key}) {
		return i.settle(i.it.Last())
	}
	if bytes.Equal(i.it.Item().key, key) {
		return i.settle(true)
	}
	return i.settle(i.it.Prev())
}

func (i *iterator) Next() bool {
	if !i.valid {
		return false
	}
	if i.reverse {
		return i.settle(i.it.Prev())
	}
	return i.settle(i.it.Next())
}

func (i *iterator) Valid() bool { return i.valid }

func (i *iterator) Key() []byte { return i.cur.key }

func (i *iterator) Value() []byte { return i.cur.value }

func (i *iterator) Err() error { return i.err }

// Close releases the iterator; Close is idempotent.
func (i *iterator) Close() error {
	if i.init {
		i.it.Release()
		i.init = false
	}
	i.valid = false
	i.cur = item{}
	return nil
}
