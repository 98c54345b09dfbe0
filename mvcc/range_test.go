package mvcc

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/engine"
)

// seedRange writes a..e at revisions 2..6, then rewrites c (7) and a (8):
// a: create 2 mod 8 ver 2 value "a2"; b: 3/3/1 "b"; c: 4/7/2 "c2"; d: 5/5/1 "d"; e: 6/6/1 "e".
func seedRange(t *testing.T, s *Store) {
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		put(t, s, k, k)
	}
	put(t, s, "c", "c2")
	put(t, s, "a", "a2")
	require.Equal(t, int64(8), s.Rev())
}

func TestStore_RangeOptions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		seedRange(t, s)
		all := func(r *pb.RangeRequest) *pb.RangeRequest {
			r.Key, r.RangeEnd = []byte("a"), []byte("z")
			return r
		}
		cases := []struct {
			name      string
			req       *pb.RangeRequest
			wantKeys  []string
			wantCount int64
			wantMore  bool
		}{
			{"all", all(&pb.RangeRequest{}), []string{"a", "b", "c", "d", "e"}, 5, false},
			{"limit", all(&pb.RangeRequest{Limit: 2}), []string{"a", "b"}, 5, true},
			{"limit equal to count", all(&pb.RangeRequest{Limit: 5}), []string{"a", "b", "c", "d", "e"}, 5, false},
			{"from key", &pb.RangeRequest{Key: []byte("c"), RangeEnd: []byte{0}}, []string{"c", "d", "e"}, 3, false},
			{"all keys", &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}, []string{"a", "b", "c", "d", "e"}, 5, false},
			{"prefix-like", &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte("d")}, []string{"b", "c"}, 2, false},
			{"range_end before key: nothing, as in etcd", &pb.RangeRequest{Key: []byte("d"), RangeEnd: []byte("b")}, nil, 0, false},
			{"range_end equal to key: nothing", &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte("b")}, nil, 0, false},
			{"key descend", all(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND}), []string{"e", "d", "c", "b", "a"}, 5, false},
			{"key descend limit", all(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, Limit: 2}), []string{"e", "d"}, 5, true},
			{"mod ascend", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_ASCEND}), []string{"b", "d", "e", "c", "a"}, 5, false},
			{"mod with no order means ascend", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_MOD}), []string{"b", "d", "e", "c", "a"}, 5, false},
			{"mod descend", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_DESCEND}), []string{"a", "c", "e", "d", "b"}, 5, false},
			{"create descend", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_CREATE, SortOrder: pb.RangeRequest_DESCEND}), []string{"e", "d", "c", "b", "a"}, 5, false},
			{"version descend, ties in key order", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_VERSION, SortOrder: pb.RangeRequest_DESCEND}), []string{"a", "c", "b", "d", "e"}, 5, false},
			{"value descend", all(&pb.RangeRequest{SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND}), []string{"e", "d", "c", "b", "a"}, 5, false},
			{"min mod", all(&pb.RangeRequest{MinModRevision: 6}), []string{"a", "c", "e"}, 5, false},
			{"max mod", all(&pb.RangeRequest{MaxModRevision: 5}), []string{"b", "d"}, 5, false},
			{"min create", all(&pb.RangeRequest{MinCreateRevision: 4}), []string{"c", "d", "e"}, 5, false},
			{"max create", all(&pb.RangeRequest{MaxCreateRevision: 3}), []string{"a", "b"}, 5, false},
			{"filter then limit", all(&pb.RangeRequest{MinCreateRevision: 3, Limit: 2}), []string{"b", "c"}, 5, true},
			{"at revision 4", all(&pb.RangeRequest{Revision: 4}), []string{"a", "b", "c"}, 3, false},
		}
		for _, tc := range cases {
			resp := get(t, s, tc.req)
			require.Equal(t, tc.wantKeys, nilIfEmpty(keysOf(resp.Kvs)), tc.name)
			require.Equal(t, tc.wantCount, resp.Count, tc.name+": count")
			require.Equal(t, tc.wantMore, resp.More, tc.name+": more")
			require.Equal(t, int64(8), resp.Header.Revision, tc.name+": header revision")
		}
	})
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestStore_RangeKeysOnlyAndCountOnly(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		seedRange(t, s)
		resp := get(t, s, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), KeysOnly: true})
		requireKVs(t, []*mvccpb.KeyValue{kv("a", "", 2, 8, 2, 0), kv("b", "", 3, 3, 1, 0)}, resp.Kvs)
		require.Nil(t, resp.Kvs[0].Value)

		resp = get(t, s, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), KeysOnly: true,
			SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND})
		require.Equal(t, []string{"e", "d", "c", "b", "a"}, keysOf(resp.Kvs), "sorting by value works with keys_only")
		require.Nil(t, resp.Kvs[0].Value)

		resp = get(t, s, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), CountOnly: true, Limit: 1})
		require.Empty(t, resp.Kvs)
		require.Equal(t, int64(5), resp.Count)
		require.False(t, resp.More)

		_, err := s.Range(&pb.RangeRequest{Key: []byte("a"), SortOrder: 7})
		require.ErrorIs(t, err, ErrInvalidSortOpt)
		_, err = s.Range(&pb.RangeRequest{})
		require.ErrorIs(t, err, ErrEmptyKey)
	})
}

