package mvcc

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/engine"
)

// toFormat1 rewrites the data keyspace of e as key format 1 wrote it and
// drops the format marker: a data directory of a build before format 2.
// It returns how many keys differ between the formats.
func toFormat1(t *testing.T, e engine.Engine) int {
	return toFormat1Some(t, e, func(int) bool { return true })
}

// toFormat1Some is toFormat1 for the keys that differ whose index among
// them pick accepts (an upgrade that stopped after part of its batches).
func toFormat1Some(t *testing.T, e engine.Engine, pick func(i int) bool) int {
	t.Helper()
	it := e.NewIterator(engine.Data, engine.IterOptions{})
	defer it.Close()
	b := e.NewBatch()
	defer b.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		prefix, _, err := splitDataKey(it.Key())
		require.NoError(t, err)
		key, err := unescape(prefix)
		require.NoError(t, err)
		old := append(appendEscapedV1(nil, key), it.Key()[len(prefix):]...)
		if bytes.Equal(old, it.Key()) {
			continue
		}
		if n++; !pick(n - 1) {
			continue
		}
		b.Delete(engine.Data, it.Key())
		b.Put(engine.Data, old, it.Value())
	}
	require.NoError(t, it.Err())
	b.Delete(engine.Meta, metaKeyFormat)
	require.NoError(t, b.Commit(true))
	return n
}

// hashFormat1 is HashKV of an uncompacted store as builds before format 2
// computed it, over e's data keyspace in format 1: every version's key,
// revision and record, in storage order.
func hashFormat1(t *testing.T, e engine.Engine) uint32 {
	t.Helper()
	it := e.NewIterator(engine.Data, engine.IterOptions{})
	defer it.Close()
	h := crc32.New(castagnoli)
	for ok := it.First(); ok; ok = it.Next() {
		prefix, rev, err := splitDataKey(it.Key())
		require.NoError(t, err)
		h.Write(prefix)
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(rev)))
		h.Write(it.Value())
	}
	require.NoError(t, it.Err())
	return h.Sum32()
}

// TestUpgradeKeyFormat_RewritesFormat1Keys: a store whose data keys are in
// key format 1 opens with exactly the keys a format 2 store writes, the
// same reads and the same hashes (which stay those of format 1, so members
// of both builds agree); an upgrade stopped halfway completes on the next
// Open; a format newer than the build is refused.
func TestUpgradeKeyFormat_RewritesFormat1Keys(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			t.Logf("Step 1: writing keys with and without zero runs, over several revisions...")
			s := openStore(t, ec, Config{})
			e := s.Engine()
			keys := []string{"a", "a\x00", "a\x00b", "a\x00\x00b", "\x00\x00\x00", "z",
				string(make([]byte, 300)) + "q", "k" + string(make([]byte, 20))}
			for _, k := range keys {
				put(t, s, k, "v1-"+k)
			}
			mid := s.Rev()
			for _, k := range keys[:4] {
				put(t, s, k, "v2-"+k)
			}
			del(t, s, "a\x00\x00b", "", false)
			all := &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}
			atMid := &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: mid}
			wantNow, wantMid := get(t, s, all), get(t, s, atMid)
			require.Len(t, wantNow.Kvs, len(keys)-1)
			wantData := dump(t, e, engine.Data, nil)
			wantHash, _, _, err := s.HashKV(0)
			require.NoError(t, err)
			wantHashMid, _, _, err := s.HashKV(mid)
			require.NoError(t, err)
			require.NoError(t, s.Close())

			t.Logf("Step 2: turning the data keyspace into format 1...")
			n := toFormat1(t, e)
			t.Logf("%d of %d versions are written differently in format 1", n, len(wantData))
			require.Equal(t, 8, n, "a\\x00 (twice), a\\x00\\x00b (three times), the keys of 3, 300 and 20 zeros (once each)")
			require.Equal(t, wantHash, hashFormat1(t, e), "HashKV is format 1's hash")

			t.Logf("Step 3: opening a store on it...")
			s2, err := Open(e, Config{})
			require.NoError(t, err)

			t.Logf("Step 4: verifying keys, reads and hashes...")
			require.Equal(t, wantData, dump(t, e, engine.Data, nil), "the keys format 2 writes")
			v, err := e.Get(engine.Meta, metaKeyFormat)
			require.NoError(t, err)
			require.Equal(t, keyFormat, string(v))
			requireKVs(t, wantNow.Kvs, get(t, s2, all).Kvs)
			requireKVs(t, wantMid.Kvs, get(t, s2, atMid).Kvs)
			h, _, _, err := s2.HashKV(0)
			require.NoError(t, err)
			require.Equal(t, wantHash, h)
			h, _, _, err = s2.HashKV(mid)
			require.NoError(t, err)
			require.Equal(t, wantHashMid, h)
			require.NoError(t, s2.Close())

			t.Logf("Step 5: stopping an upgrade halfway, then opening again...")
			require.Equal(t, 8, toFormat1(t, e))
			rewritten, err := upgradeKeyFormat(e)
			require.NoError(t, err)
			require.Equal(t, 8, rewritten)
			toFormat1Some(t, e, func(i int) bool { return i%2 == 0 })
			s3, err := Open(e, Config{})
			require.NoError(t, err)
			require.Equal(t, wantData, dump(t, e, engine.Data, nil))
			requireKVs(t, wantNow.Kvs, get(t, s3, all).Kvs)
			require.NoError(t, s3.Close())
			again, err := upgradeKeyFormat(e)
			require.NoError(t, err)
			require.Zero(t, again, "the marker is written: nothing to do")

			t.Logf("Step 6: refusing a newer key format...")
			b := e.NewBatch()
			b.Put(engine.Meta, metaKeyFormat, []byte("3"))
			require.NoError(t, b.Commit(true))
			b.Close()
			_, err = Open(e, Config{})
			require.ErrorIs(t, err, ErrCorruptRecord)
			require.ErrorContains(t, err, "newer MetaStore")
		})
	}
}

// TestAppendPortableStateKey: snapshot streams carry data keys in format 1
// and leave the format marker out; other keys travel as they are.
func TestAppendPortableStateKey(t *testing.T) {
	t.Logf("Step 1: a data key with a zero run...")
	dk := dataKey(nil, []byte("a\x00\x00b"), 7)
	got, keep, err := AppendPortableStateKey(nil, engine.Data, dk)
	require.NoError(t, err)
	require.True(t, keep)
	require.Equal(t, dataKey(nil, nil, 7)[2:], got[len(got)-8:], "the revision bytes follow")
	require.Equal(t, "a\x00\xFF\x00\xFFb\x00\x01", string(got[:len(got)-8]))

	t.Logf("Step 2: the marker and another meta key...")
	_, keep, err = AppendPortableStateKey(nil, engine.Meta, metaKeyFormat)
	require.NoError(t, err)
	require.False(t, keep)
	got, keep, err = AppendPortableStateKey([]byte("x"), engine.Meta, metaCurrentRev)
	require.NoError(t, err)
	require.True(t, keep)
	require.Equal(t, "x"+string(metaCurrentRev), string(got))

	t.Logf("Step 3: a malformed data key is an error...")
	_, _, err = AppendPortableStateKey(nil, engine.Data, []byte("short"))
	require.ErrorIs(t, err, ErrCorruptRecord)
}
