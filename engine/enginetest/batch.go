package enginetest

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"testing"

	"github.com/metastore/metastore/engine"
)

// batchCases cover point reads and the write path.
var batchCases = []suiteCase{
	{"GetNotFound", testGetNotFound},
	{"PutGet", testPutGet},
	{"GetReturnsCopy", testGetReturnsCopy},
	{"Delete", testDelete},
	{"DeleteRange", testDeleteRange},
	{"BatchOrder", testBatchOrder},
	{"BatchAtomicity", testBatchAtomicity},
	{"BatchCountSizeReset", testBatchCountSizeReset},
	{"KeyspaceIsolation", testKeyspaceIsolation},
	{"InvalidKeyspace", testInvalidKeyspace},
	{"BinaryKeys", testBinaryKeys},
	{"EmptyValues", testEmptyValues},
	{"LargeValues", testLargeValues},
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func testGetNotFound(t *testing.T, h *harness) {
	e, _ := h.open(t)
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		wantNotFound(t, e, ks, "missing")
		wantNotFound(t, e, ks, "")
	}
	commit(t, e, func(b engine.Batch) { b.Put(engine.Data, []byte("b"), []byte("1")) })
	// Neighbours of a present key are still absent.
	for _, k := range []string{"a", "b\x00", "ba", "c", "", "\xff"} {
		wantNotFound(t, e, engine.Data, k)
	}
	wantValue(t, e, engine.Data, "b", "1")
}

func testPutGet(t *testing.T, h *harness) {
	e, _ := h.open(t)
	key, val := []byte("key"), []byte("value-1")
	b := e.NewBatch()
	defer b.Close()
	b.Put(engine.Data, key, val)
	// Put copies: scribbling over the caller's slices must not matter.
	copy(key, "XXX")
	copy(val, "XXXXXXX")
	if err := b.Commit(true); err != nil {
		t.Fatalf("Commit(sync): %v", err)
	}
	wantValue(t, e, engine.Data, "key", "value-1")
	wantNotFound(t, e, engine.Data, "XXX")

	commit(t, e, func(b engine.Batch) { b.Put(engine.Data, []byte("key"), []byte("value-2")) })
	wantValue(t, e, engine.Data, "key", "value-2")
}

