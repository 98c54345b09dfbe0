package engine_test

import (
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/memory"
	"github.com/stretchr/testify/require"
)

// The tests live in engine_test because they run IndexedBatch over the memory
// engine, which imports engine.

func openMemory(t testing.TB) *memory.DB {
	t.Helper()
	db, err := memory.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// kvModel is the expected contents of one keyspace.
type kvModel map[string]string

func (m kvModel) clone() kvModel {
	c := make(kvModel, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (m kvModel) deleteRange(start, end string) {
	for k := range m {
		if k >= start && k < end {
			delete(m, k)
		}
	}
}

// expect returns "k=v" strings in iteration order within bounds, starting at
// seek (nil: from the first key).
func (m kvModel) expect(lower, upper, seek *string, reverse bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if lower != nil && k < *lower || upper != nil && k >= *upper {
			continue
		}
		if seek != nil && (!reverse && k < *seek || reverse && k > *seek) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if reverse {
		for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
			keys[i], keys[j] = keys[j], keys[i]
		}
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + m[k]
	}
	return out
}

func bs(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

// collect positions it (First, or Seek when seek is set) and reads it out.
func collect(t *testing.T, it engine.Iterator, seek *string) []string {
	t.Helper()
	var out []string
	ok := false
	if seek != nil {
		ok = it.Seek([]byte(*seek))
	} else {
		ok = it.First()
	}
	for ; ok; ok = it.Next() {
		if !it.Valid() {
			t.Fatal("positioned but not Valid")
		}
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	if it.Valid() || it.Err() != nil {
		t.Fatalf("after the end: Valid=%v Err=%v", it.Valid(), it.Err())
	}
	return out
}

func wantList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

func commitBase(t *testing.T, db engine.Engine, ks engine.Keyspace, m kvModel) {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	for k, v := range m {
		b.Put(ks, []byte(k), []byte(v))
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
}

func TestIndexedBatch_ReadYourWrites(t *testing.T) {
	db := openMemory(t)
	commitBase(t, db, engine.Data, kvModel{"a": "base", "b": "base", "c": "base", "e": "base"})
	commitBase(t, db, engine.Meta, kvModel{"b": "meta"})
	ib := engine.NewIndexedBatch(db)
	defer ib.Close()

	get := func(ks engine.Keyspace, k string) string {
		v, err := ib.Get(ks, []byte(k))
		if errors.Is(err, engine.ErrNotFound) {
			return "<none>"
		}
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		return string(v)
	}
	steps := []struct {
		name  string
		apply func()
		want  string // Data keys a..f, then Meta b
	}{
		{"nothing pending", func() {}, "a=base b=base c=base d=<none> e=base f=<none> | b=meta"},
		{"put shadows base", func() { ib.Put(engine.Data, []byte("b"), []byte("new")) },
			"a=base b=new c=base d=<none> e=base f=<none> | b=meta"},
		{"put adds key", func() { ib.Put(engine.Data, []byte("d"), []byte("added")) },
			"a=base b=new c=base d=added e=base f=<none> | b=meta"},
		{"delete hides base", func() { ib.Delete(engine.Data, []byte("c")) },
			"a=base b=new c=<none> d=added e=base f=<none> | b=meta"},
		{"range hides base and pending", func() { ib.DeleteRange(engine.Data, []byte("b"), []byte("e")) },
			"a=base b=<none> c=<none> d=<none> e=base f=<none> | b=meta"},
		{"put after range wins", func() { ib.Put(engine.Data, []byte("c"), []byte("again")) },
			"a=base b=<none> c=again d=<none> e=base f=<none> | b=meta"},
		{"delete after put", func() { ib.Delete(engine.Data, []byte("c")) },
			"a=base b=<none> c=<none> d=<none> e=base f=<none> | b=meta"},
		{"empty value", func() { ib.Put(engine.Data, []byte("f"), nil) },
			"a=base b=<none> c=<none> d=<none> e=base f= | b=meta"},
		{"other keyspace", func() { ib.Put(engine.Meta, []byte("b"), []byte("m2")) },
			"a=base b=<none> c=<none> d=<none> e=base f= | b=m2"},
	}
	for _, st := range steps {
		st.apply()
		var parts []string
		for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
			parts = append(parts, k+"="+get(engine.Data, k))
		}
		got := strings.Join(parts, " ") + " | b=" + get(engine.Meta, "b")
		if got != st.want {
			t.Fatalf("after %q:\n got: %s\nwant: %s", st.name, got, st.want)
		}
	}
	wantList(t, "merged forward", collect(t, ib.NewIterator(engine.Data, engine.IterOptions{}), nil),
		[]string{"a=base", "e=base", "f="})
	wantList(t, "merged reverse", collect(t, ib.NewIterator(engine.Data, engine.IterOptions{Reverse: true}), nil),
		[]string{"f=", "e=base", "a=base"})

	t.Logf("Step 2: nothing reached the base before Commit")
	if v, _ := db.Get(engine.Data, []byte("b")); string(v) != "base" {
		t.Fatalf("base b = %q before Commit", v)
	}
	if n := ib.Count(); n != 8 {
		t.Fatalf("Count = %d, want 8", n)
	}
	if err := ib.Commit(true); err != nil {
		t.Fatal(err)
	}
	wantList(t, "base after Commit", collect(t, db.NewIterator(engine.Data, engine.IterOptions{}), nil),
		[]string{"a=base", "e=base", "f="})
	wantList(t, "reads after Commit, before Reset", collect(t, ib.NewIterator(engine.Data, engine.IterOptions{}), nil),
		[]string{"a=base", "e=base", "f="})

	t.Logf("Step 3: Reset empties the overlay; reads are the base's")
	ib.Reset()
	if ib.Count() != 0 {
		t.Fatalf("Count after Reset = %d", ib.Count())
	}
	ib.Put(engine.Data, []byte("z"), []byte("1"))
	if err := ib.Commit(false); err != nil {
		t.Fatal(err)
	}
	wantList(t, "base after second Commit", collect(t, db.NewIterator(engine.Data, engine.IterOptions{}), nil),
		[]string{"a=base", "e=base", "f=", "z=1"})
}

func TestIndexedBatch_GetReturnsCopy(t *testing.T) {
	db := openMemory(t)
	ib := engine.NewIndexedBatch(db)
	defer ib.Close()
	key, val := []byte("k"), []byte("value")
	ib.Put(engine.Data, key, val)
	copy(key, "X")
	copy(val, "XXXXX")
	v, err := ib.Get(engine.Data, []byte("k"))
	if err != nil || string(v) != "value" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	copy(v, "YYYYY")
	if v, _ := ib.Get(engine.Data, []byte("k")); string(v) != "value" {
		t.Fatalf("Get after scribbling over a returned value = %q", v)
	}
}

// TestIndexedBatch_IteratorPointInTime writes to the batch while an iterator
// is open: the iterator keeps the view it was created with.
func TestIndexedBatch_IteratorPointInTime(t *testing.T) {
	db := openMemory(t)
	base := kvModel{}
	for i := 0; i < 200; i += 2 {
		base[fmt.Sprintf("k%03d", i)] = "b"
	}
	commitBase(t, db, engine.Data, base)
	ib := engine.NewIndexedBatch(db)
	defer ib.Close()
	for _, rev := range []bool{false, true} {
		model := base.clone()
		for i := 1; i < 200; i += 4 {
			k := fmt.Sprintf("k%03d", i)
			ib.Put(engine.Data, []byte(k), []byte("o"))
			model[k] = "o"
		}
		it := ib.NewIterator(engine.Data, engine.IterOptions{Reverse: rev})
		want := model.expect(nil, nil, nil, rev)
		var got []string
		for ok := it.First(); ok; ok = it.Next() {
			got = append(got, string(it.Key())+"="+string(it.Value()))
			if len(got) == 20 {
				// Rewrite everything under the iterator.
				for i := 0; i < 200; i++ {
					ib.Put(engine.Data, []byte(fmt.Sprintf("k%03d", i)), []byte("late"))
				}
				ib.DeleteRange(engine.Data, []byte("k050"), []byte("k150"))
			}
		}
		it.Close()
		wantList(t, fmt.Sprintf("reverse=%v iterator opened before the writes", rev), got, want)
		ib.Reset()
	}
}

func TestIndexedBatch_BadKeyspaceAndClose(t *testing.T) {
	db := openMemory(t)
	commitBase(t, db, engine.Data, kvModel{"a": "1"})
	ib := engine.NewIndexedBatch(db)
	if _, err := ib.Get(engine.NumKeyspaces, []byte("a")); !errors.Is(err, engine.ErrBadKeyspace) {
		t.Fatalf("Get(bad keyspace) = %v", err)
	}
	it := ib.NewIterator(engine.NumKeyspaces, engine.IterOptions{})
	if it.First() || !errors.Is(it.Err(), engine.ErrBadKeyspace) {
		t.Fatalf("iterator on bad keyspace: valid=%v err=%v", it.Valid(), it.Err())
	}
	it.Close()
	ib.Put(engine.Data, []byte("b"), []byte("2"))
	ib.Put(engine.NumKeyspaces, []byte("b"), []byte("2"))
	ib.DeleteRange(255, []byte("a"), []byte("z"))
	if err := ib.Commit(false); !errors.Is(err, engine.ErrBadKeyspace) {
		t.Fatalf("Commit with bad keyspace = %v", err)
	}
	if _, err := db.Get(engine.Data, []byte("b")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("poisoned batch leaked a write: %v", err)
	}

	if err := ib.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ib.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ib.Put(engine.Data, []byte("c"), []byte("3")) // ignored, must not panic
	if _, err := ib.Get(engine.Data, []byte("a")); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
	if err := ib.Commit(false); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Commit after Close = %v", err)
	}
	if it := ib.NewIterator(engine.Data, engine.IterOptions{}); it.First() || !errors.Is(it.Err(), engine.ErrClosed) {
		t.Fatalf("iterator after Close: err=%v", it.Err())
	}
}

// TestIndexedBatch_RandomizedModel drives random puts, deletes and range
// deletes into an IndexedBatch over a pre-filled base, and after every few
// operations checks Get and bounded forward/reverse iteration (First and
// Seek) against a model. Every few rounds it commits, checks the base, and
// resets.
func TestIndexedBatch_RandomizedModel(t *testing.T) {
	rng := rand.New(rand.NewSource(20260601))
	db := openMemory(t)
	keyspaces := []engine.Keyspace{engine.Data, engine.Meta}
	const space = 120
	key := func() string {
		k := fmt.Sprintf("k%03d", rng.Intn(space))
		switch rng.Intn(8) {
		case 0:
			k += "\x00"
		case 1:
			k += "\xff"
		}
		return k
	}
	optKey := func() *string {
		if rng.Intn(3) == 0 {
			return nil
		}
		k := key()
		return &k
	}

	models := map[engine.Keyspace]kvModel{}
	for _, ks := range keyspaces {
		models[ks] = kvModel{}
		for i := 0; i < space; i++ {
			if rng.Intn(2) == 0 {
				models[ks][fmt.Sprintf("k%03d", i)] = fmt.Sprintf("base%d", i)
			}
		}
		commitBase(t, db, ks, models[ks])
	}

	ib := engine.NewIndexedBatch(db)
	defer ib.Close()
	checks := 0
	for round := 0; round < 400; round++ {
		ks := keyspaces[rng.Intn(len(keyspaces))]
		m := models[ks]
		for n := 1 + rng.Intn(6); n > 0; n-- {
			switch p := rng.Intn(20); {
			case p < 11:
				k, v := key(), fmt.Sprintf("r%d-%d", round, n)
				if rng.Intn(10) == 0 {
					v = ""
				}
				ib.Put(ks, []byte(k), []byte(v))
				m[k] = v
			case p < 17:
				k := key()
				ib.Delete(ks, []byte(k))
				delete(m, k)
			default:
				lo, hi := key(), key()
				if lo > hi {
					lo, hi = hi, lo
				}
				ib.DeleteRange(ks, []byte(lo), []byte(hi))
				m.deleteRange(lo, hi)
			}
		}

		for j := 0; j < 10; j++ {
			k := key()
			v, err := ib.Get(ks, []byte(k))
			want, ok := m[k]
			switch {
			case !ok && !errors.Is(err, engine.ErrNotFound):
				t.Fatalf("round %d: Get(%q) = %q, %v; want not found", round, k, v, err)
			case ok && (err != nil || string(v) != want):
				t.Fatalf("round %d: Get(%q) = %q, %v; want %q", round, k, v, err, want)
			}
		}
		for j := 0; j < 4; j++ {
			lower, upper, rev := optKey(), optKey(), rng.Intn(2) == 0
			var seek *string
			if rng.Intn(2) == 0 {
				seek = optKey()
			}
			it := ib.NewIterator(ks, engine.IterOptions{Lower: bs(lower), Upper: bs(upper), Reverse: rev})
			got := collect(t, it, seek)
			it.Close()
			what := fmt.Sprintf("round %d ks %v lower=%q upper=%q seek=%q reverse=%v", round, ks, deref(lower), deref(upper), deref(seek), rev)
			wantList(t, what, got, m.expect(lower, upper, seek, rev))
			checks++
		}

		if round%25 == 24 {
			if err := ib.Commit(false); err != nil {
				t.Fatal(err)
			}
			for _, ks := range keyspaces {
				wantList(t, fmt.Sprintf("round %d: base %v after Commit", round, ks),
					collect(t, db.NewIterator(ks, engine.IterOptions{}), nil), models[ks].expect(nil, nil, nil, false))
			}
			ib.Reset()
		}
	}
	t.Logf("%d merged iterations checked against the model", checks)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestIndexedBatch_ValueSizes crosses the arena's chunk and large-value
// thresholds, as the first write after Reset and later.
func TestIndexedBatch_ValueSizes(t *testing.T) {
	db := openMemory(t)
	ib := engine.NewIndexedBatch(db)
	defer ib.Close()
	sizes := []int{3000, 0, 1, 1023, 1024, 4096, 4097, 40000, 3 << 19, 900, 3000}
	for round := 0; round < 2; round++ {
		want := kvModel{}
		for i, n := range sizes {
			k := fmt.Sprintf("k%02d", i)
			v := strings.Repeat(string(rune('a'+i)), n)
			ib.Put(engine.Data, []byte(k), []byte(v))
			want[k] = v
		}
		for k, v := range want {
			got, err := ib.Get(engine.Data, []byte(k))
			if err != nil || string(got) != v {
				t.Fatalf("round %d: Get(%s): %d bytes, %v; want %d bytes", round, k, len(got), err, len(v))
			}
		}
		wantList(t, "merged scan", collect(t, ib.NewIterator(engine.Data, engine.IterOptions{}), nil), want.expect(nil, nil, nil, false))
		ib.Reset()
	}
}

func TestIndexedBatch_PutAllocations(t *testing.T) {
	db := openMemory(t)
	ib := engine.NewIndexedBatch(db)
	defer ib.Close()
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key/%08d", i))
	}
	val := make([]byte, 64)
	allocs := testing.AllocsPerRun(20, func() {
		ib.Reset()
		for _, k := range keys {
			ib.Put(engine.Data, k, val)
		}
	})
	perPut := allocs / float64(len(keys))
	t.Logf("%.2f allocations per Put (memory base batch: 1 per op)", perPut)
	// One for the memory base batch's copy, the rest amortised: arena chunks,
	// B-tree node splits, base op slice growth.
	if perPut > 1.3 {
		t.Fatalf("%.2f allocations per Put, want <= 1.3", perPut)
	}
}

// BenchmarkIndexedBatch_ApplyPattern mimics the apply loop: for each of 100
// entries, read a key then write two.
func BenchmarkIndexedBatch_ApplyPattern(b *testing.B) {
	db := openMemory(b)
	base := db.NewBatch()
	for i := 0; i < 10000; i++ {
		base.Put(engine.Data, []byte(fmt.Sprintf("key/%08d", i)), make([]byte, 100))
	}
	if err := base.Commit(false); err != nil {
		b.Fatal(err)
	}
	base.Close()
	ib := engine.NewIndexedBatch(db)
	defer ib.Close()
	keys := make([][]byte, 100)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key/%08d", i*97))
	}
	val := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ib.Reset()
		for _, k := range keys {
			if _, err := ib.Get(engine.Data, k); err != nil {
				b.Fatal(err)
			}
			ib.Put(engine.Data, k, val)
			ib.Put(engine.ChangeLog, k, val)
		}
	}
}

// BenchmarkIndexedBatch_MergedScan iterates 10,000 base keys with 1,000
// pending overwrites and a pending range delete.
func BenchmarkIndexedBatch_MergedScan(b *testing.B) {
	db := openMemory(b)
	base := db.NewBatch()
	for i := 0; i < 10000; i++ {
		base.Put(engine.Data, []byte(fmt.Sprintf("key/%08d", i)), make([]byte, 100))
	}
	if err := base.Commit(false); err != nil {
		b.Fatal(err)
	}
	base.Close()
	ib := engine.NewIndexedBatch(db)
	defer ib.Close()
	for i := 0; i < 10000; i += 10 {
		ib.Put(engine.Data, []byte(fmt.Sprintf("key/%08d", i)), []byte("x"))
	}
	ib.DeleteRange(engine.Data, []byte("key/00005000"), []byte("key/00005100"))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		it := ib.NewIterator(engine.Data, engine.IterOptions{})
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		it.Close()
		if n != 9900 {
			b.Fatalf("scanned %d keys", n)
		}
	}
}

