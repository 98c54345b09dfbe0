package rocksdb

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/engine"
)

type kv struct{ k, v string }

// collect walks it from its current position and returns the entries seen.
func collect(t *testing.T, it engine.Iterator, ok bool) []kv {
	t.Helper()
	var out []kv
	for ; ok; ok = it.Next() {
		require.True(t, it.Valid())
		out = append(out, kv{string(it.Key()), string(it.Value())})
	}
	require.False(t, it.Valid())
	require.NoError(t, it.Err())
	return out
}

func TestIterator_Bounds(t *testing.T) {
	db := openTest(t, t.TempDir())
	put(t, db, engine.Data, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
	put(t, db, engine.Meta, "c", "other keyspace")
	s := func(x string) []byte { return []byte(x) }

	tests := []struct {
		name   string
		opts   engine.IterOptions
		seek   string // "" means First
		expect string // keys in order
	}{
		{"all", engine.IterOptions{}, "", "abcde"},
		{"all reverse", engine.IterOptions{Reverse: true}, "", "edcba"},
		{"lower", engine.IterOptions{Lower: s("b")}, "", "bcde"},
		{"upper exclusive", engine.IterOptions{Upper: s("d")}, "", "abc"},
		{"both", engine.IterOptions{Lower: s("b"), Upper: s("d")}, "", "bc"},
		{"both reverse", engine.IterOptions{Lower: s("b"), Upper: s("d"), Reverse: true}, "", "cb"},
		{"between keys", engine.IterOptions{Lower: s("bb"), Upper: s("dd")}, "", "cd"},
		{"between keys reverse", engine.IterOptions{Lower: s("bb"), Upper: s("dd"), Reverse: true}, "", "dc"},
		{"empty range", engine.IterOptions{Lower: s("c"), Upper: s("c")}, "", ""},
		{"empty upper", engine.IterOptions{Upper: []byte{}}, "", ""},
		{"empty lower is unbounded", engine.IterOptions{Lower: []byte{}}, "", "abcde"},
		{"seek", engine.IterOptions{}, "c", "cde"},
		{"seek between", engine.IterOptions{}, "cc", "de"},
		{"seek past end", engine.IterOptions{}, "z", ""},
		{"seek below lower clamps", engine.IterOptions{Lower: s("b")}, "a", "bcde"},
		{"seek at upper", engine.IterOptions{Upper: s("d")}, "d", ""},
		{"seek reverse", engine.IterOptions{Reverse: true}, "c", "cba"},
		{"seek reverse between", engine.IterOptions{Reverse: true}, "cc", "cba"},
		{"seek reverse before start", engine.IterOptions{Reverse: true}, "0", ""},
		{"seek reverse at upper", engine.IterOptions{Upper: s("d"), Reverse: true}, "d", "cba"},
		{"seek reverse above upper", engine.IterOptions{Upper: s("d"), Reverse: true}, "zz", "cba"},
		{"seek reverse below lower", engine.IterOptions{Lower: s("b"), Reverse: true}, "a", ""},
		{"seek reverse both", engine.IterOptions{Lower: s("b"), Upper: s("e"), Reverse: true}, "dd", "dcb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := db.NewIterator(engine.Data, tt.opts)
			defer it.Close()
			require.False(t, it.Valid(), "a fresh iterator is not valid")
			var ok bool
			if tt.seek == "" {
				ok = it.First()
			} else {
				ok = it.Seek([]byte(tt.seek))
			}
			var keys string
			for _, e := range collect(t, it, ok) {
				keys += e.k
			}
			require.Equal(t, tt.expect, keys)
			require.False(t, it.Next(), "Next after the end stays invalid")
		})
	}
}

