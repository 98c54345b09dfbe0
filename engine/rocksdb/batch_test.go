package rocksdb

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/engine"
)

func requireGet(t *testing.T, r engine.Reader, ks engine.Keyspace, key, want string) {
	t.Helper()
	v, err := r.Get(ks, []byte(key))
	require.NoError(t, err, "key %q", key)
	require.Equal(t, want, string(v), "key %q", key)
}

func requireMissing(t *testing.T, r engine.Reader, ks engine.Keyspace, key string) {
	t.Helper()
	_, err := r.Get(ks, []byte(key))
	require.ErrorIs(t, err, engine.ErrNotFound, "key %q", key)
}

func TestBatch_AtomicAcrossKeyspaces(t *testing.T) {
	db := openTest(t, t.TempDir())
	put(t, db, engine.Data, "d1", "old", "d2", "old", "r1", "x", "r2", "x", "r3", "x")

	b := db.NewBatch()
	defer b.Close()
	b.Put(engine.Data, []byte("d1"), []byte("new"))
	b.Delete(engine.Data, []byte("d2"))
	b.DeleteRange(engine.Data, []byte("r1"), []byte("r3"))
	b.Put(engine.Meta, []byte("applied"), []byte{0, 0, 0, 7})
	b.Put(engine.RaftLog, []byte{0x00, 0x01}, nil)
	require.Equal(t, 5, b.Count())

	t.Logf("Step 1: nothing is visible before Commit")
	requireGet(t, db, engine.Data, "d1", "old")
	requireGet(t, db, engine.Data, "d2", "old")
	requireMissing(t, db, engine.Meta, "applied")

	t.Logf("Step 2: everything is visible after Commit")
	require.NoError(t, b.Commit(true))
	requireGet(t, db, engine.Data, "d1", "new")
	requireMissing(t, db, engine.Data, "d2")
	requireMissing(t, db, engine.Data, "r1")
	requireMissing(t, db, engine.Data, "r2")
	requireGet(t, db, engine.Data, "r3", "x")
	requireGet(t, db, engine.Meta, "applied", "\x00\x00\x00\x07")
	v, err := db.Get(engine.RaftLog, []byte{0x00, 0x01})
	require.NoError(t, err)
	require.NotNil(t, v, "an empty value reads back as a zero-length slice")
	require.Len(t, v, 0)
	requireMissing(t, db, engine.Data, "applied")
}

func TestBatch_SizeCountResetReuse(t *testing.T) {
	db := openTest(t, t.TempDir())
	b := db.NewBatch()
	defer b.Close()
	require.Equal(t, 0, b.Count())
	require.Equal(t, 0, b.Size())
	b.Put(engine.Data, []byte("key"), []byte("value"))
	require.Equal(t, 1, b.Count())
	require.Equal(t, 1+1+1+3+1+5, b.Size(), "tag, cf id, key length, key, value length, value")

	t.Logf("Step 1: the caller may reuse its slices right after Put")
	k, v := []byte("k1"), []byte("v1")
	b.Put(engine.Data, k, v)
	k[1], v[1] = '9', '9'
	require.NoError(t, b.Commit(false))
	requireGet(t, db, engine.Data, "k1", "v1")
	requireMissing(t, db, engine.Data, "k9")

	t.Logf("Step 2: Reset empties the batch for reuse")
	b.Reset()
	require.Equal(t, 0, b.Count())
	require.Equal(t, 0, b.Size())
	b.Put(engine.Data, []byte("k2"), []byte("v2"))
	require.NoError(t, b.Commit(false))
	requireGet(t, db, engine.Data, "k2", "v2")

	t.Logf("Step 3: an empty commit is a no-op")
	b.Reset()
	require.NoError(t, b.Commit(true))

	t.Logf("Step 4: a closed batch refuses to commit")
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	require.ErrorIs(t, b.Commit(false), engine.ErrClosed)
}

func TestBatch_BadKeyspacePoisons(t *testing.T) {
	db := openTest(t, t.TempDir())
	b := db.NewBatch()
	defer b.Close()
	b.Put(engine.Data, []byte("a"), []byte("1"))
	b.Put(engine.NumKeyspaces, []byte("b"), []byte("2"))
	b.Put(engine.Data, []byte("c"), []byte("3"))
	require.ErrorIs(t, b.Commit(false), engine.ErrBadKeyspace)
	requireMissing(t, db, engine.Data, "a")
	requireMissing(t, db, engine.Data, "c")

	b.Reset()
	b.Put(engine.Data, []byte("a"), []byte("1"))
	require.NoError(t, b.Commit(false))
	requireGet(t, db, engine.Data, "a", "1")
}

func TestBatch_DeleteRangeEdges(t *testing.T) {
	db := openTest(t, t.TempDir())
	put(t, db, engine.Data, "a", "1", "b", "2", "c", "3")
	b := db.NewBatch()
	defer b.Close()
	b.DeleteRange(engine.Data, []byte("b"), []byte("b")) // empty
	b.DeleteRange(engine.Data, []byte("c"), []byte("a")) // inverted
	require.Equal(t, 2, b.Count())
	require.NoError(t, b.Commit(false))
	requireGet(t, db, engine.Data, "a", "1")
	requireGet(t, db, engine.Data, "b", "2")
	requireGet(t, db, engine.Data, "c", "3")

	b.Reset()
	b.DeleteRange(engine.Data, []byte(""), []byte("c"))
	require.NoError(t, b.Commit(false))
	requireMissing(t, db, engine.Data, "a")
	requireMissing(t, db, engine.Data, "b")
	requireGet(t, db, engine.Data, "c", "3")
}

func TestBatch_SyncSurvivesReopen(t *testing.T) {
	for _, noFsync := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableFsync=%v", noFsync), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			cfg.DisableFsync = noFsync
			db, err := Open(dir, cfg)
			require.NoError(t, err)
			b := db.NewBatch()
			for i := 0; i < 100; i++ {
				b.Put(engine.RaftLog, []byte(fmt.Sprintf("e%03d", i)), bytes.Repeat([]byte{byte(i)}, i))
			}
			require.NoError(t, b.Commit(true))
			require.NoError(t, b.Close())
			require.NoError(t, db.Close())

			db = openTest(t, dir)
			for i := 0; i < 100; i++ {
				requireGet(t, db, engine.RaftLog, fmt.Sprintf("e%03d", i), string(bytes.Repeat([]byte{byte(i)}, i)))
			}
		})
	}
}

func TestGet_LargeValue(t *testing.T) {
	db := openTest(t, t.TempDir())
	for _, n := range []int{0, 1, 4095, 4096, 4097, 1 << 20} {
		val := bytes.Repeat([]byte{byte(n)}, n)
		key := fmt.Sprintf("v%d", n)
		put(t, db, engine.Data, key, string(val))
		got, err := db.Get(engine.Data, []byte(key))
		require.NoError(t, err)
		require.Equal(t, val, got, "value of %d bytes", n)
		require.Equal(t, n, cap(got), "Get returns an exact-size copy")
	}
}
