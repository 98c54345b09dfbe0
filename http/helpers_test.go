package http

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/engine/memory"
	"github.com/metastore/metastore/mvcc"
)

// storeKV is a KV over a real mvcc store on the memory engine, without raft:
// the handlers are tested against etcd's semantics, not a mock's.
type storeKV struct{ s *mvcc.Store }

func newStoreKV(t *testing.T) *storeKV {
	t.Helper()
	eng, err := memory.Open("")
	require.NoError(t, err)
	s, err := mvcc.Open(eng, mvcc.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(); eng.Close() })
	return &storeKV{s: s}
}

func (k *storeKV) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return k.s.Range(r)
}

func apply[R any](k *storeKV, f func(a *mvcc.Apply) (R, error)) (R, error) {
	a := k.s.NewApply()
	resp, err := f(a)
	if err != nil {
		a.Abort()
		return resp, err
	}
	_, err = a.Commit(false)
	return resp, err
}

func (k *storeKV) Put(_ context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	return apply(k, func(a *mvcc.Apply) (*pb.PutResponse, error) { return a.Put(r) })
}

func (k *storeKV) DeleteRange(_ context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return apply(k, func(a *mvcc.Apply) (*pb.DeleteRangeResponse, error) { return a.DeleteRange(r) })
}

func (k *storeKV) Txn(_ context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if mvcc.IsReadOnlyTxn(r) {
		return k.s.ReadTxn(r)
	}
	return apply(k, func(a *mvcc.Apply) (*pb.TxnResponse, error) { return a.Txn(r) })
}

// Compact waits for the physical compaction too. NB: that also keeps the
// test's Store.Close from racing a compaction in flight: mvcc's compactor
// then spins in compactor.run (compact returns nil once stopped without
// finishing, and run retries it without checking stopc), so Close hangs.
func (k *storeKV) Compact(_ context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := apply(k, func(a *mvcc.Apply) (*pb.CompactionResponse, error) { return a.Compact(r.Revision) })
	if err == nil {
		k.s.WaitCompaction(r.Revision)
	}
	return resp, err
}

// fakeMaintenance answers the cluster endpoints with fixed values.
type fakeMaintenance struct {
	leader  uint64
	learner bool
	alarms  []*pb.AlarmMember
}

func (f *fakeMaintenance) Alarm(context.Context, *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{Alarms: f.alarms}, nil
}

func (f *fakeMaintenance) Alarms() []*pb.AlarmMember { return f.alarms }

func (f *fakeMaintenance) MemberList(context.Context, *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return &pb.MemberListResponse{Header: &pb.ResponseHeader{ClusterId: 1, MemberId: 7},
		Members: []*pb.Member{{ID: 7, Name: "m1", PeerURLs: []string{"http://127.0.0.1:2380"}}}}, nil
}

func (f *fakeMaintenance) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{Header: &pb.ResponseHeader{MemberId: 7}, Version: "3.7.3", Leader: f.leader}, nil
}

func (f *fakeMaintenance) Hash(context.Context, *pb.HashRequest) (*pb.HashResponse, error) {
	return &pb.HashResponse{Hash: 42}, nil
}

func (f *fakeMaintenance) HashKV(context.Context, *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	return &pb.HashKVResponse{Hash: 43}, nil
}

func (f *fakeMaintenance) Leader() uint64  { return f.leader }
func (f *fakeMaintenance) IsLearner() bool { return f.learner }

// newTestHandler is a handler over a fresh store, with small limits.
func newTestHandler(t *testing.T, cfg Config) (*Handler, *storeKV, *fakeMaintenance) {
	t.Helper()
	kv := newStoreKV(t)
	mt := &fakeMaintenance{leader: 7}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = 1024
	}
	h := newHandler(kv, mt, cfg)
	t.Cleanup(h.Close)
	return h, kv, mt
}

// do runs one request through h.Handle in process and returns the response.
func do(h *Handler, method, uri string, body string, headers ...string) *fasthttp.Response {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	if body != "" {
		req.SetBodyString(body)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	h.Handle(&ctx)
	resp := &fasthttp.Response{}
	ctx.Response.CopyTo(resp)
	return resp
}
