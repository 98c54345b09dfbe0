package migrate

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/memory"
	"github.com/metastore/metastore/engine/rocksdb"
	"github.com/metastore/metastore/lease"
	"github.com/metastore/metastore/mvcc"
)

const testLease = 0x390da214a25d3e0a

// historyFile is an etcd file as etcd leaves it after this history and a
// compaction at 4 (which removed a@2):
//
//	2 put a=1   3 put a=2   4 put b=x   5 delete b   6 put b=y
//	7 put l=v (lease)   8 put a=3   9 put c=1   10 txn: put t1, put "t\x002"
func historyFile(t *testing.T, hash bool) string {
	t.Helper()
	put := func(main, sub int64, key, val string, create, ver, lease int64) etcdRec {
		return etcdRec{"key", revKey(main, sub, false), kvValue(t, &mvccpb.KeyValue{Key: []byte(key),
			CreateRevision: create, ModRevision: main, Version: ver, Value: []byte(val), Lease: lease})}
	}
	compact := revKey(4, 0, false)
	path := writeEtcdFile(t, etcdBuckets, []etcdRec{
		put(3, 0, "a", "2", 2, 2, 0),
		put(4, 0, "b", "x", 4, 1, 0),
		{"key", revKey(5, 0, true), kvValue(t, &mvccpb.KeyValue{Key: []byte("b")})},
		put(6, 0, "b", "y", 6, 1, 0),
		put(7, 0, "l", "v", 7, 1, testLease),
		put(8, 0, "a", "3", 2, 3, 0),
		put(9, 0, "c", "1", 9, 1, 0),
		put(10, 0, "t1", "one", 10, 1, 0),
		put(10, 1, "t\x002", "two", 10, 1, 0),
		{"lease", leaseKey(testLease), leaseValue(testLease, 3600, 0)},
		{"meta", []byte("finishedCompactRev"), compact},
		{"meta", []byte("scheduledCompactRev"), compact},
		{"meta", []byte("consistent_index"), binary8(15)},
		{"auth", []byte("authEnabled"), []byte{1}},
		{"authUsers", []byte("root"), userValue(t, "root", "rootpw", "root")},
	})
	if hash {
		appendHash(t, path)
	}
	return path
}

func binary8(v uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

var testEngines = []struct {
	name string
	open func(t *testing.T) engine.Engine
}{
	{"memory", func(t *testing.T) engine.Engine {
		e, err := memory.Open("")
		require.NoError(t, err)
		return e
	}},
	{"rocksdb", func(t *testing.T) engine.Engine {
		cfg := rocksdb.DefaultConfig()
		cfg.BlockCacheBytes = 8 << 20
		e, err := rocksdb.Open(t.TempDir(), cfg)
		require.NoError(t, err)
		return e
	}},
}

type kvRow struct {
	Key, Value                  string
	Create, Mod, Version, Lease int64
}

func rows(kvs []*mvccpb.KeyValue) []kvRow {
	out := []kvRow{}
	for _, kv := range kvs {
		out = append(out, kvRow{string(kv.Key), string(kv.Value), kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease})
	}
	return out
}

func TestImport_History(t *testing.T) {
	for _, ec := range testEngines {
		for _, hash := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hash=%t", ec.name, hash), func(t *testing.T) {
				t.Logf("Step 1: open the file and read its description...")
				snap, err := OpenEtcdSnapshot(historyFile(t, hash))
				require.NoError(t, err)
				defer snap.Close()
				info := snap.Info()
				info.Size = 0
				require.Equal(t, Info{Revision: 10, CompactRev: 4, ScheduledCompactRev: 4, ConsistentIndex: 15,
					Versions: 9, Leases: 1, HashVerified: hash, AuthEnabled: true, AuthUsers: 1}, info)

				t.Logf("Step 2: import into an empty %s engine...", ec.name)
				e := ec.open(t)
				defer e.Close()
				st, err := snap.Import(e)
				require.NoError(t, err)
				require.Equal(t, Stats{ImportStats: mvcc.ImportStats{Versions: 9, Tombstones: 1, Changes: 8, Rev: 10, CompactRev: 4},
					Leases: 1, AuthUsers: 1, AuthEnabled: true}, st)

				t.Logf("Step 3: a store on the engine has etcd's revisions, history and compaction...")
				s, err := mvcc.Open(e, mvcc.Config{})
				require.NoError(t, err)
				defer s.Close()
				require.Equal(t, int64(10), s.Rev())
				require.Equal(t, int64(4), s.CompactRev())
				all := func(rev int64) []kvRow {
					r, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
					require.NoError(t, err)
					return rows(r.Kvs)
				}
				require.Equal(t, []kvRow{{"a", "2", 2, 3, 2, 0}, {"b", "x", 4, 4, 1, 0}}, all(4))
				require.Equal(t, []kvRow{{"a", "2", 2, 3, 2, 0}}, all(5))
				require.Equal(t, []kvRow{{"a", "3", 2, 8, 3, 0}, {"b", "y", 6, 6, 1, 0}, {"c", "1", 9, 9, 1, 0},
					{"l", "v", 7, 7, 1, testLease}, {"t\x002", "two", 10, 10, 1, 0}, {"t1", "one", 10, 10, 1, 0}}, all(0))
				_, err = s.Range(&pb.RangeRequest{Key: []byte("a"), Revision: 3})
				require.ErrorIs(t, err, mvcc.ErrCompacted)

				t.Logf("Step 4: a watch from the compaction revision replays every change since...")
				evs, next, err := s.Events(4, 0, 0, false)
				require.NoError(t, err)
				require.Equal(t, int64(11), next)
				var got []string
				for _, ev := range evs {
					got = append(got, fmt.Sprintf("%s %q@%d", ev.Type, ev.Kv.Key, ev.Kv.ModRevision))
				}
				require.Equal(t, []string{`PUT "b"@4`, `DELETE "b"@5`, `PUT "b"@6`, `PUT "l"@7`, `PUT "a"@8`,
					`PUT "c"@9`, `PUT "t1"@10`, `PUT "t\x002"@10`}, got)

				t.Logf("Step 5: the lease loads with its TTL, and the key carrying it is found...")
				l := lease.New(lease.Config{})
				require.NoError(t, l.Load(e))
				require.Equal(t, []int64{testLease}, l.Leases())
				var leased []string
				require.NoError(t, s.LeasedKeys(func(key []byte, id int64) { leased = append(leased, fmt.Sprintf("%s:%x", key, id)) }))
				require.Equal(t, []string{fmt.Sprintf("l:%x", testLease)}, leased)
			})
		}
	}
}

