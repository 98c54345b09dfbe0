package mvcc

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// TestStore_RangeStreamEqualsRange: the chunks of RangeStream, concatenated,
// and its final response equal Range's answer for every kind of request,
// and large results come in several chunks.
func TestStore_RangeStreamEqualsRange(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		big := strings.Repeat("x", 100<<10) // 100 KiB values: ~10 per chunk
		for i := 0; i < 40; i++ {
			put(t, s, fmt.Sprintf("k%02d", i), big+fmt.Sprint(i))
		}
		put(t, s, "k05", "small") // rev 42
		cases := []*pb.RangeRequest{
			{Key: []byte("k"), RangeEnd: []byte("l")},
			{Key: []byte("k"), RangeEnd: []byte("l"), Limit: 7},
			{Key: []byte("k"), RangeEnd: []byte("l"), Revision: 20},
			{Key: []byte("k"), RangeEnd: []byte("l"), KeysOnly: true},
			{Key: []byte("k"), RangeEnd: []byte("l"), CountOnly: true},
			{Key: []byte("k"), RangeEnd: []byte("l"), SortOrder: pb.RangeRequest_DESCEND, Limit: 12},
			{Key: []byte("k"), RangeEnd: []byte("l"), MinModRevision: 30},
			{Key: []byte("k10")},
			{Key: []byte("zz")},
		}
		for i, req := range cases {
			want := get(t, s, req)
			var got []*mvccpb.KeyValue
			chunks := 0
			final, err := s.RangeStream(req, func(kvs []*mvccpb.KeyValue) error {
				chunks++
				got = append(got, kvs...)
				return nil
			})
			require.NoError(t, err, "case %d", i)
			requireKVs(t, want.Kvs, got)
			require.Equal(t, want.Count, final.Count, "case %d count", i)
			require.Equal(t, want.More, final.More, "case %d more", i)
			require.Equal(t, want.Header.Revision, final.Header.Revision, "case %d revision", i)
			require.Empty(t, final.Kvs)
			if len(want.Kvs) > 20 && !req.KeysOnly {
				require.Greater(t, chunks, 2, "case %d: a 4 MiB result comes in several chunks", i)
			}
		}
		compact(t, s, 30)
		_, err := s.RangeStream(&pb.RangeRequest{Key: []byte("k"), Revision: 20}, func([]*mvccpb.KeyValue) error { return nil })
		require.ErrorIs(t, err, ErrCompacted)
	})
}