// pagingData is n entries with keys holding 0x00 bytes and values from empty
// to a few KiB, plus one value far larger than a page.
func pagingData(n int) []kv {
	rng := rand.New(rand.NewPCG(7, 11))
	out := make([]kv, 0, n+1)
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("k\x00%06d\x00", i*3)
		var v []byte
		switch i % 5 {
		case 0: // empty
		case 1:
			v = []byte{0}
		case 2:
			v = bytes.Repeat([]byte{byte(i)}, rng.IntN(100))
		case 3:
			v = bytes.Repeat([]byte{0, byte(i)}, rng.IntN(2000))
		case 4:
			v = []byte(fmt.Sprintf("value-%d", i))
		}
		out = append(out, kv{k, string(v)})
	}
	out = append(out, kv{"k\x00001500\x00big", string(bytes.Repeat([]byte("B"), 600<<10))})
	sort.Slice(out, func(i, j int) bool { return out[i].k < out[j].k })
	return out
}

func TestIterator_PagesAcrossManyPages(t *testing.T) {
	db := openTest(t, t.TempDir())
	data := pagingData(3000)
	b := db.NewBatch()
	for _, e := range data {
		b.Put(engine.Data, []byte(e.k), []byte(e.v))
	}
	require.NoError(t, b.Commit(false))
	require.NoError(t, b.Close())
	reversed := slices.Clone(data)
	slices.Reverse(reversed)

	check := func(t *testing.T, r engine.Reader) {
		t.Logf("Step 1: full forward and reverse scans")
		it := r.NewIterator(engine.Data, engine.IterOptions{})
		require.Equal(t, data, collect(t, it, it.First()))
		require.NoError(t, it.Close())
		it = r.NewIterator(engine.Data, engine.IterOptions{Reverse: true})
		require.Equal(t, reversed, collect(t, it, it.First()))
		require.NoError(t, it.Close())

		t.Logf("Step 2: seeks into the middle, then scan on, in both directions")
		for _, i := range []int{0, 1, 499, 1500, 1501, 2999, len(data) - 1} {
			it := r.NewIterator(engine.Data, engine.IterOptions{})
			require.Equal(t, data[i:], collect(t, it, it.Seek([]byte(data[i].k))), "seek to %d", i)
			require.NoError(t, it.Close())
			it = r.NewIterator(engine.Data, engine.IterOptions{Reverse: true})
			require.Equal(t, reversed[len(data)-1-i:], collect(t, it, it.Seek([]byte(data[i].k))), "reverse seek to %d", i)
			require.NoError(t, it.Close())
		}

		t.Logf("Step 3: bounded scans; one iterator re-seeked many times")
		lo, hi := data[100].k, data[2100].k
		it = r.NewIterator(engine.Data, engine.IterOptions{Lower: []byte(lo), Upper: []byte(hi)})
		require.Equal(t, data[100:2100], collect(t, it, it.First()))
		for _, i := range []int{2000, 150, 100, 2099} {
			require.True(t, it.Seek([]byte(data[i].k)))
			require.Equal(t, data[i].k, string(it.Key()))
			require.Equal(t, data[i].v, string(it.Value()))
		}
		require.Equal(t, data[100:2100], collect(t, it, it.First()))
		require.NoError(t, it.Close())
		it = r.NewIterator(engine.Data, engine.IterOptions{Lower: []byte(lo), Upper: []byte(hi), Reverse: true})
		require.Equal(t, reversed[len(data)-2100:len(data)-100], collect(t, it, it.First()))
		require.NoError(t, it.Close())
	}
	t.Run("memtable", func(t *testing.T) { check(t, db) })
	require.NoError(t, db.Flush())
	t.Run("sst", func(t *testing.T) { check(t, db) })
	snap := db.NewSnapshot()
	defer snap.Close()
	t.Run("snapshot", func(t *testing.T) { check(t, snap) })
}

