package enginetest

import (
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/metastore/metastore/engine"
)

// lifecycleCases cover snapshots, concurrency, persistence, sizes and Close.
var lifecycleCases = []suiteCase{
	{"SnapshotIsolation", testSnapshotIsolation},
	{"ConcurrentReadersOneWriter", testConcurrency},
	{"Checkpoint", testCheckpoint},
	{"Durability", testDurability},
	{"Sizes", testSizes},
	{"Compact", testCompact},
	{"Close", testClose},
	{"RandomizedModel", testRandomizedModel},
}

func testSnapshotIsolation(t *testing.T, h *harness) {
	e, _ := h.open(t)
	before := model{"a": "1", "b": "1", "c": "1"}
	putAll(t, e, engine.Data, before)
	putAll(t, e, engine.Meta, model{"m": "1"})

	t.Logf("Step 1: take a snapshot and an iterator on it, then write")
	s := e.NewSnapshot()
	defer s.Close()
	early := s.NewIterator(engine.Data, engine.IterOptions{})
	defer early.Close()
	commit(t, e, func(b engine.Batch) {
		b.Put(engine.Data, []byte("a"), []byte("2"))
		b.Delete(engine.Data, []byte("b"))
		b.Put(engine.Data, []byte("d"), []byte("2"))
		b.DeleteRange(engine.Data, []byte("c"), []byte("c\x00"))
		b.Put(engine.Meta, []byte("m"), []byte("2"))
	})

	t.Logf("Step 2: the snapshot still shows the old state, also through iterators made later")
	wantContents(t, s, engine.Data, before)
	wantValue(t, s, engine.Meta, "m", "1")
	wantPairs(t, "iterator made before the write", scan(t, early, nil), before.within(nil, nil, false))
	got := dump(t, s, engine.Data, engine.IterOptions{Lower: []byte("b"), Reverse: true})
	wantPairs(t, "bounded reverse snapshot iterator", got, before.within([]byte("b"), nil, true))

	t.Logf("Step 3: the engine shows the new state")
	wantContents(t, e, engine.Data, model{"a": "2", "d": "2"})
	wantValue(t, e, engine.Meta, "m", "2")

	t.Logf("Step 4: a closed snapshot refuses reads; Close is idempotent")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Snapshot.Close: %v", err)
	}
	if _, err := s.Get(engine.Data, []byte("a")); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Get on closed snapshot = %v, want engine.ErrClosed", err)
	}
}

// testConcurrency runs readers against one writer. Each batch sets a counter
// in two keyspaces and a row of ten keys to the batch number, so any reader
// that sees part of a batch, or goes back in time, notices.
func testConcurrency(t *testing.T, h *harness) {
	e, _ := h.open(t)
	const (
		batches = 150
		readers = 3
		rowLen  = 10
	)
	write := func(i int) {
		v := []byte(strconv.Itoa(i))
		commit(t, e, func(b engine.Batch) {
			b.Put(engine.Data, []byte("ctr"), v)
			// Clearing the row first means a reader that sees part of the
			// batch may find the row empty.
			b.DeleteRange(engine.Data, []byte("row/"), []byte("row0"))
			b.Put(engine.Meta, []byte("ctr"), v)
			for j := 0; j < rowLen; j++ {
				b.Put(engine.Data, []byte(keyf("row/%02d", j)), v)
			}
		})
	}
	write(0)

	t.Logf("Step 1: starting %d readers", readers)
	var (
		wg      sync.WaitGroup
		done    = make(chan struct{})
		errc    = make(chan error, readers)
		started = make(chan struct{}, readers)
	)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- readLoop(e, done, started, rowLen)
		}()
	}
	for r := 0; r < readers; r++ {
		<-started // every reader has finished a round: they overlap the writes
	}

	t.Logf("Step 2: writing %d batches", batches)
	for i := 1; i <= batches; i++ {
		write(i)
	}
	close(done)

	t.Logf("Step 3: waiting for readers")
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantValue(t, e, engine.Data, "ctr", strconv.Itoa(batches))
}