func testGetReturnsCopy(t *testing.T, h *harness) {
	e, _ := h.open(t)
	commit(t, e, func(b engine.Batch) { b.Put(engine.Data, []byte("k"), []byte("original")) })
	v, err := e.Get(engine.Data, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	copy(v, "XXXXXXXX")
	wantValue(t, e, engine.Data, "k", "original")
}

func testDelete(t *testing.T, h *harness) {
	e, _ := h.open(t)
	putAll(t, e, engine.Data, model{"a": "1", "b": "2", "c": "3"})
	commit(t, e, func(b engine.Batch) {
		b.Delete(engine.Data, []byte("b"))
		b.Delete(engine.Data, []byte("never-written")) // deleting a missing key is fine
	})
	wantContents(t, e, engine.Data, model{"a": "1", "c": "3"})
}

func testDeleteRange(t *testing.T, h *harness) {
	e, _ := h.open(t)
	m := model{}
	for _, k := range []string{"a", "b", "c", "c\x00", "d", "dz", "e", "f", "g"} {
		m[k] = "v" + k
	}
	putAll(t, e, engine.Data, m)
	putAll(t, e, engine.Meta, m)

	t.Logf("Step 1: DeleteRange [c, e) removes c..dz, keeps e")
	commit(t, e, func(b engine.Batch) { b.DeleteRange(engine.Data, []byte("c"), []byte("e")) })
	m.deleteRange("c", "e")
	wantContents(t, e, engine.Data, m)

	t.Logf("Step 2: an empty range [f, f) deletes nothing")
	commit(t, e, func(b engine.Batch) { b.DeleteRange(engine.Data, []byte("f"), []byte("f")) })
	wantContents(t, e, engine.Data, m)

	t.Logf("Step 3: a range with bounds between keys, [a\\x00, b\\x00)")
	commit(t, e, func(b engine.Batch) { b.DeleteRange(engine.Data, []byte("a\x00"), []byte("b\x00")) })
	m.deleteRange("a\x00", "b\x00")
	wantContents(t, e, engine.Data, m)

	t.Logf("Step 4: the other keyspace was untouched")
	full := model{}
	for _, k := range []string{"a", "b", "c", "c\x00", "d", "dz", "e", "f", "g"} {
		full[k] = "v" + k
	}
	wantContents(t, e, engine.Meta, full)
}

// testBatchOrder checks that operations in one batch apply in order.
func testBatchOrder(t *testing.T, h *harness) {
	type op struct {
		kind       byte // 'p' put, 'd' delete, 'r' delete range
		key, value string
	}
	tests := []struct {
		name string
		ops  []op
		want model
	}{
		{"put then delete", []op{{'p', "k", "1"}, {'d', "k", ""}}, model{}},
		{"delete then put", []op{{'d', "k", ""}, {'p', "k", "2"}}, model{"k": "2"}},
		{"put twice", []op{{'p', "k", "1"}, {'p', "k", "2"}}, model{"k": "2"}},
		{"put then range", []op{{'p', "k1", "1"}, {'p', "k2", "2"}, {'r', "k1", "k2"}}, model{"k2": "2"}},
		{"range then put", []op{{'p', "k1", "1"}, {'r', "k0", "k9"}, {'p', "k1", "3"}}, model{"k1": "3"}},
		{"put range put range", []op{{'p', "a", "1"}, {'r', "a", "b"}, {'p', "a", "2"}, {'r', "a", "a\x00"}}, model{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := h.open(t)
			commit(t, e, func(b engine.Batch) {
				for _, o := range tc.ops {
					switch o.kind {
					case 'p':
						b.Put(engine.Data, []byte(o.key), []byte(o.value))
					case 'd':
						b.Delete(engine.Data, []byte(o.key))
					case 'r':
						b.DeleteRange(engine.Data, []byte(o.key), []byte(o.value))
					}
				}
			})
			wantContents(t, e, engine.Data, tc.want)
		})
	}
}

func testBatchAtomicity(t *testing.T, h *harness) {
	e, _ := h.open(t)
	putAll(t, e, engine.Meta, model{"gone": "x"})

	t.Logf("Step 1: writes are invisible until Commit")
	b := e.NewBatch()
	defer b.Close()
	b.Put(engine.Data, []byte("a"), []byte("1"))
	b.Put(engine.RaftLog, []byte("a"), []byte("2"))
	b.Delete(engine.Meta, []byte("gone"))
	wantNotFound(t, e, engine.Data, "a")
	wantNotFound(t, e, engine.RaftLog, "a")
	wantValue(t, e, engine.Meta, "gone", "x")

	t.Logf("Step 2: Commit makes all of them visible, across keyspaces")
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	wantValue(t, e, engine.Data, "a", "1")
	wantValue(t, e, engine.RaftLog, "a", "2")
	wantNotFound(t, e, engine.Meta, "gone")

	t.Logf("Step 3: a batch closed without Commit leaves no trace")
	b2 := e.NewBatch()
	b2.Put(engine.Data, []byte("b"), []byte("never"))
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b2.Close(); err != nil {
		t.Fatalf("second Batch.Close: %v", err)
	}
	if err := b2.Commit(false); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Commit after Batch.Close = %v, want engine.ErrClosed", err)
	}
	wantNotFound(t, e, engine.Data, "b")
}