// TestIndexedBatch_IteratorsKeepTheirViewAcrossClones: iterators read the
// overlay's tree itself; a write while one is open moves the batch to a
// clone. Iterators opened before and after such a write, closed in any
// order, each keep the view of their opening.
func TestIndexedBatch_IteratorsKeepTheirViewAcrossClones(t *testing.T) {
	t.Logf("Step 1: a batch with a0, a1")
	db := openMemory(t)
	ib := engine.NewIndexedBatch(db)
	defer ib.Close()
	ib.Put(engine.Data, []byte("a0"), []byte("v0"))
	ib.Put(engine.Data, []byte("a1"), []byte("v1"))
	all := func(it engine.Iterator) []string {
		var out []string
		for ok := it.First(); ok; ok = it.Next() {
			out = append(out, string(it.Key())+"="+string(it.Value()))
		}
		return out
	}

	t.Logf("Step 2: it1 opened, a2 written (clone), it2 opened, a3 written (clone), it1 closed, a4 written")
	it1 := ib.NewIterator(engine.Data, engine.IterOptions{})
	ib.Put(engine.Data, []byte("a2"), []byte("v2"))
	it2 := ib.NewIterator(engine.Data, engine.IterOptions{})
	ib.Put(engine.Data, []byte("a3"), []byte("v3"))
	it3 := ib.NewIterator(engine.Data, engine.IterOptions{})
	require.NoError(t, it1.Close()) // must not release it3's hold on the current tree
	ib.Put(engine.Data, []byte("a4"), []byte("v4"))
	ib.DeleteRange(engine.Data, []byte("a0"), []byte("a2"))

	t.Logf("Step 3: each iterator sees the batch as it was when opened")
	require.Equal(t, []string{"a0=v0", "a1=v1", "a2=v2"}, all(it2))
	require.Equal(t, []string{"a0=v0", "a1=v1", "a2=v2", "a3=v3"}, all(it3))
	require.NoError(t, it2.Close())
	require.NoError(t, it3.Close())
	it4 := ib.NewIterator(engine.Data, engine.IterOptions{})
	require.Equal(t, []string{"a2=v2", "a3=v3", "a4=v4"}, all(it4))
	require.NoError(t, it4.Close())
}

// TestIndexedBatch_PutUnindexed: an unindexed write is invisible to reads
// through the batch until it commits, then visible in the base like any
// other write of the batch.
func TestIndexedBatch_PutUnindexed(t *testing.T) {
	t.Logf("Step 1: a batch with one indexed and one unindexed write")
	db := openMemory(t)
	ib := engine.NewIndexedBatch(db)
	defer ib.Close()
	ib.Put(engine.Data, []byte("seen"), []byte("1"))
	ib.PutUnindexed(engine.ChangeLog, []byte("log"), []byte("2"))
	require.Equal(t, 2, ib.Count())

	t.Logf("Step 2: reads through the batch see only the indexed write")
	v, err := ib.Get(engine.Data, []byte("seen"))
	require.NoError(t, err)
	require.Equal(t, "1", string(v))
	_, err = ib.Get(engine.ChangeLog, []byte("log"))
	require.ErrorIs(t, err, engine.ErrNotFound)

	t.Logf("Step 3: after Commit the base holds both")
	require.NoError(t, ib.Commit(false))
	v, err = db.Get(engine.ChangeLog, []byte("log"))
	require.NoError(t, err)
	require.Equal(t, "2", string(v))
}
