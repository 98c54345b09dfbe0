package enginetest

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/metastore/metastore/engine"
)

// iterCases cover iterator positioning, bounds and consistency.
var iterCases = []suiteCase{
	{"IterBounds", testIterBounds},
	{"IterUnpositioned", testIterUnpositioned},
	{"IterReposition", testIterReposition},
	{"IterManyKeys", testIterManyKeys},
	{"IterPointInTime", testIterPointInTime},
	{"IterBoundsCopied", testIterBoundsCopied},
}

func testIterBounds(t *testing.T, h *harness) {
	e, _ := h.open(t)
	m := model{}
	for _, k := range []string{"b", "d", "f", "h", "j"} {
		m[k] = "v" + k
	}
	putAll(t, e, engine.Data, m)
	// Noise in a neighbouring keyspace must never show up.
	putAll(t, e, engine.Meta, model{"a": "x", "c": "x", "e": "x", "k": "x"})

	tests := []struct {
		name         string
		lower, upper *string
		reverse      bool
		seek         *string // nil: First
		want         string  // keys in order, space separated
	}{
		{"all", nil, nil, false, nil, "b d f h j"},
		{"lower on key", sp("d"), nil, false, nil, "d f h j"},
		{"lower between keys", sp("c"), nil, false, nil, "d f h j"},
		{"upper on key (exclusive)", nil, sp("h"), false, nil, "b d f"},
		{"upper between keys", nil, sp("g"), false, nil, "b d f"},
		{"both", sp("c"), sp("i"), false, nil, "d f h"},
		{"lower == upper", sp("d"), sp("d"), false, nil, ""},
		{"range before all keys", sp("a"), sp("b"), false, nil, ""},
		{"lower after all keys", sp("k"), nil, false, nil, ""},
		{"empty lower", sp(""), nil, false, nil, "b d f h j"},
		{"seek between", nil, nil, false, sp("e"), "f h j"},
		{"seek exact", nil, nil, false, sp("d"), "d f h j"},
		{"seek empty key", nil, nil, false, sp(""), "b d f h j"},
		{"seek before all", nil, nil, false, sp("a"), "b d f h j"},
		{"seek after all", nil, nil, false, sp("k"), ""},
		{"seek below lower clamps", sp("e"), nil, false, sp("a"), "f h j"},
		{"seek at upper", nil, sp("i"), false, sp("i"), ""},
		{"seek past upper", nil, sp("g"), false, sp("h"), ""},
		{"seek inside bounds", sp("c"), sp("i"), false, sp("e"), "f h"},

		{"reverse all", nil, nil, true, nil, "j h f d b"},
		{"reverse upper on key", nil, sp("h"), true, nil, "f d b"},
		{"reverse upper between", nil, sp("g"), true, nil, "f d b"},
		{"reverse lower on key", sp("d"), nil, true, nil, "j h f d"},
		{"reverse lower between", sp("c"), nil, true, nil, "j h f d"},
		{"reverse both", sp("c"), sp("i"), true, nil, "h f d"},
		{"reverse lower == upper", sp("f"), sp("f"), true, nil, ""},
		{"reverse upper before all", nil, sp("b"), true, nil, ""},
		{"reverse seek between", nil, nil, true, sp("e"), "d b"},
		{"reverse seek exact", nil, nil, true, sp("f"), "f d b"},
		{"reverse seek just after key", nil, nil, true, sp("f\x00"), "f d b"},
		{"reverse seek after all", nil, nil, true, sp("z"), "j h f d b"},
		{"reverse seek before all", nil, nil, true, sp("a"), ""},
		{"reverse seek empty key", nil, nil, true, sp(""), ""},
		{"reverse seek above upper clamps", nil, sp("g"), true, sp("z"), "f d b"},
		{"reverse seek at upper clamps", nil, sp("h"), true, sp("h"), "f d b"},
		{"reverse seek below lower", sp("e"), nil, true, sp("d"), ""},
		{"reverse seek inside bounds", sp("c"), sp("i"), true, sp("g"), "f d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := engine.IterOptions{Lower: bytesOrNil(tc.lower), Upper: bytesOrNil(tc.upper), Reverse: tc.reverse}
			it := e.NewIterator(engine.Data, opts)
			defer it.Close()
			var first func() bool
			if tc.seek != nil {
				first = func() bool { return it.Seek([]byte(*tc.seek)) }
			}
			got := scan(t, it, first)
			var keys []string
			for _, p := range got {
				if p.v != "v"+p.k {
					t.Fatalf("key %q has value %q", p.k, p.v)
				}
				keys = append(keys, p.k)
			}
			if s := strings.Join(keys, " "); s != tc.want {
				t.Fatalf("got keys %q, want %q", s, tc.want)
			}
			// Once exhausted, Next stays false.
			if it.Next() || it.Valid() {
				t.Fatalf("Next after the end became valid")
			}
		})
	}
}