func testBatchCountSizeReset(t *testing.T, h *harness) {
	e, _ := h.open(t)
	b := e.NewBatch()
	defer b.Close()
	if b.Count() != 0 {
		t.Fatalf("new batch Count = %d", b.Count())
	}
	empty := b.Size()
	if empty < 0 || empty > 64 {
		t.Fatalf("new batch Size = %d, want a small header at most", empty)
	}

	t.Logf("Step 1: Count counts every operation; Size covers the bytes")
	val := bytes.Repeat([]byte("v"), 1000)
	b.Put(engine.Data, []byte("k1"), val)
	b.Put(engine.Meta, []byte("k2"), val)
	b.Delete(engine.Data, []byte("k3"))
	b.DeleteRange(engine.Data, []byte("x"), []byte("y"))
	if b.Count() != 4 {
		t.Fatalf("Count = %d, want 4", b.Count())
	}
	if min := 2*(2+1000) + 2 + 2; b.Size() < min {
		t.Fatalf("Size = %d, want >= %d", b.Size(), min)
	}

	t.Logf("Step 2: Reset empties the batch")
	b.Reset()
	if b.Count() != 0 || b.Size() != empty {
		t.Fatalf("after Reset: Count = %d, Size = %d; want 0, %d", b.Count(), b.Size(), empty)
	}
	if err := b.Commit(false); err != nil {
		t.Fatalf("Commit of empty batch: %v", err)
	}
	wantNotFound(t, e, engine.Data, "k1")

	t.Logf("Step 3: reuse after Commit + Reset applies only the new writes")
	b.Put(engine.Data, []byte("first"), []byte("1"))
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	commit(t, e, func(o engine.Batch) { o.Delete(engine.Data, []byte("first")) })
	b.Reset()
	b.Put(engine.Data, []byte("second"), []byte("2"))
	if b.Count() != 1 {
		t.Fatalf("Count after Reset and one Put = %d", b.Count())
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	wantContents(t, e, engine.Data, model{"second": "2"})
}

func testKeyspaceIsolation(t *testing.T, h *harness) {
	e, _ := h.open(t)
	models := make([]model, engine.NumKeyspaces)
	commit(t, e, func(b engine.Batch) {
		for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
			models[ks] = model{}
			for i := 0; i < 5; i++ {
				k := keyf("shared/%d", i)
				v := keyf("%s-%d", ks, i)
				b.Put(ks, []byte(k), []byte(v))
				models[ks][k] = v
			}
			own := keyf("only-%s", ks)
			b.Put(ks, []byte(own), []byte("x"))
			models[ks][own] = "x"
		}
	})
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		wantContents(t, e, ks, models[ks])
	}

	t.Logf("Step 2: deletes in one keyspace leave the others alone")
	commit(t, e, func(b engine.Batch) {
		b.Delete(engine.Data, []byte("shared/0"))
		b.DeleteRange(engine.ChangeLog, []byte("shared/"), []byte("shared0"))
	})
	delete(models[engine.Data], "shared/0")
	models[engine.ChangeLog].deleteRange("shared/", "shared0")
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		wantContents(t, e, ks, models[ks])
	}
}