func TestIterator_PointInTimeAcrossPages(t *testing.T) {
	db := openTest(t, t.TempDir())
	b := db.NewBatch()
	defer b.Close()
	for i := 0; i < 2000; i++ {
		b.Put(engine.Data, []byte(fmt.Sprintf("%05d", i)), []byte("old"))
	}
	require.NoError(t, b.Commit(false))

	it := db.NewIterator(engine.Data, engine.IterOptions{})
	defer it.Close()
	require.True(t, it.First())

	t.Logf("Step 1: overwrite and extend after the iterator was created and positioned")
	b.Reset()
	for i := 0; i < 2500; i++ {
		b.Put(engine.Data, []byte(fmt.Sprintf("%05d", i)), []byte("new"))
	}
	require.NoError(t, b.Commit(false))

	t.Logf("Step 2: every later page still shows the old state")
	n := 0
	for ok := true; ok; ok = it.Next() {
		require.Equal(t, fmt.Sprintf("%05d", n), string(it.Key()))
		require.Equal(t, "old", string(it.Value()))
		n++
	}
	require.NoError(t, it.Err())
	require.Equal(t, 2000, n)
}

func TestSnapshot_Isolation(t *testing.T) {
	db := openTest(t, t.TempDir())
	put(t, db, engine.Data, "a", "1", "b", "2")
	snap := db.NewSnapshot()
	defer snap.Close()

	b := db.NewBatch()
	defer b.Close()
	b.Put(engine.Data, []byte("a"), []byte("changed"))
	b.Delete(engine.Data, []byte("b"))
	b.Put(engine.Data, []byte("c"), []byte("3"))
	require.NoError(t, b.Commit(false))

	t.Logf("Step 1: the engine sees the new state")
	requireGet(t, db, engine.Data, "a", "changed")
	requireMissing(t, db, engine.Data, "b")

	t.Logf("Step 2: the snapshot, and iterators made from it later, see the old one")
	requireGet(t, snap, engine.Data, "a", "1")
	requireGet(t, snap, engine.Data, "b", "2")
	requireMissing(t, snap, engine.Data, "c")
	it := snap.NewIterator(engine.Data, engine.IterOptions{})
	require.Equal(t, []kv{{"a", "1"}, {"b", "2"}}, collect(t, it, it.First()))
	require.NoError(t, it.Close())

	t.Logf("Step 3: after flush and compaction too")
	require.NoError(t, db.Flush())
	require.NoError(t, db.Compact(engine.Data, nil, nil))
	requireGet(t, snap, engine.Data, "b", "2")

	t.Logf("Step 4: a closed snapshot refuses reads")
	require.NoError(t, snap.Close())
	require.NoError(t, snap.Close())
	_, err := snap.Get(engine.Data, []byte("a"))
	require.ErrorIs(t, err, engine.ErrClosed)
	it = snap.NewIterator(engine.Data, engine.IterOptions{})
	require.False(t, it.First())
	require.ErrorIs(t, it.Err(), engine.ErrClosed)
	require.NoError(t, it.Close())
}

func TestIterator_ClosedIterator(t *testing.T) {
	db := openTest(t, t.TempDir())
	put(t, db, engine.Data, "a", "1")
	it := db.NewIterator(engine.Data, engine.IterOptions{})
	require.True(t, it.First())
	require.NoError(t, it.Close())
	require.NoError(t, it.Close())
	require.False(t, it.Valid())
	require.False(t, it.Next())
	require.False(t, it.First())
	require.ErrorIs(t, it.Err(), engine.ErrClosed)
}

func TestPageBufClasses(t *testing.T) {
	tests := []struct{ size, class int }{
		{1, 0}, {4096, 0}, {4097, 1}, {8192, 1}, {8193, 2}, {128 << 10, 5}, {256 << 10, 6}, {256<<10 + 1, 7},
	}
	for _, tt := range tests {
		require.Equal(t, tt.class, pageClass(tt.size), "size %d", tt.size)
		b := getPageBuf(tt.size)
		require.GreaterOrEqual(t, len(b), tt.size)
		putPageBuf(b)
	}
}
