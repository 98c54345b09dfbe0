package rocksdb

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/enginetest"
)

// dataKey builds a Data key the way mvcc does: a prefix, then an 8-byte
// suffix (the inverted revision, so newer versions sort first).
func suffixedKey(prefix string, rev uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefix), ^rev)
}

// newestAt looks up the first version of prefix at or below rev, the way
// mvcc's newest-version lookup does, with or without the prefix hint.
func newestAt(t *testing.T, r engine.Reader, prefix string, rev uint64, hint bool) string {
	t.Helper()
	upper := []byte(prefix)
	upper[len(upper)-1]++ // past every suffix of prefix, as mvcc's skipKey
	it := r.NewIterator(engine.Data, engine.IterOptions{Lower: []byte(prefix), Upper: upper, SameSuffixedKey: hint})
	defer it.Close()
	if !it.Seek(suffixedKey(prefix, rev)) {
		require.NoError(t, it.Err())
		return "-"
	}
	return fmt.Sprintf("%x=%s", it.Key(), it.Value())
}

// TestDataPrefixFilter_SameAnswers: with the Data keyspace's prefix filter,
// hinted single-key lookups answer exactly as total-order ones for keys
// that exist (in memtables, in files, in both) and keys that do not, and
// full scans still see every key; a database opened with the filter off
// reads the same data the same way.
func TestDataPrefixFilter_SameAnswers(t *testing.T) {
	dir := t.TempDir()
	t.Logf("Step 1: 300 keys x 1-4 versions, half flushed to files, half in memtables")
	db := openTest(t, dir)
	rng := rand.New(rand.NewSource(7))
	want := 0
	for round := 0; round < 2; round++ {
		for i := 0; i < 150; i++ {
			k := fmt.Sprintf("key%04d\x00\x01", rng.Intn(300))
			for v := 0; v < 1+rng.Intn(4); v++ {
				put(t, db, engine.Data, string(suffixedKey(k, uint64(round*1000+i*4+v+1))), fmt.Sprintf("v%d-%d", round, i))
			}
		}
		if round == 0 {
			require.NoError(t, db.Flush())
		}
	}
	scan := func(r engine.Reader) int { return enginetest.CountEntries(t, r, engine.Data) }
	want = scan(db)
	require.Greater(t, want, 300)

	t.Logf("Step 2: hinted and total-order lookups agree for 400 keys (100 never written) at several revisions")
	check := func(r engine.Reader) {
		for i := 0; i < 400; i++ {
			k := fmt.Sprintf("key%04d\x00\x01", i)
			for _, rev := range []uint64{0, 5, 700, 1100, 1 << 40} {
				require.Equal(t, newestAt(t, r, k, rev, false), newestAt(t, r, k, rev, true), "key %d rev %d", i, rev)
			}
		}
	}
	check(db)
	snap := db.NewSnapshot()
	check(snap)
	require.NoError(t, snap.Close())

	t.Logf("Step 3: reopened without the filter, and again with it: the same answers and the same scan")
	require.NoError(t, db.Close())
	cfg := testConfig()
	cfg.DataPrefixFilter = false
	off, err := Open(dir, cfg)
	require.NoError(t, err)
	require.Equal(t, want, scan(off))
	check(off)
	put(t, off, engine.Data, string(suffixedKey("key0399\x00\x01", 5000)), "late")
	require.NoError(t, off.Flush())
	require.NoError(t, off.Close())
	on := openTest(t, dir)
	require.Equal(t, want+1, scan(on))
	check(on)
	require.Equal(t, fmt.Sprintf("%x=late", suffixedKey("key0399\x00\x01", 5000)), newestAt(t, on, "key0399\x00\x01", 1<<40, true))
}