func testInvalidKeyspace(t *testing.T, h *harness) {
	e, _ := h.open(t)
	putAll(t, e, engine.Data, model{"a": "1"})
	bad := []engine.Keyspace{engine.NumKeyspaces, engine.NumKeyspaces + 1, 255}
	for _, ks := range bad {
		if _, err := e.Get(ks, []byte("a")); !errors.Is(err, engine.ErrBadKeyspace) {
			t.Fatalf("Get(%d) error = %v, want engine.ErrBadKeyspace", ks, err)
		}
		it := e.NewIterator(ks, engine.IterOptions{})
		if it.First() || it.Valid() || it.Seek([]byte("a")) || it.Next() {
			t.Fatalf("iterator over keyspace %d became valid", ks)
		}
		if !errors.Is(it.Err(), engine.ErrBadKeyspace) {
			t.Fatalf("iterator over keyspace %d: Err = %v, want engine.ErrBadKeyspace", ks, it.Err())
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ApproximateSize(ks, nil, nil); !errors.Is(err, engine.ErrBadKeyspace) {
			t.Fatalf("ApproximateSize(%d) error = %v", ks, err)
		}
		if err := e.Compact(ks, nil, nil); !errors.Is(err, engine.ErrBadKeyspace) {
			t.Fatalf("Compact(%d) error = %v", ks, err)
		}
		s := e.NewSnapshot()
		if _, err := s.Get(ks, []byte("a")); !errors.Is(err, engine.ErrBadKeyspace) {
			t.Fatalf("Snapshot.Get(%d) error = %v", ks, err)
		}
		_ = s.Close()
	}

	t.Logf("Step 2: a batch touching a bad keyspace commits nothing")
	b := e.NewBatch()
	defer b.Close()
	b.Put(engine.Data, []byte("b"), []byte("2"))
	b.Delete(engine.Data, []byte("a"))
	b.Put(engine.NumKeyspaces, []byte("b"), []byte("2"))
	b.Delete(255, []byte("b"))
	b.DeleteRange(engine.NumKeyspaces, []byte("a"), []byte("z"))
	if err := b.Commit(true); !errors.Is(err, engine.ErrBadKeyspace) {
		t.Fatalf("Commit of batch with bad keyspace = %v, want engine.ErrBadKeyspace", err)
	}
	wantContents(t, e, engine.Data, model{"a": "1"})

	t.Logf("Step 3: Reset clears the poison; the engine still works")
	b.Reset()
	b.Put(engine.Data, []byte("c"), []byte("3"))
	if err := b.Commit(false); err != nil {
		t.Fatalf("Commit after Reset: %v", err)
	}
	wantContents(t, e, engine.Data, model{"a": "1", "c": "3"})
}

func testBinaryKeys(t *testing.T, h *harness) {
	e, _ := h.open(t)
	keys := []string{
		"", "\x00", "\x00\x00", "\x00\xff", "\x01", "a", "a\x00", "a\x00b", "a\xff",
		"\x7f", "\x80", "\xfe", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
	}
	m := model{}
	for i, k := range keys {
		m[k] = keyf("v%d\x00\xff", i)
	}
	putAll(t, e, engine.Data, m)
	wantContents(t, e, engine.Data, m)

	// Bounds made of the extreme bytes.
	got := dump(t, e, engine.Data, engine.IterOptions{Lower: []byte("\x00"), Upper: []byte("\xff")})
	wantPairs(t, "[\\x00, \\xff)", got, m.within([]byte("\x00"), []byte("\xff"), false))
	got = dump(t, e, engine.Data, engine.IterOptions{Lower: []byte("\xff"), Reverse: true})
	wantPairs(t, "[\\xff, nil) reverse", got, m.within([]byte("\xff"), nil, true))
	got = dump(t, e, engine.Data, engine.IterOptions{Upper: []byte("\x00"), Reverse: true})
	wantPairs(t, "[nil, \\x00) reverse: only the empty key", got, []kv{{"", m[""]}})
}

func testEmptyValues(t *testing.T, h *harness) {
	e, _ := h.open(t)
	commit(t, e, func(b engine.Batch) {
		b.Put(engine.Data, []byte("nil"), nil)
		b.Put(engine.Data, []byte("empty"), []byte{})
		b.Put(engine.Data, []byte("full"), []byte("x"))
	})
	for _, k := range []string{"nil", "empty"} {
		v, err := e.Get(engine.Data, []byte(k))
		if err != nil || len(v) != 0 {
			t.Fatalf("Get(%q) = %q, %v; want empty value, nil error", k, v, err)
		}
	}
	wantContents(t, e, engine.Data, model{"nil": "", "empty": "", "full": "x"})
}

func testLargeValues(t *testing.T, h *harness) {
	e, _ := h.open(t)
	rng := rand.New(rand.NewSource(1))
	const size = 3 << 19 // 1.5 MiB
	m := model{}
	commit(t, e, func(b engine.Batch) {
		for i := 0; i < 3; i++ {
			v := randomBytes(rng, size+i)
			k := keyf("large/%d", i)
			b.Put(engine.Data, []byte(k), v)
			m[k] = string(v)
		}
		b.Put(engine.Data, []byte("small"), []byte("s"))
		m["small"] = "s"
	})
	wantContents(t, e, engine.Data, m)
	it := e.NewIterator(engine.Data, engine.IterOptions{Reverse: true})
	defer it.Close()
	if !it.Seek([]byte("large/1")) || string(it.Key()) != "large/1" || len(it.Value()) != size+1 {
		t.Fatalf("reverse Seek(large/1) landed on %q with %d bytes", it.Key(), len(it.Value()))
	}
}
