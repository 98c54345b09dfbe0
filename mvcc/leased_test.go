package mvcc

import (
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestStore_LeasedKeys(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			s := openStore(t, ec, Config{Leases: newFakeLeases(7, 8)})
			t.Logf("Step 1: keys with and without leases, moved, deleted, with a 0x00 byte")
			putReq(t, s, &pb.PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: 7})
			putReq(t, s, &pb.PutRequest{Key: []byte("b"), Value: []byte("1")})
			putReq(t, s, &pb.PutRequest{Key: []byte("c"), Value: []byte("1"), Lease: 7})
			putReq(t, s, &pb.PutRequest{Key: []byte("c"), Value: []byte("2"), Lease: 8})
			putReq(t, s, &pb.PutRequest{Key: []byte("d\x00e"), Value: []byte("1"), Lease: 8})
			putReq(t, s, &pb.PutRequest{Key: []byte("f"), Value: []byte("1"), Lease: 7})
			putReq(t, s, &pb.PutRequest{Key: []byte("g"), Value: []byte("1"), Lease: 7})
			putReq(t, s, &pb.PutRequest{Key: []byte("g"), Value: []byte("2")})
			apply(t, s, func(a *Apply) {
				n, err := a.DeleteKeys([][]byte{[]byte("f"), []byte("nope")})
				require.NoError(t, err)
				require.Equal(t, int64(1), n)
			})

			t.Logf("Step 2: the scan reports the live keys' current leases, in key order")
			type pair struct {
				key   string
				lease int64
			}
			var got []pair
			require.NoError(t, s.LeasedKeys(func(key []byte, lease int64) { got = append(got, pair{string(key), lease}) }))
			require.Equal(t, []pair{{"a", 7}, {"c", 8}, {"d\x00e", 8}}, got)
		})
	}
}
