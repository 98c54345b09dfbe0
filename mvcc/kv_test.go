package mvcc

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func TestStore_EmptyStoreIsAtRevisionOne(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		require.Equal(t, int64(1), s.Rev())
		resp := get(t, s, &pb.RangeRequest{Key: []byte("a")})
		require.Equal(t, int64(1), resp.Header.Revision)
		require.Empty(t, resp.Kvs)
		require.Equal(t, int64(0), resp.Count)
	})
}

func TestStore_PutAssignsRevisionsAndVersions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		t.Logf("Step 1: three puts, two to the same key")
		require.Equal(t, int64(2), put(t, s, "a", "v1").Header.Revision)
		require.Equal(t, int64(3), put(t, s, "a", "v2").Header.Revision)
		require.Equal(t, int64(4), put(t, s, "b", "x").Header.Revision)

		t.Logf("Step 2: the latest versions")
		resp := get(t, s, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c")})
		require.Equal(t, int64(4), resp.Header.Revision)
		require.Equal(t, int64(2), resp.Count)
		requireKVs(t, []*mvccpb.KeyValue{kv("a", "v2", 2, 3, 2, 0), kv("b", "x", 4, 4, 1, 0)}, resp.Kvs)

		t.Logf("Step 3: history: a at revision 2; the header still says the current revision")
		resp = get(t, s, &pb.RangeRequest{Key: []byte("a"), Revision: 2})
		require.Equal(t, int64(4), resp.Header.Revision)
		requireKVs(t, []*mvccpb.KeyValue{kv("a", "v1", 2, 2, 1, 0)}, resp.Kvs)
		resp = get(t, s, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), Revision: 3})
		requireKVs(t, []*mvccpb.KeyValue{kv("a", "v2", 2, 3, 2, 0)}, resp.Kvs)
		resp = get(t, s, &pb.RangeRequest{Key: []byte("a"), Revision: 1})
		require.Empty(t, resp.Kvs)

		t.Logf("Step 4: a future revision fails")
		_, err := s.Range(&pb.RangeRequest{Key: []byte("a"), Revision: 5})
		require.ErrorIs(t, err, ErrFutureRev)
	})
}

func TestStore_DeleteRange(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		for _, k := range []string{"a", "b", "c", "d"} {
			put(t, s, k, "v-"+k)
		} // revisions 2..5

		t.Logf("Step 1: deleting a missing key changes nothing")
		resp := del(t, s, "zz", "", true)
		require.Equal(t, int64(0), resp.Deleted)
		require.Empty(t, resp.PrevKvs)
		require.Equal(t, int64(5), resp.Header.Revision)

		t.Logf("Step 2: delete [b, d) with prev_kv in one revision")
		resp = del(t, s, "b", "d", true)
		require.Equal(t, int64(2), resp.Deleted)
		require.Equal(t, int64(6), resp.Header.Revision)
		requireKVs(t, []*mvccpb.KeyValue{kv("b", "v-b", 3, 3, 1, 0), kv("c", "v-c", 4, 4, 1, 0)}, resp.PrevKvs)

		t.Logf("Step 3: what is left, and the deleted keys at an older revision")
		all := get(t, s, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		require.Equal(t, []string{"a", "d"}, keysOf(all.Kvs))
		old := get(t, s, &pb.RangeRequest{Key: []byte("b"), Revision: 5})
		requireKVs(t, []*mvccpb.KeyValue{kv("b", "v-b", 3, 3, 1, 0)}, old.Kvs)

		t.Logf("Step 4: a key put again after a delete starts a new life: version 1, new create revision")
		require.Equal(t, int64(7), put(t, s, "b", "again").Header.Revision)
		requireKVs(t, []*mvccpb.KeyValue{kv("b", "again", 7, 7, 1, 0)}, get(t, s, &pb.RangeRequest{Key: []byte("b")}).Kvs)

		t.Logf("Step 5: delete everything from a key on (range_end \\x00), without prev_kv")
		resp = del(t, s, "b", "\x00", false)
		require.Equal(t, int64(2), resp.Deleted)
		require.Nil(t, resp.PrevKvs)
		require.Equal(t, []string{"a"}, keysOf(get(t, s, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}).Kvs))
	})
}

