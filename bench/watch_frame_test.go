package bench

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// watchFrame reads from the wire exactly what a full decode of the
// WatchResponse would give the receive loop.

// seqValue is a value of size bytes starting with seq (cut short when size < 8).
func seqValue(seq uint64, size int) []byte {
	v := binary.BigEndian.AppendUint64(nil, seq)
	if size < 8 {
		return v[:size]
	}
	return append(v, make([]byte, size-8)...)
}

func TestWatchFrame_DecodesWhatTheLoopUses(t *testing.T) {
	t.Logf("Step 1: prepare responses: events with and without previous versions, short values, created, canceled, and a header")
	hdr := &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: 99, RaftTerm: 3}
	ev := func(seq uint64, size int, prev bool) *mvccpb.Event {
		e := &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte("k"), Value: seqValue(seq, size), ModRevision: 9, Version: 2}}
		if prev {
			e.PrevKv = &mvccpb.KeyValue{Key: []byte("k"), Value: seqValue(1234, 16)}
		}
		return e
	}
	del := &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte("k"), ModRevision: 10}}
	cases := []struct {
		resp *pb.WatchResponse
		want watchFrame
	}{
		{&pb.WatchResponse{Header: hdr, WatchId: 7, Events: []*mvccpb.Event{ev(5, 256, false), ev(6, 8, true), del}},
			watchFrame{watchID: 7, seqs: []int64{5, 6, -1}}},
		{&pb.WatchResponse{Header: hdr, WatchId: 1 << 40, Events: []*mvccpb.Event{ev(0, 7, false), ev(1<<63, 8, false)}, Fragment: true},
			watchFrame{watchID: 1 << 40, seqs: []int64{-1, -1}}},
		{&pb.WatchResponse{Header: hdr, WatchId: 3, Created: true}, watchFrame{watchID: 3, created: true}},
		{&pb.WatchResponse{Header: hdr, WatchId: -1, Canceled: true, CancelReason: "gone", CompactRevision: 4},
			watchFrame{watchID: -1, canceled: true, cancelReason: "gone"}},
		{&pb.WatchResponse{Header: hdr}, watchFrame{}},
	}

	t.Logf("Step 2: decode each, in one buffer and split over three, with one reused frame")
	codec := newWatchCodec()
	var f watchFrame
	for i, c := range cases {
		b, err := proto.Marshal(c.resp)
		require.NoError(t, err)
		third := len(b) / 3
		for _, data := range []mem.BufferSlice{
			{mem.SliceBuffer(b)},
			{mem.SliceBuffer(b[:third]), mem.SliceBuffer(b[third : 2*third]), mem.SliceBuffer(b[2*third:])},
		} {
			require.NoError(t, codec.Unmarshal(data, &f), "case %d", i)
			require.Equal(t, c.want.watchID, f.watchID, "case %d", i)
			require.Equal(t, c.want.created, f.created, "case %d", i)
			require.Equal(t, c.want.canceled, f.canceled, "case %d", i)
			require.Equal(t, c.want.cancelReason, f.cancelReason, "case %d", i)
			require.Equal(t, len(c.want.seqs), len(f.seqs), "case %d", i)
			for k := range c.want.seqs {
				require.Equal(t, c.want.seqs[k], f.seqs[k], "case %d event %d", i, k)
			}
		}
	}

	t.Logf("Step 3: a truncated response is an error; other messages still go through the proto codec")
	b, err := proto.Marshal(cases[0].resp)
	require.NoError(t, err)
	require.ErrorIs(t, codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:len(b)-3])}, &f), errBadFrame)
	var full pb.WatchResponse
	require.NoError(t, codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &full))
	require.True(t, proto.Equal(cases[0].resp, &full))
}