func testIterUnpositioned(t *testing.T, h *harness) {
	e, _ := h.open(t)
	putAll(t, e, engine.Data, model{"a": "1"})
	for _, rev := range []bool{false, true} {
		it := e.NewIterator(engine.Data, engine.IterOptions{Reverse: rev})
		if it.Valid() {
			t.Fatalf("reverse=%v: fresh iterator is Valid", rev)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("reverse=%v: fresh iterator Err = %v", rev, err)
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if err := it.Close(); err != nil {
			t.Fatalf("second Iterator.Close: %v", err)
		}
	}
	// An iterator over an empty keyspace is never valid.
	it := e.NewIterator(engine.Meta, engine.IterOptions{})
	defer it.Close()
	if it.First() || it.Seek(nil) || it.Valid() {
		t.Fatalf("iterator over empty keyspace became valid")
	}
}

// testIterReposition moves one iterator around: backwards seeks on a forward
// iterator, First after exhaustion, Seek after Next.
func testIterReposition(t *testing.T, h *harness) {
	e, _ := h.open(t)
	m := model{}
	for i := 0; i < 50; i++ {
		m[keyf("k%03d", i)] = value(i, i)
	}
	putAll(t, e, engine.Data, m)
	for _, rev := range []bool{false, true} {
		it := e.NewIterator(engine.Data, engine.IterOptions{Reverse: rev})
		want := m.within(nil, nil, rev)
		wantPairs(t, "first pass", scan(t, it, nil), want)
		wantPairs(t, "second pass after exhaustion", scan(t, it, nil), want)
		for _, i := range []int{40, 3, 27, 27, 0, 49} {
			k := keyf("k%03d", i)
			if !it.Seek([]byte(k)) || string(it.Key()) != k || string(it.Value()) != m[k] {
				t.Fatalf("reverse=%v: Seek(%s) landed on %q", rev, k, it.Key())
			}
			it.Next()
		}
		_ = it.Close()
	}
}

// testIterManyKeys iterates thousands of keys with uneven value sizes, so a
// paging implementation crosses many page boundaries in both directions.
func testIterManyKeys(t *testing.T, h *harness) {
	e, _ := h.open(t)
	const n = 5000
	m := model{}
	for lo := 0; lo < n; lo += 1000 {
		commit(t, e, func(b engine.Batch) {
			for i := lo; i < lo+1000; i++ {
				k := keyf("key/%06d", i)
				v := value(i, (i*37)%2500)
				if i%500 == 0 {
					v = value(i, 70000) // an occasional big value
				}
				b.Put(engine.Data, []byte(k), []byte(v))
				m[k] = v
			}
		})
	}
	t.Logf("Step 1: full scans")
	wantContents(t, e, engine.Data, m)

	t.Logf("Step 2: bounded scans")
	lo, hi := []byte("key/001000"), []byte("key/004000x")
	for _, rev := range []bool{false, true} {
		got := dump(t, e, engine.Data, engine.IterOptions{Lower: lo, Upper: hi, Reverse: rev})
		wantPairs(t, "bounded scan", got, m.within(lo, hi, rev))
		if len(got) != 3001 {
			t.Fatalf("bounded scan returned %d pairs, want 3001", len(got))
		}
	}

	t.Logf("Step 3: random seeks followed by runs of Next")
	rng := rand.New(rand.NewSource(7))
	for _, rev := range []bool{false, true} {
		it := e.NewIterator(engine.Data, engine.IterOptions{Reverse: rev})
		want := m.within(nil, nil, rev)
		for j := 0; j < 40; j++ {
			i := rng.Intn(n)
			pos := i
			if rev {
				pos = n - 1 - i
			}
			k := keyf("key/%06d", i)
			ok := it.Seek([]byte(k))
			for step := 0; step < 300 && pos+step < n; step++ {
				if !ok {
					t.Fatalf("reverse=%v: iterator ended early after Seek(%s)+%d", rev, k, step)
				}
				if got := (kv{string(it.Key()), string(it.Value())}); got != want[pos+step] {
					t.Fatalf("reverse=%v: Seek(%s)+%d = %v, want %v", rev, k, step, got, want[pos+step])
				}
				ok = it.Next()
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		_ = it.Close()
	}
}

// testIterPointInTime writes while iterators are half way through a large
// keyspace; they must keep seeing the state at their creation.
func testIterPointInTime(t *testing.T, h *harness) {
	e, _ := h.open(t)
	const n = 3000
	m := model{}
	for i := 0; i < n; i++ {
		m[keyf("pit/%05d", i*2)] = value(i, 10+(i*13)%600)
	}
	putAll(t, e, engine.Data, m)
	old := map[bool][]kv{false: m.within(nil, nil, false), true: m.within(nil, nil, true)}

	t.Logf("Step 1: open forward and reverse iterators and read a few keys")
	its := map[bool]engine.Iterator{}
	var got = map[bool][]kv{}
	for _, rev := range []bool{false, true} {
		it := e.NewIterator(engine.Data, engine.IterOptions{Reverse: rev})
		defer it.Close()
		its[rev] = it
		for ok := it.First(); ok && len(got[rev]) < 10; {
			got[rev] = append(got[rev], kv{string(it.Key()), string(it.Value())})
			ok = it.Next()
		}
	}

	t.Logf("Step 2: overwrite, delete and insert across the whole range")
	commit(t, e, func(b engine.Batch) {
		for i := 0; i < n; i++ {
			switch i % 3 {
			case 0:
				b.Put(engine.Data, []byte(keyf("pit/%05d", i*2)), []byte("new"))
			case 1:
				b.Delete(engine.Data, []byte(keyf("pit/%05d", i*2)))
			}
			b.Put(engine.Data, []byte(keyf("pit/%05d", i*2+1)), []byte("inserted"))
		}
		b.DeleteRange(engine.Data, []byte("pit/02000"), []byte("pit/04000"))
	})

	t.Logf("Step 3: the iterators finish on the old state")
	for _, rev := range []bool{false, true} {
		it := its[rev]
		for ok := it.Valid(); ok; ok = it.Next() {
			got[rev] = append(got[rev], kv{string(it.Key()), string(it.Value())})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		wantPairs(t, "iterator opened before the write", got[rev], old[rev])
	}

	t.Logf("Step 4: a new iterator sees the new state")
	for i := 0; i < n; i++ {
		k := keyf("pit/%05d", i*2)
		switch i % 3 {
		case 0:
			m[k] = "new"
		case 1:
			delete(m, k)
		}
		m[keyf("pit/%05d", i*2+1)] = "inserted"
	}
	m.deleteRange("pit/02000", "pit/04000")
	wantContents(t, e, engine.Data, m)
}

// testIterBoundsCopied reuses the caller's bound slices after NewIterator.
func testIterBoundsCopied(t *testing.T, h *harness) {
	e, _ := h.open(t)
	m := model{"a": "1", "b": "2", "c": "3", "d": "4"}
	putAll(t, e, engine.Data, m)
	lower, upper := []byte("b"), []byte("d")
	it := e.NewIterator(engine.Data, engine.IterOptions{Lower: lower, Upper: upper})
	defer it.Close()
	lower[0], upper[0] = 'a', 'z'
	wantPairs(t, "bounds scribbled after NewIterator", scan(t, it, nil), []kv{{"b", "2"}, {"c", "3"}})
}

// CountEntries counts the records of keyspace ks that r holds, failing t
// on an iterator error. Tests of the engines and of the layers above use
// it to see what a write or a compaction left behind.
func CountEntries(t testing.TB, r engine.Reader, ks engine.Keyspace) int {
	t.Helper()
	it := r.NewIterator(ks, engine.IterOptions{})
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatalf("counting %s entries: %v", ks, err)
	}
	return n
}