// A delete of more keys than one page (deletePage) reads and deletes them
// page by page: every live key goes, in one revision, with prev_kv in key
// order; keys deleted before, and older versions, do not confuse the
// page boundaries.
func TestStore_DeleteRangeManyPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		n := 2*deletePage + 300
		key := func(i int) string { return fmt.Sprintf("k%05d", i) }
		t.Logf("Step 1: %d keys in one Apply; one page boundary key has two versions, one key is deleted", n)
		apply(t, s, func(a *Apply) {
			for i := 0; i < n; i++ {
				_, err := a.Put(&pb.PutRequest{Key: []byte(key(i)), Value: []byte("v" + key(i))})
				require.NoError(t, err)
			}
		})
		put(t, s, key(deletePage-1), "second")
		del(t, s, key(deletePage+5), "", false)
		before := s.Rev()

		t.Logf("Step 2: delete [k, l) with prev_kv")
		resp := del(t, s, "k", "l", true)

		t.Logf("Step 3: every live key was deleted once, in one revision, prev_kv in key order")
		require.Equal(t, int64(n-1), resp.Deleted)
		require.Equal(t, before+1, resp.Header.Revision)
		require.Len(t, resp.PrevKvs, n-1)
		for i, j := 0, 0; i < n; i++ {
			if i == deletePage+5 {
				continue
			}
			want := "v" + key(i)
			if i == deletePage-1 {
				want = "second"
			}
			require.Equal(t, key(i), string(resp.PrevKvs[j].Key))
			require.Equal(t, want, string(resp.PrevKvs[j].Value))
			j++
		}
		require.Empty(t, get(t, s, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")}).Kvs)
		require.Len(t, get(t, s, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Revision: before}).Kvs, n-1)
	})
}

func TestStore_PutOptions(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			leases := newFakeLeases(100, 200)
			s := openStore(t, ec, Config{Leases: leases})

			t.Logf("Step 1: prev_kv is empty for a new key and the old version afterwards")
			resp := putReq(t, s, &pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), PrevKv: true, Lease: 100})
			require.Nil(t, resp.PrevKv)
			require.True(t, leases.attached[100]["k"])
			resp = putReq(t, s, &pb.PutRequest{Key: []byte("k"), Value: []byte("v2"), PrevKv: true, Lease: 100})
			requireKV(t, kv("k", "v1", 2, 2, 1, 100), resp.PrevKv)

			t.Logf("Step 2: ignore_value keeps the value, ignore_lease the lease")
			putReq(t, s, &pb.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 200})
			requireKVs(t, []*mvccpb.KeyValue{kv("k", "v2", 2, 4, 3, 200)}, get(t, s, &pb.RangeRequest{Key: []byte("k")}).Kvs)
			require.False(t, leases.attached[100]["k"], "moving to lease 200 detaches from 100")
			require.True(t, leases.attached[200]["k"])
			putReq(t, s, &pb.PutRequest{Key: []byte("k"), Value: []byte("v3"), IgnoreLease: true})
			requireKVs(t, []*mvccpb.KeyValue{kv("k", "v3", 2, 5, 4, 200)}, get(t, s, &pb.RangeRequest{Key: []byte("k")}).Kvs)

			t.Logf("Step 3: errors: ignore_* on a missing key, unknown lease, value with ignore_value")
			a := s.NewApply()
			_, err := a.Put(&pb.PutRequest{Key: []byte("missing"), IgnoreValue: true})
			require.ErrorIs(t, err, ErrKeyNotFound)
			_, err = a.Put(&pb.PutRequest{Key: []byte("missing"), Value: []byte("x"), IgnoreLease: true})
			require.ErrorIs(t, err, ErrKeyNotFound)
			_, err = a.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("x"), Lease: 999})
			require.ErrorIs(t, err, ErrLeaseNotFound)
			_, err = a.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("x"), IgnoreValue: true})
			require.ErrorIs(t, err, ErrValueProvided)
			_, err = a.Put(&pb.PutRequest{Key: []byte("k"), IgnoreLease: true, Lease: 100})
			require.ErrorIs(t, err, ErrLeaseProvided)
			_, err = a.Put(&pb.PutRequest{Value: []byte("x")})
			require.ErrorIs(t, err, ErrEmptyKey)
			res, err := a.Commit(false)
			require.NoError(t, err)
			require.Empty(t, res.Events, "failed requests write nothing")
			require.Equal(t, int64(5), s.Rev())

			t.Logf("Step 4: deleting the key detaches it from its lease")
			del(t, s, "k", "", false)
			require.False(t, leases.attached[200]["k"])
		})
	}
}

func TestStore_KeysWithZeroBytesAndPrefixes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		keys := []string{"a", "a\x00", "a\x00b", "a\x01", "ab", "b\xff", "\xff\xff"}
		for i := len(keys) - 1; i >= 0; i-- {
			put(t, s, keys[i], "v"+keys[i])
		}
		all := get(t, s, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		require.Equal(t, keys, keysOf(all.Kvs), "byte order of user keys survives the encoding")
		pre := get(t, s, &pb.RangeRequest{Key: []byte("a\x00"), RangeEnd: []byte("a\x01")})
		require.Equal(t, []string{"a\x00", "a\x00b"}, keysOf(pre.Kvs))
		one := get(t, s, &pb.RangeRequest{Key: []byte("a")})
		require.Equal(t, []string{"a"}, keysOf(one.Kvs))
		require.Equal(t, "va", string(one.Kvs[0].Value))
		put(t, s, "a", "newer")
		one = get(t, s, &pb.RangeRequest{Key: []byte("a\x00")})
		require.Equal(t, "va\x00", string(one.Kvs[0].Value), "a's new version does not leak into a\\x00")
	})
}