// readLoop checks batch atomicity and monotonic progress until done closes
// (and at least a few rounds ran).
func readLoop(e engine.Engine, done <-chan struct{}, started chan<- struct{}, rowLen int) error {
	last := -1
	atoi := func(b []byte) int { n, _ := strconv.Atoi(string(b)); return n }
	signalled := false
	defer func() {
		if !signalled { // an early error must not leave the writer waiting
			started <- struct{}{}
		}
	}()
	for round := 0; ; round++ {
		if round == 1 {
			started <- struct{}{}
			signalled = true
		}
		select {
		case <-done:
			if round >= 3 {
				return nil
			}
		default:
		}
		// A point read never goes back in time.
		v, err := e.Get(engine.Data, []byte("ctr"))
		if err != nil {
			return fmt.Errorf("Get: %w", err)
		}
		if n := atoi(v); n < last {
			return fmt.Errorf("counter went back from %d to %d", last, n)
		} else {
			last = n
		}
		// A snapshot sees whole batches across keyspaces.
		s := e.NewSnapshot()
		d, err1 := s.Get(engine.Data, []byte("ctr"))
		m, err2 := s.Get(engine.Meta, []byte("ctr"))
		if err1 != nil || err2 != nil {
			s.Close()
			return fmt.Errorf("snapshot Get: %v, %v", err1, err2)
		}
		if string(d) != string(m) {
			s.Close()
			return fmt.Errorf("snapshot saw half a batch: data ctr %s, meta ctr %s", d, m)
		}
		err = checkRow(s, atoi(d), rowLen)
		s.Close()
		if err != nil {
			return err
		}
		// An iterator on the engine sees one whole batch too.
		it := e.NewIterator(engine.Data, engine.IterOptions{Lower: []byte("row/"), Upper: []byte("row0"), Reverse: round%2 == 1})
		var vals []string
		for ok := it.First(); ok; ok = it.Next() {
			vals = append(vals, string(it.Value()))
		}
		err = it.Err()
		it.Close()
		if err != nil {
			return err
		}
		if len(vals) != rowLen {
			return fmt.Errorf("iterator saw %d row keys, want %d", len(vals), rowLen)
		}
		for _, x := range vals {
			if x != vals[0] {
				return fmt.Errorf("iterator saw half a batch: %v", vals)
			}
		}
	}
}

func checkRow(r engine.Reader, want, rowLen int) error {
	it := r.NewIterator(engine.Data, engine.IterOptions{Lower: []byte("row/"), Upper: []byte("row0")})
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if string(it.Value()) != strconv.Itoa(want) {
			return fmt.Errorf("snapshot row %s = %s, counter %d", it.Key(), it.Value(), want)
		}
		n++
	}
	if n != rowLen {
		return fmt.Errorf("snapshot row has %d keys, want %d", n, rowLen)
	}
	return it.Err()
}

// fill writes a recognisable data set into every keyspace and returns it.
func fill(t *testing.T, e engine.Engine, tag string, n int) []model {
	t.Helper()
	models := make([]model, engine.NumKeyspaces)
	commit(t, e, func(b engine.Batch) {
		for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
			models[ks] = model{}
			for i := 0; i < n; i++ {
				k := keyf("%s/%s/%05d", tag, ks, i)
				v := value(i+int(ks), (i*31)%900)
				b.Put(ks, []byte(k), []byte(v))
				models[ks][k] = v
			}
		}
	})
	return models
}

