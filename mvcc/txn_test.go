package mvcc

import (
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func opPut(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func opGet(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

func opDel(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

func opTxn(t *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: t}}
}

func cmpVersion(k string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_VERSION, Result: r, TargetUnion: &pb.Compare_Version{Version: v}}
}

func TestStore_TxnCompares(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		put(t, s, "k", "v")   // 2
		put(t, s, "k", "w")   // 3: create 2, mod 3, version 2
		put(t, s, "p/1", "x") // 4
		put(t, s, "p/2", "y") // 5
		cases := []struct {
			name string
			c    *pb.Compare
			want bool
		}{
			{"value equal", &pb.Compare{Key: []byte("k"), Target: pb.Compare_VALUE, TargetUnion: &pb.Compare_Value{Value: []byte("w")}}, true},
			{"value greater", &pb.Compare{Key: []byte("k"), Target: pb.Compare_VALUE, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Value{Value: []byte("v")}}, true},
			{"value less false", &pb.Compare{Key: []byte("k"), Target: pb.Compare_VALUE, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_Value{Value: []byte("v")}}, false},
			{"value on missing key is false", &pb.Compare{Key: []byte("nope"), Target: pb.Compare_VALUE, Result: pb.Compare_NOT_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("v")}}, false},
			{"version equal", cmpVersion("k", pb.Compare_EQUAL, 2), true},
			{"version not equal", cmpVersion("k", pb.Compare_NOT_EQUAL, 2), false},
			{"missing key has version 0 (create-if-absent)", cmpVersion("nope", pb.Compare_EQUAL, 0), true},
			{"create equal", &pb.Compare{Key: []byte("k"), Target: pb.Compare_CREATE, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 2}}, true},
			{"mod less", &pb.Compare{Key: []byte("k"), Target: pb.Compare_MOD, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_ModRevision{ModRevision: 4}}, true},
			{"mod equal false", &pb.Compare{Key: []byte("k"), Target: pb.Compare_MOD, TargetUnion: &pb.Compare_ModRevision{ModRevision: 2}}, false},
			{"lease equal 0", &pb.Compare{Key: []byte("k"), Target: pb.Compare_LEASE, TargetUnion: &pb.Compare_Lease{Lease: 0}}, true},
			{"range: all versions 1", &pb.Compare{Key: []byte("p/"), RangeEnd: []byte("p0"), Target: pb.Compare_VERSION, TargetUnion: &pb.Compare_Version{Version: 1}}, true},
			{"range: every mod > 4 fails on p/1", &pb.Compare{Key: []byte("p/"), RangeEnd: []byte("p0"), Target: pb.Compare_MOD, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_ModRevision{ModRevision: 4}}, false},
			{"range: from key", &pb.Compare{Key: []byte("p/"), RangeEnd: []byte{0}, Target: pb.Compare_CREATE, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 3}}, true},
			{"empty range compares as zero kv", &pb.Compare{Key: []byte("q/"), RangeEnd: []byte("q0"), Target: pb.Compare_MOD, TargetUnion: &pb.Compare_ModRevision{ModRevision: 0}}, true},
			// etcd's rules for enum values it does not know: an unknown
			// target compares as equal, an unknown result holds.
			{"unknown result holds", &pb.Compare{Key: []byte("k"), Target: pb.Compare_VALUE, Result: 9, TargetUnion: &pb.Compare_Value{Value: []byte("other")}}, true},
			{"unknown target compares as equal", &pb.Compare{Key: []byte("k"), Target: 7, Result: pb.Compare_EQUAL}, true},
			{"unknown target is not greater", &pb.Compare{Key: []byte("k"), Target: 7, Result: pb.Compare_GREATER}, false},
			{"unknown target on a missing key compares as equal", &pb.Compare{Key: []byte("nope"), Target: 7, Result: pb.Compare_EQUAL}, true},
		}
		for _, tc := range cases {
			resp := txn(t, s, &pb.TxnRequest{Compare: []*pb.Compare{tc.c}})
			require.Equal(t, tc.want, resp.Succeeded, tc.name)
			require.Equal(t, int64(5), resp.Header.Revision, tc.name+": a txn without writes keeps the revision")
		}
	})
}

