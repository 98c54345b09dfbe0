package mvcc

import (
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/memory"
	"github.com/metastore/metastore/engine/rocksdb"
)

// engineCase opens a fresh engine of one kind in dir.
type engineCase struct {
	name string
	open func(t *testing.T, dir string) engine.Engine
}

var engineCases = []engineCase{
	{"memory", func(t *testing.T, dir string) engine.Engine {
		e, err := memory.Open("")
		require.NoError(t, err)
		return e
	}},
	{"rocksdb", func(t *testing.T, dir string) engine.Engine {
		cfg := rocksdb.DefaultConfig()
		cfg.BlockCacheBytes = 8 << 20
		e, err := rocksdb.Open(dir, cfg)
		require.NoError(t, err)
		return e
	}},
}

// forEachEngine runs fn as a subtest against a new store on every engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, s *Store)) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			fn(t, openStore(t, ec, Config{}))
		})
	}
}

func openStore(t *testing.T, ec engineCase, cfg Config) *Store {
	t.Helper()
	e := ec.open(t, t.TempDir())
	s, err := Open(e, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		require.NoError(t, e.Close())
	})
	return s
}

// apply runs fn in one Apply and commits it.
func apply(t *testing.T, s *Store, fn func(a *Apply)) Result {
	t.Helper()
	a := s.NewApply()
	fn(a)
	res, err := a.Commit(false)
	require.NoError(t, err)
	return res
}

func put(t *testing.T, s *Store, key, val string) *pb.PutResponse {
	t.Helper()
	return putReq(t, s, &pb.PutRequest{Key: []byte(key), Value: []byte(val)})
}

func putReq(t *testing.T, s *Store, req *pb.PutRequest) *pb.PutResponse {
	t.Helper()
	var resp *pb.PutResponse
	apply(t, s, func(a *Apply) {
		var err error
		resp, err = a.Put(req)
		require.NoError(t, err)
	})
	return resp
}

func del(t *testing.T, s *Store, key, end string, prev bool) *pb.DeleteRangeResponse {
	t.Helper()
	var resp *pb.DeleteRangeResponse
	apply(t, s, func(a *Apply) {
		var err error
		resp, err = a.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end), PrevKv: prev})
		require.NoError(t, err)
	})
	return resp
}

func txn(t *testing.T, s *Store, req *pb.TxnRequest) *pb.TxnResponse {
	t.Helper()
	var resp *pb.TxnResponse
	apply(t, s, func(a *Apply) {
		var err error
		resp, err = a.Txn(req)
		require.NoError(t, err)
	})
	return resp
}

func get(t *testing.T, s *Store, req *pb.RangeRequest) *pb.RangeResponse {
	t.Helper()
	resp, err := s.Range(req)
	require.NoError(t, err)
	return resp
}

// kv builds the KeyValue etcd would return.
func kv(key, val string, create, mod, ver, lease int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(key), Value: []byte(val), CreateRevision: create,
		ModRevision: mod, Version: ver, Lease: lease}
}

func keysOf(kvs []*mvccpb.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
}

// requireKVs compares KeyValues field by field (protobuf structs hold
// internal state that plain equality would trip on).
func requireKVs(t *testing.T, want, got []*mvccpb.KeyValue) {
	t.Helper()
	require.Equal(t, len(want), len(got), "kvs: got keys %q", keysOf(got))
	for i := range want {
		requireKV(t, want[i], got[i])
	}
}

func requireKV(t *testing.T, want, got *mvccpb.KeyValue) {
	t.Helper()
	if want == nil || got == nil {
		require.Equal(t, want == nil, got == nil, "want %v got %v", want, got)
		return
	}
	require.Equal(t, string(want.Key), string(got.Key), "key")
	require.Equal(t, string(want.Value), string(got.Value), "value of %q", want.Key)
	require.Equal(t, want.CreateRevision, got.CreateRevision, "create_revision of %q", want.Key)
	require.Equal(t, want.ModRevision, got.ModRevision, "mod_revision of %q", want.Key)
	require.Equal(t, want.Version, got.Version, "version of %q", want.Key)
	require.Equal(t, want.Lease, got.Lease, "lease of %q", want.Key)
}

// fakeLeases is a LeaseIndex that records attachments.
type fakeLeases struct {
	live     map[int64]bool
	attached map[int64]map[string]bool
}

func newFakeLeases(ids ...int64) *fakeLeases {
	f := &fakeLeases{live: map[int64]bool{}, attached: map[int64]map[string]bool{}}
	for _, id := range ids {
		f.live[id] = true
		f.attached[id] = map[string]bool{}
	}
	return f
}

func (f *fakeLeases) Exists(id int64) bool        { return f.live[id] }
func (f *fakeLeases) Attach(id int64, key []byte) { f.attached[id][string(key)] = true }
func (f *fakeLeases) Detach(id int64, key []byte) { delete(f.attached[id], string(key)) }
