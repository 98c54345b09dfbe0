package mvcc

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/engine"
)

// dumpKeyspace is every record of one keyspace of s's engine, in order.
func dumpKeyspace(t *testing.T, s *Store, ks engine.Keyspace) []string {
	t.Helper()
	it := s.eng.NewIterator(ks, engine.IterOptions{})
	defer it.Close()
	var out []string
	for it.First(); it.Valid(); it.Next() {
		out = append(out, fmt.Sprintf("%q=%q", it.Key(), it.Value()))
	}
	require.NoError(t, it.Err())
	return out
}

// allocated runs fn and returns the bytes the Go heap allocated meanwhile.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A Put or DeleteRange made as an Apply's final request writes its versions
// without the overlay copy: the committed state is the same to the byte as
// without FinalRequest, the delete allocates at least its keys' bytes less,
// and a request after the final one is refused.
func TestApply_FinalRequestSkipsTheOverlay(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			const n, keyLen = 3000, 64
			key := func(i int) []byte { return fmt.Appendf(nil, "k/%0*d", keyLen-2, i) }
			leases := func() *fakeLeases { return newFakeLeases(7) }
			plain := openStore(t, ec, Config{MaxApplyEvents: 100, Leases: leases()})
			final := openStore(t, ec, Config{MaxApplyEvents: 100, Leases: leases()})
			stores := []*Store{plain, final}

			t.Logf("Step 1: the same %d keys (every fifth on lease 7) into both stores", n)
			for _, s := range stores {
				apply(t, s, func(a *Apply) {
					for i := 0; i < n; i++ {
						req := &pb.PutRequest{Key: key(i), Value: []byte("v")}
						if i%5 == 0 {
							req.Lease = 7
						}
						_, err := a.Put(req)
						require.NoError(t, err)
					}
				})
			}

			t.Logf("Step 2: one Apply each: a put, a txn, then a DeleteRange of them all; final only in the second store")
			allocs := make([]uint64, len(stores))
			for si, s := range stores {
				a := s.NewApply()
				_, err := a.Put(&pb.PutRequest{Key: []byte("x"), Value: []byte("1")})
				require.NoError(t, err)
				_, err = a.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{
					RequestPut: &pb.PutRequest{Key: key(1), Value: []byte("again")}}}}})
				require.NoError(t, err)
				if s == final {
					a.FinalRequest()
				}
				allocs[si] = allocated(func() {
					resp, err := a.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("k/"), RangeEnd: []byte("k0")})
					require.NoError(t, err)
					require.Equal(t, int64(n), resp.Deleted)
				})
				if s == final {
					_, err := a.Range(&pb.RangeRequest{Key: []byte("x")})
					require.ErrorIs(t, err, errAfterFinal, "a read after the final request")
					_, err = a.Put(&pb.PutRequest{Key: []byte("y")})
					require.ErrorIs(t, err, errAfterFinal, "a write after the final request")
				}
				_, err = a.Commit(false)
				require.NoError(t, err)
			}

			t.Logf("Step 3: final puts in Applies of their own: a key written twice, then over a deleted key")
			for _, s := range stores {
				for _, k := range [][]byte{[]byte("x"), []byte("x"), key(3)} {
					apply(t, s, func(a *Apply) {
						if s == final {
							a.FinalRequest()
						}
						_, err := a.Put(&pb.PutRequest{Key: k, Value: []byte("2"), Lease: 7})
						require.NoError(t, err)
					})
				}
			}

			t.Logf("Step 4: same versions, change log and leases; the final delete allocated less (%d against %d bytes)",
				allocs[1], allocs[0])
			require.Equal(t, dumpKeyspace(t, plain, engine.Data), dumpKeyspace(t, final, engine.Data))
			require.Equal(t, dumpKeyspace(t, plain, engine.ChangeLog), dumpKeyspace(t, final, engine.ChangeLog))
			require.Equal(t, plain.cfg.Leases.(*fakeLeases).attached, final.cfg.Leases.(*fakeLeases).attached)
			x := get(t, final, &pb.RangeRequest{Key: []byte("x")})
			require.Len(t, x.Kvs, 1)
			require.Equal(t, int64(3), x.Kvs[0].Version, "x: put, put, put")
			k3 := get(t, final, &pb.RangeRequest{Key: key(3)})
			require.Len(t, k3.Kvs, 1)
			require.Equal(t, int64(1), k3.Kvs[0].Version, "a key put after its delete starts over")
			require.Less(t, allocs[1]+n*keyLen, allocs[0], "the final delete's tombstones were copied into the overlay")
		})
	}
}
