package memory

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/engine"
)

// model is what a DB should hold: keyspace -> key -> value.
type model [engine.NumKeyspaces]map[string]string

func newModel() model {
	var m model
	for ks := range m {
		m[ks] = map[string]string{}
	}
	return m
}

// dump reads every keyspace of db.
func dump(t *testing.T, db *DB) model {
	t.Helper()
	m := newModel()
	for ks := range m {
		it := db.NewIterator(engine.Keyspace(ks), engine.IterOptions{})
		for ok := it.First(); ok; ok = it.Next() {
			m[ks][string(it.Key())] = string(it.Value())
		}
		require.NoError(t, it.Err())
		require.NoError(t, it.Close())
	}
	return m
}

// reopen opens dir in a second DB and returns what it holds.
func reopen(t *testing.T, dir string) model {
	t.Helper()
	db, err := Open(dir)
	require.NoError(t, err)
	defer db.Close()
	return dump(t, db)
}

func deltaFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, deltaPrefix+"*"))
	require.NoError(t, err)
	sort.Strings(m)
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// applyRandom commits n random operations to db and to m: puts and
// overwrites on a small key space, deletes, a delete range now and then.
func applyRandom(t *testing.T, rng *rand.Rand, db *DB, m model, n int) {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	key := func() string { return fmt.Sprintf("k%03d", rng.Intn(200)) }
	for i := 0; i < n; i++ {
		ks := engine.Keyspace(rng.Intn(int(engine.NumKeyspaces)))
		switch r := rng.Intn(20); {
		case r < 13:
			k, v := key(), fmt.Sprintf("v%d-%d", i, rng.Intn(1000))
			b.Put(ks, []byte(k), []byte(v))
			m[ks][k] = v
		case r < 19:
			k := key()
			b.Delete(ks, []byte(k))
			delete(m[ks], k)
		default:
			lo, hi := key(), key()
			if lo > hi {
				lo, hi = hi, lo
			}
			b.DeleteRange(ks, []byte(lo), []byte(hi))
			for k := range m[ks] {
				if k >= lo && k < hi {
					delete(m[ks], k)
				}
			}
		}
		if rng.Intn(8) == 0 { // several commits between persists
			require.NoError(t, b.Commit(false))
			b.Reset()
		}
	}
	require.NoError(t, b.Commit(false))
}

// newStateDB opens an engine on a new, empty state directory, with a
// random source seeded with seed and an empty model. The engine is closed
// at the end of the test unless the test closes it first.
func newStateDB(t *testing.T, seed int64) (*rand.Rand, string, *DB, model) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	db, err := Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return rand.New(rand.NewSource(seed)), dir, db, newModel()
}

