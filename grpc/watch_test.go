package grpc

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

func putEvent(rev int64, size int) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: fmt.Appendf(nil, "k%d", rev),
		Value: []byte(strings.Repeat("v", size)), CreateRevision: rev, ModRevision: rev, Version: 1}}
}

func TestSendFragments(t *testing.T) {
	const limit = 10000
	tests := []struct {
		name   string
		events []int // value sizes
		want   []int // events per message
	}{
		{"under the limit goes whole", []int{100, 100, 100}, []int{3}},
		{"one event goes whole however large", []int{50000}, []int{1}},
		{"split, each message under the limit", []int{3000, 3000, 3000, 3000, 3000, 3000, 3000}, []int{3, 3, 1}},
		{"an oversized event travels alone", []int{100, 20000, 100}, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wr := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 99}, WatchId: 3}
			for i, n := range tt.events {
				wr.Events = append(wr.Events, putEvent(int64(i+2), n))
			}
			var sent []*pb.WatchResponse
			require.NoError(t, sendFragments(wr, limit, func(r *pb.WatchResponse) error {
				sent = append(sent, r)
				return nil
			}))
			var counts []int
			var revs []int64
			for i, r := range sent {
				counts = append(counts, len(r.Events))
				require.Equal(t, i < len(sent)-1, r.Fragment, "message %d fragment flag", i)
				require.Equal(t, int64(3), r.WatchId)
				require.Equal(t, int64(99), r.Header.Revision)
				if len(r.Events) > 1 {
					require.Less(t, proto.Size(r), limit, "message %d", i)
				}
				for _, ev := range r.Events {
					revs = append(revs, ev.Kv.ModRevision)
				}
			}
			require.Equal(t, tt.want, counts)
			for i, rev := range revs {
				require.Equal(t, int64(i+2), rev)
			}
		})
	}
}