func testCheckpoint(t *testing.T, h *harness) {
	e, _ := h.open(t)
	models := fill(t, e, "ck", 1000)
	commit(t, e, func(b engine.Batch) { b.Delete(engine.Data, []byte("ck/data/00007")) })
	delete(models[engine.Data], "ck/data/00007")

	t.Logf("Step 1: checkpoint, then keep writing to the original")
	dir := filepath.Join(t.TempDir(), "checkpoint")
	if err := e.Checkpoint(dir); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	commit(t, e, func(b engine.Batch) {
		b.Put(engine.Data, []byte("after"), []byte("checkpoint"))
		b.DeleteRange(engine.Meta, []byte("ck/"), []byte("ck0"))
	})

	t.Logf("Step 2: a second checkpoint into the same directory fails")
	if err := e.Checkpoint(dir); err == nil {
		t.Fatalf("Checkpoint into an existing directory succeeded")
	}

	t.Logf("Step 3: the checkpoint opens and holds exactly the data at checkpoint time")
	c := h.openDir(t, dir)
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		wantContents(t, c, ks, models[ks])
	}
	t.Logf("Step 4: both engines stay writable and independent")
	commit(t, c, func(b engine.Batch) { b.Put(engine.Data, []byte("in-copy"), []byte("1")) })
	wantNotFound(t, e, engine.Data, "in-copy")
	wantValue(t, e, engine.Data, "after", "checkpoint")
	wantNotFound(t, c, engine.Data, "after")
}

func testDurability(t *testing.T, h *harness) {
	if !h.f.Durable {
		t.Skip("engine is not durable across Close; covered by Checkpoint")
	}
	e, dir := h.open(t)
	models := fill(t, e, "dur", 500)
	b := e.NewBatch()
	b.Put(engine.Data, []byte("synced"), []byte("yes"))
	b.DeleteRange(engine.RaftLog, []byte("dur/raftlog/00100"), []byte("dur/raftlog/00200"))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	models[engine.Data]["synced"] = "yes"
	models[engine.RaftLog].deleteRange("dur/raftlog/00100", "dur/raftlog/00200")
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	t.Logf("Step 2: reopen the same directory")
	e2 := h.openDir(t, dir)
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		wantContents(t, e2, ks, models[ks])
	}
}

func testSizes(t *testing.T, h *harness) {
	e, _ := h.open(t)
	d0, err := e.DiskSize()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	const per, n = 64 << 10, 16 // 1 MiB of incompressible values
	commit(t, e, func(b engine.Batch) {
		for i := 0; i < n; i++ {
			b.Put(engine.Data, []byte(keyf("size/%02d", i)), randomBytes(rng, per))
		}
	})
	b := e.NewBatch()
	b.Put(engine.Meta, []byte("sync"), []byte("x"))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()

	all, err := e.ApproximateSize(engine.Data, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rangeSize, err := e.ApproximateSize(engine.Data, []byte("size/"), []byte("size0"))
	if err != nil {
		t.Fatal(err)
	}
	emptySize, err := e.ApproximateSize(engine.Data, []byte("zzz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ApproximateSize: whole keyspace %d, written range %d, empty range %d", all, rangeSize, emptySize)
	if rangeSize < n*per/4 || all < n*per/4 {
		t.Fatalf("ApproximateSize too small after writing %d bytes: range %d, keyspace %d", n*per, rangeSize, all)
	}
	if emptySize > rangeSize {
		t.Fatalf("empty range (%d) larger than the written range (%d)", emptySize, rangeSize)
	}
	d1, err := e.DiskSize()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DiskSize: %d before, %d after", d0, d1)
	if d1 <= d0 {
		t.Fatalf("DiskSize did not grow: %d -> %d", d0, d1)
	}
}

func testCompact(t *testing.T, h *harness) {
	e, _ := h.open(t)
	m := model{}
	for i := 0; i < 2000; i++ {
		m[keyf("c/%05d", i)] = value(i, 100+i%300)
	}
	putAll(t, e, engine.Data, m)
	commit(t, e, func(b engine.Batch) {
		for i := 0; i < 2000; i += 2 {
			b.Delete(engine.Data, []byte(keyf("c/%05d", i)))
		}
		b.DeleteRange(engine.Data, []byte("c/00500"), []byte("c/01500"))
	})
	for i := 0; i < 2000; i += 2 {
		delete(m, keyf("c/%05d", i))
	}
	m.deleteRange("c/00500", "c/01500")

	if err := e.Compact(engine.Data, []byte("c/00000"), []byte("c/01000")); err != nil {
		t.Fatalf("bounded Compact: %v", err)
	}
	wantContents(t, e, engine.Data, m)
	if err := e.Compact(engine.Data, nil, nil); err != nil {
		t.Fatalf("full Compact: %v", err)
	}
	wantContents(t, e, engine.Data, m)
	commit(t, e, func(b engine.Batch) { b.Put(engine.Data, []byte("c/00000"), []byte("back")) })
	m["c/00000"] = "back"
	wantContents(t, e, engine.Data, m)
}

func testClose(t *testing.T, h *harness) {
	e, _ := h.open(t)
	putAll(t, e, engine.Data, model{"a": "1"})
	early := e.NewBatch()
	defer early.Close()
	early.Put(engine.Data, []byte("b"), []byte("2"))

	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.Get(engine.Data, []byte("a")); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Get after Close = %v, want engine.ErrClosed", err)
	}
	if err := early.Commit(false); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Commit of a batch made before Close = %v, want engine.ErrClosed", err)
	}
	late := e.NewBatch()
	late.Put(engine.Data, []byte("c"), []byte("3"))
	if err := late.Commit(true); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Commit of a batch made after Close = %v, want engine.ErrClosed", err)
	}
	late.Close()
	it := e.NewIterator(engine.Data, engine.IterOptions{})
	if it.First() || it.Valid() || !errors.Is(it.Err(), engine.ErrClosed) {
		t.Fatalf("iterator after Close: valid=%v err=%v, want invalid with engine.ErrClosed", it.Valid(), it.Err())
	}
	it.Close()
	s := e.NewSnapshot()
	if _, err := s.Get(engine.Data, []byte("a")); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("snapshot after Close: Get = %v, want engine.ErrClosed", err)
	}
	s.Close()
	if _, err := e.ApproximateSize(engine.Data, nil, nil); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("ApproximateSize after Close = %v", err)
	}
	if _, err := e.DiskSize(); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("DiskSize after Close = %v", err)
	}
	if err := e.Compact(engine.Data, nil, nil); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Compact after Close = %v", err)
	}
	if err := e.Checkpoint(filepath.Join(t.TempDir(), "ck")); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Checkpoint after Close = %v", err)
	}
}