func TestStore_TxnBranchesAndRevisions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		t.Logf("Step 1: create-if-absent succeeds once, all writes in one revision")
		create := &pb.TxnRequest{
			Compare: []*pb.Compare{cmpVersion("lock", pb.Compare_EQUAL, 0)},
			Success: []*pb.RequestOp{opPut("lock", "me"), opPut("owner", "me"), opGet("lock", "")},
			Failure: []*pb.RequestOp{opGet("lock", "")},
		}
		resp := txn(t, s, create)
		require.True(t, resp.Succeeded)
		require.Equal(t, int64(2), resp.Header.Revision)
		require.Len(t, resp.Responses, 3)
		require.Equal(t, int64(2), resp.Responses[0].GetResponsePut().Header.Revision)
		got := resp.Responses[2].GetResponseRange()
		requireKVs(t, []*mvccpb.KeyValue{kv("lock", "me", 2, 2, 1, 0)}, got.Kvs)
		require.Equal(t, int64(2), got.Header.Revision, "a range in a txn sees the txn's own writes")
		requireKVs(t, []*mvccpb.KeyValue{kv("owner", "me", 2, 2, 1, 0)}, get(t, s, &pb.RangeRequest{Key: []byte("owner")}).Kvs)

		t.Logf("Step 2: the same txn now takes the failure branch")
		resp = txn(t, s, create)
		require.False(t, resp.Succeeded)
		require.Equal(t, int64(2), resp.Header.Revision)
		requireKVs(t, []*mvccpb.KeyValue{kv("lock", "me", 2, 2, 1, 0)}, resp.Responses[0].GetResponseRange().Kvs)

		t.Logf("Step 3: compare-and-swap on mod_revision")
		cas := &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("lock"), Target: pb.Compare_MOD, TargetUnion: &pb.Compare_ModRevision{ModRevision: 2}}},
			Success: []*pb.RequestOp{opPut("lock", "you")},
		}
		require.True(t, txn(t, s, cas).Succeeded)
		require.False(t, txn(t, s, cas).Succeeded)
		require.Equal(t, int64(3), s.Rev())

		t.Logf("Step 4: delete then put different keys in one txn; events share the revision with sub order")
		var res Result
		res = apply(t, s, func(a *Apply) {
			_, err := a.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opDel("owner", ""), opPut("n1", "a"), opPut("n2", "b")}})
			require.NoError(t, err)
		})
		require.Equal(t, int64(4), res.Rev)
		require.Len(t, res.Events, 3)
		for _, ev := range res.Events {
			require.Equal(t, int64(4), ev.Kv.ModRevision)
		}
		require.Equal(t, "owner", string(res.Events[0].Kv.Key))
		require.Equal(t, "n2", string(res.Events[2].Kv.Key))
	})
}

func TestStore_TxnNested(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		put(t, s, "a", "1") // 2
		inner := &pb.TxnRequest{
			Compare: []*pb.Compare{cmpVersion("b", pb.Compare_EQUAL, 0)},
			Success: []*pb.RequestOp{opPut("b", "inner-then"), opGet("a", "c")},
			Failure: []*pb.RequestOp{opPut("b", "inner-else")},
		}
		outer := &pb.TxnRequest{
			Compare: []*pb.Compare{cmpVersion("a", pb.Compare_EQUAL, 1)},
			Success: []*pb.RequestOp{opPut("a", "2"), opTxn(inner)},
		}
		resp := txn(t, s, outer)
		require.True(t, resp.Succeeded)
		require.Equal(t, int64(3), resp.Header.Revision)
		nested := resp.Responses[1].GetResponseTxn()
		require.True(t, nested.Succeeded)
		rr := nested.Responses[1].GetResponseRange()
		requireKVs(t, []*mvccpb.KeyValue{kv("a", "2", 2, 3, 2, 0), kv("b", "inner-then", 3, 3, 1, 0)}, rr.Kvs)
		require.Zero(t, nested.Header.Revision, "a nested txn's own header is empty, as in etcd")
		require.Equal(t, int64(3), nested.Responses[0].GetResponsePut().Header.Revision)

		t.Logf("Compares of nested txns are evaluated before the txn writes")
		inner2 := &pb.TxnRequest{Compare: []*pb.Compare{cmpVersion("c", pb.Compare_EQUAL, 0)},
			Success: []*pb.RequestOp{opPut("d", "c-was-absent")}, Failure: []*pb.RequestOp{opPut("d", "c-existed")}}
		resp = txn(t, s, &pb.TxnRequest{Success: []*pb.RequestOp{opPut("c", "now"), opTxn(inner2)}})
		require.True(t, resp.Responses[1].GetResponseTxn().Succeeded)
		require.Equal(t, "c-was-absent", string(get(t, s, &pb.RangeRequest{Key: []byte("d")}).Kvs[0].Value))
	})
}