// TestImport_BadHistory: what only the import sees fails it.
func TestImport_BadHistory(t *testing.T) {
	kv := func(key string, main, create int64) []byte {
		return kvValue(t, &mvccpb.KeyValue{Key: []byte(key), CreateRevision: create, ModRevision: main, Version: 1})
	}
	tests := []struct {
		name    string
		recs    []etcdRec
		wantErr string
	}{
		{"key twice in a revision", []etcdRec{{"key", revKey(3, 0, false), kv("a", 3, 3)}, {"key", revKey(3, 1, false), kv("a", 3, 3)}},
			`key "a" written twice in revision 3`},
		{"create above mod", []etcdRec{{"key", revKey(3, 0, false), kv("a", 3, 5)}}, "create revision 5"},
		{"lease TTL 0", []etcdRec{{"lease", leaseKey(5), leaseValue(5, 0, 0)}}, "has TTL 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := OpenEtcdSnapshot(writeEtcdFile(t, etcdBuckets, tt.recs))
			require.NoError(t, err)
			defer snap.Close()
			e := testEngines[0].open(t)
			defer e.Close()
			_, err = snap.Import(e)
			require.ErrorIs(t, err, ErrBadSnapshot)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	t.Run("non-empty engine", func(t *testing.T) {
		snap, err := OpenEtcdSnapshot(historyFile(t, false))
		require.NoError(t, err)
		defer snap.Close()
		e := testEngines[0].open(t)
		defer e.Close()
		_, err = snap.Import(e)
		require.NoError(t, err)
		_, err = snap.Import(e)
		require.ErrorIs(t, err, mvcc.ErrImport)
		require.ErrorContains(t, err, "not empty")
	})
}

// TestImport_TombstoneAtCompaction: etcd 3.7 keeps a tombstone at the
// compaction revision in its file (a watch from there sees the delete);
// imported, the delete replays from there too and the key stays deleted.
func TestImport_TombstoneAtCompaction(t *testing.T) {
	compact := revKey(3, 0, false)
	path := writeEtcdFile(t, etcdBuckets, []etcdRec{
		{"key", revKey(2, 0, false), kvValue(t, &mvccpb.KeyValue{Key: []byte("b"), CreateRevision: 2, ModRevision: 2, Version: 1, Value: []byte("x")})},
		{"key", revKey(3, 0, true), kvValue(t, &mvccpb.KeyValue{Key: []byte("b")})},
		{"meta", []byte("finishedCompactRev"), compact},
		{"meta", []byte("scheduledCompactRev"), compact},
	})
	snap, err := OpenEtcdSnapshot(path)
	require.NoError(t, err)
	defer snap.Close()
	e := testEngines[1].open(t)
	defer e.Close()
	st, err := snap.Import(e)
	require.NoError(t, err)
	require.Equal(t, mvcc.ImportStats{Versions: 2, Tombstones: 1, Changes: 1, Rev: 3, CompactRev: 3}, st.ImportStats)
	s, err := mvcc.Open(e, mvcc.Config{})
	require.NoError(t, err)
	defer s.Close()
	r, err := s.Range(&pb.RangeRequest{Key: []byte("b")})
	require.NoError(t, err)
	require.Empty(t, r.Kvs)
	evs, _, err := s.Events(3, 0, 0, false)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, mvccpb.Event_DELETE, evs[0].Type)
	require.Equal(t, "b", string(evs[0].Kv.Key))
	require.Equal(t, int64(3), evs[0].Kv.ModRevision)
}