func TestPersist_DeltasThenNewBase(t *testing.T) {
	t.Logf("Step 1: prepare: an engine on an empty state directory, 300 keys, persisted once (a base, no deltas)")
	_, dir, db, m := newStateDB(t, 1)
	b := db.NewBatch()
	for i := 0; i < 300; i++ {
		k, v := fmt.Sprintf("k%03d", i), bytes.Repeat([]byte{'x'}, 100)
		b.Put(engine.Data, []byte(k), v)
		m[engine.Data][k] = string(v)
	}
	require.NoError(t, b.Commit(false))
	require.NoError(t, db.Persist(dir))
	require.Empty(t, deltaFiles(t, dir))
	base, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	require.NoError(t, err)

	t.Logf("Step 2: act: an overwrite, a delete, a delete range and a new key in another keyspace, then Persist")
	b.Reset()
	b.Put(engine.Data, []byte("k000"), []byte("new"))
	b.Delete(engine.Data, []byte("k001"))
	b.DeleteRange(engine.Data, []byte("k010"), []byte("k020"))
	b.Put(engine.Meta, []byte("applied"), []byte("42"))
	require.NoError(t, b.Commit(false))
	m[engine.Data]["k000"] = "new"
	delete(m[engine.Data], "k001")
	for i := 10; i < 20; i++ {
		delete(m[engine.Data], fmt.Sprintf("k%03d", i))
	}
	m[engine.Meta]["applied"] = "42"
	require.NoError(t, db.Persist(dir))

	t.Logf("Step 3: verify: one delta file, the base untouched, and a reopened engine holds the state")
	require.Equal(t, []string{deltaName(1)}, deltaFiles(t, dir))
	after, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	require.NoError(t, err)
	require.Equal(t, base, after)
	fi, err := os.Stat(filepath.Join(dir, deltaName(1)))
	require.NoError(t, err)
	require.Less(t, fi.Size(), int64(len(base)/10), "the delta holds the changes, not the state")
	require.Equal(t, m, reopen(t, dir))

	t.Logf("Step 4: act: rewrite every value, Persist until the deltas pass half the base; verify a new base replaced them")
	for round := 0; len(deltaFiles(t, dir)) > 0; round++ {
		require.Less(t, round, 10, "deltas never gave way to a new base")
		b.Reset()
		for i := 20; i < 300; i++ {
			k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("round %d %s", round, bytes.Repeat([]byte{'y'}, 90))
			b.Put(engine.Data, []byte(k), []byte(v))
			m[engine.Data][k] = v
		}
		require.NoError(t, b.Commit(false))
		require.NoError(t, db.Persist(dir))
		require.Equal(t, m, reopen(t, dir), "round %d", round)
	}
	_, err = os.Stat(dir + ".old")
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(dir + ".tmp")
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestPersist_RandomOperationsAgainstModel(t *testing.T) {
	t.Logf("Step 1: prepare: an engine on an empty state directory and a model")
	rng, dir, db, m := newStateDB(t, 7)

	var deltas, bases int
	for round := 0; round < 40; round++ {
		t.Logf("Step 2.%d: act: random puts, deletes and delete ranges in every keyspace, then Persist", round)
		applyRandom(t, rng, db, m, 1+rng.Intn(120))
		had := len(deltaFiles(t, dir))
		require.NoError(t, db.Persist(dir))
		if n := len(deltaFiles(t, dir)); n > had {
			deltas++
		} else {
			bases++
		}

		t.Logf("Step 3.%d: verify: the engine and a reopened copy both hold the model", round)
		require.Equal(t, m, dump(t, db))
		require.Equal(t, m, reopen(t, dir))
	}
	t.Logf("Step 4: verify: both kinds of write happened (%d deltas, %d bases)", deltas, bases)
	require.Positive(t, deltas)
	require.Positive(t, bases)
}

func TestPersist_ReopenedEngineContinuesWithDeltas(t *testing.T) {
	t.Logf("Step 1: prepare: a state directory with a base and one delta")
	rng, dir, db, m := newStateDB(t, 11)
	applyRandom(t, rng, db, m, 400)
	require.NoError(t, db.Persist(dir))
	applyRandom(t, rng, db, m, 5)
	require.NoError(t, db.Persist(dir))
	require.NoError(t, db.Close())
	require.Equal(t, []string{deltaName(1)}, deltaFiles(t, dir))

	t.Logf("Step 2: act: reopen, change a little, Persist")
	db2, err := Open(dir)
	require.NoError(t, err)
	defer db2.Close()
	applyRandom(t, rng, db2, m, 5)
	require.NoError(t, db2.Persist(dir))

	t.Logf("Step 3: verify: the reopened engine wrote delta 2 on top, and the directory holds the model")
	require.Equal(t, []string{deltaName(1), deltaName(2)}, deltaFiles(t, dir))
	require.Equal(t, m, reopen(t, dir))
}

func TestPersist_FailedDeltaForcesNewBase(t *testing.T) {
	t.Logf("Step 1: prepare: a persisted engine")
	rng, dir, db, m := newStateDB(t, 3)
	applyRandom(t, rng, db, m, 300)
	require.NoError(t, db.Persist(dir))

	t.Logf("Step 2: act: the state directory vanishes, so the next delta cannot be written")
	require.NoError(t, os.RemoveAll(dir))
	applyRandom(t, rng, db, m, 5)
	require.Error(t, db.Persist(dir))

	t.Logf("Step 3: verify: the next Persist writes a full base, which holds the model")
	applyRandom(t, rng, db, m, 5)
	require.NoError(t, db.Persist(dir))
	require.Empty(t, deltaFiles(t, dir))
	require.Equal(t, m, reopen(t, dir))
}

func TestOpen_StateDirectoryDamage(t *testing.T) {
	// persisted builds a state directory with a base and two deltas.
	persisted := func(t *testing.T) (string, model) {
		rng, dir, db, m := newStateDB(t, 5)
		applyRandom(t, rng, db, m, 300)
		require.NoError(t, db.Persist(dir))
		for i := 0; i < 2; i++ {
			applyRandom(t, rng, db, m, 5)
			require.NoError(t, db.Persist(dir))
		}
		require.Equal(t, []string{deltaName(1), deltaName(2)}, deltaFiles(t, dir))
		return dir, m
	}

	t.Run("flipped byte in a delta", func(t *testing.T) {
		t.Logf("Step 1: prepare a base and two deltas; flip a byte in delta 1")
		dir, _ := persisted(t)
		path := filepath.Join(dir, deltaName(1))
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		b[len(b)/2] ^= 0xff
		require.NoError(t, os.WriteFile(path, b, 0o644))
		t.Logf("Step 2: verify: Open fails with ErrCorrupt")
		_, err = Open(dir)
		require.ErrorIs(t, err, engine.ErrCorrupt)
	})
	for name, file := range map[string]string{"missing delta": deltaName(1), "deltas without a base": CheckpointFile} {
		t.Run(name, func(t *testing.T) {
			t.Logf("Step 1: prepare a base and two deltas; remove %s", file)
			dir, _ := persisted(t)
			require.NoError(t, os.Remove(filepath.Join(dir, file)))
			t.Logf("Step 2: verify: Open fails with ErrCorrupt")
			_, err := Open(dir)
			require.ErrorIs(t, err, engine.ErrCorrupt)
		})
	}
	t.Run("unfinished delta", func(t *testing.T) {
		t.Logf("Step 1: prepare a base and two deltas; leave a half-written delta 3 under its .tmp name")
		dir, m := persisted(t)
		require.NoError(t, os.WriteFile(filepath.Join(dir, deltaName(3)+".tmp"), []byte(deltaMagic), 0o644))
		t.Logf("Step 2: verify: Open ignores it and holds the state of delta 2")
		require.Equal(t, m, reopen(t, dir))
	})
	t.Run("interrupted swap", func(t *testing.T) {
		t.Logf("Step 1: prepare a base and two deltas; move the directory to state.old, as a crash mid-swap leaves it")
		dir, m := persisted(t)
		require.NoError(t, os.Rename(dir, dir+".old"))
		t.Logf("Step 2: verify: Open takes state.old back and holds its state")
		require.Equal(t, m, reopen(t, dir))
		_, err := os.Stat(dir + ".old")
		require.True(t, errors.Is(err, os.ErrNotExist))
	})
}