// testRandomizedModel applies random batches and compares the engine with a
// model after each, including random bounded iterations and seeks.
func testRandomizedModel(t *testing.T, h *harness) {
	e, _ := h.open(t)
	rng := rand.New(rand.NewSource(42))
	key := func() string { return keyf("r%03d", rng.Intn(300)) }
	m := model{}
	for round := 0; round < 60; round++ {
		commit(t, e, func(b engine.Batch) {
			for j := rng.Intn(40); j >= 0; j-- {
				switch p := rng.Intn(20); {
				case p < 12:
					k, v := key(), value(rng.Intn(1000), rng.Intn(200))
					b.Put(engine.Data, []byte(k), []byte(v))
					m[k] = v
				case p < 18:
					k := key()
					b.Delete(engine.Data, []byte(k))
					delete(m, k)
				default:
					lo, hi := key(), key()
					if lo > hi {
						lo, hi = hi, lo
					}
					b.DeleteRange(engine.Data, []byte(lo), []byte(hi))
					m.deleteRange(lo, hi)
				}
			}
		})
		for j := 0; j < 4; j++ {
			opts := engine.IterOptions{Reverse: rng.Intn(2) == 0}
			if rng.Intn(2) == 0 {
				opts.Lower = []byte(key())
			}
			if rng.Intn(2) == 0 {
				opts.Upper = []byte(key())
			}
			want := m.within(opts.Lower, opts.Upper, opts.Reverse)
			wantPairs(t, fmt.Sprintf("round %d bounds [%q,%q) reverse=%v", round, opts.Lower, opts.Upper, opts.Reverse),
				dump(t, e, engine.Data, opts), want)
			seek := key()
			it := e.NewIterator(engine.Data, opts)
			var after []kv
			for _, p := range want {
				if (!opts.Reverse && p.k >= seek) || (opts.Reverse && p.k <= seek) {
					after = append(after, p)
				}
			}
			wantPairs(t, fmt.Sprintf("round %d Seek(%q)", round, seek), scan(t, it, func() bool { return it.Seek([]byte(seek)) }), after)
			it.Close()
		}
	}
	wantContents(t, e, engine.Data, m)
}