func TestStore_RangeSeesNoLaterRevision(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		put(t, s, "k", "v1")
		a := s.NewApply()
		_, err := a.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v2")})
		require.NoError(t, err)
		resp := get(t, s, &pb.RangeRequest{Key: []byte("k")})
		require.Equal(t, "v1", string(resp.Kvs[0].Value), "an uncommitted Apply is invisible")
		require.Equal(t, int64(2), resp.Header.Revision)
		_, err = a.Commit(false)
		require.NoError(t, err)
		resp = get(t, s, &pb.RangeRequest{Key: []byte("k")})
		require.Equal(t, "v2", string(resp.Kvs[0].Value))
		require.Equal(t, int64(3), resp.Header.Revision)
	})
}

// TestStore_RangeOneKeyAgainstHistory checks the one-key range (one seek in
// a prefix-mode iterator) against a model at every revision: keys that are
// prefixes of one another, deletes, re-creates, and on RocksDB versions
// spread over memtables and files.
func TestStore_RangeOneKeyAgainstHistory(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			t.Logf("Step 1: prepare a store and a model of every revision")
			e := ec.open(t, t.TempDir())
			s, err := Open(e, Config{})
			require.NoError(t, err)
			t.Cleanup(func() {
				require.NoError(t, s.Close())
				require.NoError(t, e.Close())
			})
			keys := []string{"a", "a\x00", "ab", "b", "\x00", "a\xff"}
			type kv struct {
				value       string
				create, ver int64
			}
			history := map[int64]map[string]kv{} // revision -> live keys
			cur := map[string]kv{}
			rng := rand.New(rand.NewSource(9))

			t.Logf("Step 2: act: 300 random puts and deletes of those keys; on RocksDB, flush to files twice on the way")
			for i := 0; i < 300; i++ {
				k := keys[rng.Intn(len(keys))]
				if _, ok := cur[k]; ok && rng.Intn(4) == 0 {
					if del(t, s, k, "", false).Deleted == 1 {
						delete(cur, k)
					}
				} else {
					v := fmt.Sprintf("v%d", i)
					rev := put(t, s, k, v).Header.Revision
					old, ok := cur[k]
					if !ok {
						old = kv{create: rev}
					}
					cur[k] = kv{value: v, create: old.create, ver: old.ver + 1}
				}
				snap := map[string]kv{}
				for k, v := range cur {
					snap[k] = v
				}
				history[s.Rev()] = snap
				if i == 100 || i == 200 {
					require.NoError(t, e.Compact(engine.Data, nil, nil))
				}
			}

			t.Logf("Step 3: verify: a one-key range of every key at every revision answers as the model")
			for rev, live := range history {
				for _, k := range keys {
					resp := get(t, s, &pb.RangeRequest{Key: []byte(k), Revision: rev})
					want, ok := live[k]
					if !ok {
						require.Empty(t, resp.Kvs, "key %q at %d", k, rev)
						require.Zero(t, resp.Count)
						continue
					}
					require.Len(t, resp.Kvs, 1, "key %q at %d", k, rev)
					got := resp.Kvs[0]
					require.Equal(t, k, string(got.Key))
					require.Equal(t, want.value, string(got.Value), "key %q at %d", k, rev)
					require.Equal(t, want.create, got.CreateRevision, "key %q at %d", k, rev)
					require.Equal(t, want.ver, got.Version, "key %q at %d", k, rev)
					require.Equal(t, int64(1), resp.Count)
				}
			}
		})
	}
}

// A one-key range inside an Apply reads the Apply's pending writes through
// the batch (a prefix-mode iterator merged with the batch's overlay).
func TestApply_RangeOneKeySeesPendingWrites(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		t.Logf("Step 1: prepare: k committed as v1")
		put(t, s, "k", "v1")

		t.Logf("Step 2: act: in one Apply, put k=v2, read k; delete [a, z), read k; put k=v3, read k")
		var got []string
		read := func(a *Apply) {
			resp, err := a.Range(&pb.RangeRequest{Key: []byte("k")})
			require.NoError(t, err)
			if len(resp.Kvs) == 0 {
				got = append(got, "")
				return
			}
			got = append(got, string(resp.Kvs[0].Value))
		}
		apply(t, s, func(a *Apply) {
			_, err := a.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v2")})
			require.NoError(t, err)
			read(a)
			_, err = a.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("z")})
			require.NoError(t, err)
			read(a)
			_, err = a.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v3")})
			require.NoError(t, err)
			read(a)
		})

		t.Logf("Step 3: verify: each read saw the write before it; the committed state is v3")
		require.Equal(t, []string{"v2", "", "v3"}, got)
		require.Equal(t, "v3", string(get(t, s, &pb.RangeRequest{Key: []byte("k")}).Kvs[0].Value))
	})
}