func TestStore_TxnErrorsWriteNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		put(t, s, "a", "1")
		a := s.NewApply()
		_, err := a.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("x", "1"),
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("y"), Lease: 42}}}}})
		require.ErrorIs(t, err, ErrLeaseNotFound)
		_, err = a.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("x", "1"),
			{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), Revision: 3}}}}})
		require.ErrorIs(t, err, ErrFutureRev, "a range at the txn's own revision is a future revision, as in etcd")
		_, err = a.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("x", "1"), opPut("x", "2")}})
		require.ErrorIs(t, err, ErrDuplicateKey)
		res, err := a.Commit(false)
		require.NoError(t, err)
		require.Empty(t, res.Events)
		require.Equal(t, int64(2), s.Rev())
		require.Empty(t, get(t, s, &pb.RangeRequest{Key: []byte("x")}).Kvs)
	})
}

func TestCheckTxn_EtcdRules(t *testing.T) {
	many := make([]*pb.RequestOp, 129)
	for i := range many {
		many[i] = opGet("k", "")
	}
	cases := []struct {
		name string
		req  *pb.TxnRequest
		want error
	}{
		{"ok", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1"), opPut("b", "1"), opDel("c", "")}}, nil},
		{"too many ops", &pb.TxnRequest{Success: many}, ErrTooManyOps},
		{"128 ops is fine", &pb.TxnRequest{Success: many[:128]}, nil},
		{"duplicate put", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1"), opPut("a", "2")}}, ErrDuplicateKey},
		{"put inside a delete range", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "c"), opPut("b", "2")}}, ErrDuplicateKey},
		{"put then delete of the same key", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("b", "2"), opDel("b", "")}}, ErrDuplicateKey},
		{"overlapping deletes are fine", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "c"), opDel("b", "")}}, nil},
		{"put and delete in different branches are fine", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1")}, Failure: []*pb.RequestOp{opDel("a", "")}}, nil},
		{"nested: then and else may put the same key", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(&pb.TxnRequest{
			Success: []*pb.RequestOp{opPut("a", "1")}, Failure: []*pb.RequestOp{opPut("a", "2")}})}}, nil},
		{"nested put duplicates an outer put", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "0"), opTxn(&pb.TxnRequest{
			Success: []*pb.RequestOp{opPut("a", "1")}})}}, ErrDuplicateKey},
		{"nested put under an outer delete", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "z"), opTxn(&pb.TxnRequest{
			Failure: []*pb.RequestOp{opPut("m", "1")}})}}, ErrDuplicateKey},
		{"compare with empty key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, ErrEmptyKey},
		{"op with empty key", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("", "1")}}, ErrEmptyKey},
		{"op with no request", &pb.TxnRequest{Success: []*pb.RequestOp{{}}}, ErrKeyNotFound},
	}
	for _, tc := range cases {
		err := CheckTxn(tc.req, DefaultMaxTxnOps)
		if tc.want == nil {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorIs(t, err, tc.want, tc.name)
		}
	}
}

func TestCheckSize(t *testing.T) {
	big := &pb.PutRequest{Key: []byte("k"), Value: make([]byte, DefaultMaxRequestBytes)}
	require.ErrorIs(t, CheckSize(big, DefaultMaxRequestBytes), ErrRequestTooLarge)
	small := &pb.PutRequest{Key: []byte("k"), Value: make([]byte, DefaultMaxRequestBytes-100)}
	require.NoError(t, CheckSize(small, DefaultMaxRequestBytes))
}
