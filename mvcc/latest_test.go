package mvcc

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestLatestCache_SameResultsWithAndWithoutCache drives three stores with
// the same random requests: one without the latest-version cache, one with
// a cache so small that it evicts on almost every write, and one with the
// default. Applies hold several requests, some are aborted, and history is
// compacted now and then. Every reply and the full state (with create/mod
// revisions, versions and leases) must be the same on all three.
func TestLatestCache_SameResultsWithAndWithoutCache(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			t.Logf("Step 1: three stores, cache off / tiny / default, with leases 1 and 2")
			sizes := []int{-1, 3 * (latestEntryOverhead + 4), 0}
			stores := make([]*Store, len(sizes))
			for i, size := range sizes {
				stores[i] = openStore(t, ec, Config{LatestCacheBytes: size, Leases: newFakeLeases(1, 2)})
			}
			rng := rand.New(rand.NewSource(20261125))
			key := func() []byte { return []byte(fmt.Sprintf("k%02d", rng.Intn(12))) }
			randomReq := func() *pb.InternalRaftRequest {
				switch n := rng.Intn(10); {
				case n < 4:
					return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key(), Value: []byte{byte(rng.Intn(256))},
						Lease: int64(rng.Intn(3)), IgnoreLease: n == 3, PrevKv: n == 2}}
				case n < 5:
					return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key(), IgnoreValue: true}}
				case n < 7:
					k := key()
					var end []byte
					if n == 6 {
						end = []byte(fmt.Sprintf("k%02d", int(k[2]-'0')+rng.Intn(3)))
					}
					return &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: k, RangeEnd: end, PrevKv: true}}
				default:
					k := key()
					return &pb.InternalRaftRequest{Txn: &pb.TxnRequest{
						Compare: []*pb.Compare{randomCompare(rng, k)},
						Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: k, Value: []byte("s")}}}},
						Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: key(), Value: []byte("f")}}}},
					}}
				}
			}
			run := func(a *Apply, r *pb.InternalRaftRequest) string {
				var resp fmt.Stringer
				var err error
				switch {
				case r.Put != nil:
					resp, err = a.Put(r.Put)
				case r.DeleteRange != nil:
					resp, err = a.DeleteRange(r.DeleteRange)
				default:
					resp, err = a.Txn(r.Txn)
				}
				if err != nil {
					return "error: " + err.Error()
				}
				return resp.String()
			}

			t.Logf("Step 2: 300 applies of 1-5 requests; every 7th aborted, every 50th compacts")
			for round := 0; round < 300; round++ {
				reqs := make([]*pb.InternalRaftRequest, 1+rng.Intn(5))
				for i := range reqs {
					reqs[i] = randomReq()
				}
				abort := round%7 == 6
				var replies [][]string
				for _, s := range stores {
					a := s.NewApply()
					var got []string
					for _, r := range reqs {
						got = append(got, run(a, r))
					}
					if round%50 == 49 && a.Rev() > 2 {
						_, err := a.Compact(a.Rev() - 1)
						require.NoError(t, err)
					}
					if abort {
						a.Abort()
					} else {
						_, err := a.Commit(false)
						require.NoError(t, err)
					}
					replies = append(replies, got)
				}

				t.Logf("Step 3 (round %d): replies and state are equal on all stores", round)
				for i := 1; i < len(stores); i++ {
					require.Equal(t, replies[0], replies[i], "round %d replies, store %d", round, i)
					require.Equal(t, stores[0].Rev(), stores[i].Rev())
					all := &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}
					require.Equal(t, get(t, stores[0], all).String(), get(t, stores[i], all).String(), "round %d state, store %d", round, i)
				}
			}
			require.Greater(t, len(stores[2].latest.m), 0, "the default cache was used")
			require.LessOrEqual(t, stores[1].latest.bytes, sizes[1], "the tiny cache stayed in its bound")

			t.Logf("Step 4: on a fresh store, 100 puts then one DeleteRange of all: the cache drops the dead keys")
			s := openStore(t, ec, Config{})
			for i := 0; i < 100; i++ {
				put(t, s, fmt.Sprintf("d%03d", i), "v")
			}
			require.Len(t, s.latest.m, 100)
			require.Equal(t, int64(100), del(t, s, "d", "e", false).Deleted)
			require.Empty(t, s.latest.m)
			require.Zero(t, s.latest.bytes)
		})
	}
}

func randomCompare(rng *rand.Rand, k []byte) *pb.Compare {
	c := &pb.Compare{Key: k, Result: pb.Compare_CompareResult(rng.Intn(4))}
	n := int64(rng.Intn(40))
	switch rng.Intn(5) {
	case 0:
		c.Target, c.TargetUnion = pb.Compare_VERSION, &pb.Compare_Version{Version: n % 4}
	case 1:
		c.Target, c.TargetUnion = pb.Compare_CREATE, &pb.Compare_CreateRevision{CreateRevision: n}
	case 2:
		c.Target, c.TargetUnion = pb.Compare_MOD, &pb.Compare_ModRevision{ModRevision: n}
	case 3:
		c.Target, c.TargetUnion = pb.Compare_LEASE, &pb.Compare_Lease{Lease: n % 3}
	default:
		c.Target, c.TargetUnion = pb.Compare_VALUE, &pb.Compare_Value{Value: []byte("s")}
	}
	return c
}
