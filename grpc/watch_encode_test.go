package grpc

import (
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/mvcc"
)

// The assembled bytes are exactly what proto.Marshal makes of the same
// WatchResponse, for shared events, stripped and kept PrevKv, watch IDs 0,
// small, large and negative, and a header change within the batch.
func TestWatchEncoder_SameBytesAsMarshal(t *testing.T) {
	t.Logf("Step 1: events shared by several responses, one with a previous version")
	kv := func(k, v string, rev int64) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{Key: []byte(k), Value: []byte(v), CreateRevision: 2, ModRevision: rev, Version: rev - 1, Lease: 7}
	}
	put := &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv("a", "1", 5), PrevKv: kv("a", "0", 4)}
	del := &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte("b"), ModRevision: 6}}
	h5 := &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: 5, RaftTerm: 3}
	h6 := &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: 6, RaftTerm: 3}
	cases := []struct {
		r   mvcc.WatchResponse
		hdr *pb.ResponseHeader
	}{
		{mvcc.WatchResponse{WatchID: 0, Events: []*mvccpb.Event{put}}, h5},
		{mvcc.WatchResponse{WatchID: 1, Events: []*mvccpb.Event{put}, PrevKV: true}, h5},
		{mvcc.WatchResponse{WatchID: 300, Events: []*mvccpb.Event{put, del}}, h6},
		{mvcc.WatchResponse{WatchID: -5, Events: []*mvccpb.Event{put, del}, PrevKV: true}, h6},
		{mvcc.WatchResponse{WatchID: 1 << 40, Events: []*mvccpb.Event{del}}, h5},
	}

	t.Logf("Step 2: encode them in three batches (past a fresh arena's size) and compare each with proto.Marshal")
	var enc watchEncoder
	var gots, wants [][]byte
	for round := 0; round < 3; round++ {
		for i := 0; i < arenaBytes/40; i++ {
			c := cases[i%len(cases)]
			got, err := enc.encode(&c.r, c.hdr)
			require.NoError(t, err)
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.WatchResponse{Header: c.hdr, WatchId: c.r.WatchID,
				Events: mvcc.EventsFor(c.r.Events, c.r.PrevKV)})
			require.NoError(t, err)
			require.Equal(t, want, got, "case %d", i%len(cases))
			gots, wants = append(gots, got), append(wants, want)
		}
		enc.reset()
	}

	t.Logf("Step 2b: every response still holds its bytes after all the others were encoded (gRPC may not have written it yet)")
	for i := range gots {
		require.Equal(t, wants[i], gots[i], "response %d", i)
	}

	t.Logf("Step 3: the shared events were not changed (PrevKv stripped in copies only)")
	require.NotNil(t, put.PrevKv)
	enc.reset()
	require.Empty(t, enc.events)
}

// The codec sends an encoded message as is and marshals everything else
// as gRPC's proto codec does.
func TestPassthroughCodec(t *testing.T) {
	c := passthroughCodec{proto: encoding.GetCodecV2("proto")}
	require.Equal(t, "proto", c.Name())

	t.Logf("Step 1: an encoded message goes out byte for byte")
	out, err := c.Marshal(&encodedMsg{b: []byte{1, 2, 3}})
	require.NoError(t, err)
	require.Equal(t, []byte{1, 2, 3}, out.Materialize())

	t.Logf("Step 2: a proto message round-trips")
	out, err = c.Marshal(&pb.PutRequest{Key: []byte("k")})
	require.NoError(t, err)
	var back pb.PutRequest
	require.NoError(t, c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(out.Materialize())}, &back))
	require.Equal(t, "k", string(back.Key))
}
