package grpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/server"
)

// fakeSnapshot stands for server.StateSnapshot over a pinned engine
// snapshot: Close must not come while WriteTo still runs, since WriteTo
// reads the engine state until it returns.
type fakeSnapshot struct {
	data     []byte
	rev      int64
	writeErr error // returned by WriteTo after the first piece, if set

	running            atomic.Bool
	closes             atomic.Int32
	closedWhileRunning atomic.Bool
	closed             chan struct{}
}

func newFakeSnapshot(size int) *fakeSnapshot {
	f := &fakeSnapshot{data: make([]byte, size), rev: 42, closed: make(chan struct{})}
	for i := range f.data {
		f.data[i] = byte(i * 7)
	}
	return f
}

func (f *fakeSnapshot) Size() int64     { return int64(len(f.data)) }
func (f *fakeSnapshot) Revision() int64 { return f.rev }

// closeWait bounds how long WriteTo, once its reader is gone, stays running
// to see whether Close comes meanwhile (a real snapshot would still be
// reading the engine then). NB: it is not a poll: the fixed code pays it
// once, the broken code is caught as soon as Close comes.
const closeWait = 300 * time.Millisecond

func (f *fakeSnapshot) WriteTo(w io.Writer) (int64, error) {
	f.running.Store(true)
	defer f.running.Store(false)
	var n int64
	for off := 0; off < len(f.data); off += 1000 {
		if f.writeErr != nil && off > 0 {
			return n, f.writeErr
		}
		m, err := w.Write(f.data[off:min(off+1000, len(f.data))])
		n += int64(m)
		if err != nil {
			select {
			case <-f.closed:
			case <-time.After(closeWait):
			}
			return n, err
		}
	}
	return n, nil
}

func (f *fakeSnapshot) Close() error {
	if f.running.Load() {
		f.closedWhileRunning.Store(true)
	}
	if f.closes.Add(1) == 1 {
		close(f.closed)
	}
	return nil
}

var _ stateSnapshot = (*fakeSnapshot)(nil)

// fakeSnapshotStream records what is sent; Send number failAt (from 1)
// fails as when the client went away.
type fakeSnapshotStream struct {
	grpc.ServerStream // nil: sendSnapshot only calls Send
	msgs              []*pb.SnapshotResponse
	failAt            int
	err               error
}

func (s *fakeSnapshotStream) Send(m *pb.SnapshotResponse) error {
	if len(s.msgs)+1 == s.failAt {
		return s.err
	}
	s.msgs = append(s.msgs, m)
	return nil
}

func TestSendSnapshot_StreamsChunksAndChecksum(t *testing.T) {
	ss := newFakeSnapshot(2*snapshotChunk + 4464)
	hdr := &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: 42, RaftTerm: 3}
	srv := &fakeSnapshotStream{}

	require.NoError(t, sendSnapshot(ss, hdr, srv))

	require.Len(t, srv.msgs, 4, "three blobs and the checksum")
	var data []byte
	for i, want := range []struct {
		size      int
		remaining uint64
	}{{snapshotChunk, snapshotChunk + 4464}, {snapshotChunk, 4464}, {4464, 0}} {
		m := srv.msgs[i]
		require.Len(t, m.Blob, want.size, "message %d", i)
		require.Equal(t, want.remaining, m.RemainingBytes, "message %d", i)
		require.Same(t, hdr, m.Header, "message %d", i)
		require.Equal(t, "3.7.0", m.Version, "message %d: etcd sends its storage version, major.minor.0", i)
		data = append(data, m.Blob...)
	}
	require.Equal(t, ss.data, data)
	sum := sha256.Sum256(ss.data)
	require.Equal(t, sum[:], srv.msgs[3].Blob)
	require.Zero(t, srv.msgs[3].RemainingBytes)
	require.Same(t, hdr, srv.msgs[3].Header)
	require.Equal(t, int32(1), ss.closes.Load())
	require.False(t, ss.closedWhileRunning.Load())
}

// TestSendSnapshot_ClosesOnlyAfterWriterReturns: however the stream ends
// early, the snapshot is closed once, after WriteTo has returned.
func TestSendSnapshot_ClosesOnlyAfterWriterReturns(t *testing.T) {
	gone := status.Error(codes.Canceled, "client gone")
	for _, tc := range []struct {
		name     string
		failAt   int   // Send that fails (0: none)
		writeErr error // WriteTo's error (nil: none)
		wantSent int
		wantErr  string
	}{
		{name: "first Send fails", failAt: 1, wantSent: 0, wantErr: "client gone"},
		{name: "second Send fails", failAt: 2, wantSent: 1, wantErr: "client gone"},
		{name: "WriteTo fails", writeErr: errors.New("engine: read failed"), wantSent: 0, wantErr: "engine: read failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := newFakeSnapshot(4 * snapshotChunk)
			ss.writeErr = tc.writeErr
			srv := &fakeSnapshotStream{failAt: tc.failAt, err: gone}

			err := sendSnapshot(ss, &pb.ResponseHeader{}, srv)

			require.ErrorContains(t, err, tc.wantErr)
			require.Len(t, srv.msgs, tc.wantSent)
			require.False(t, ss.running.Load(), "WriteTo still runs after sendSnapshot returned")
			require.False(t, ss.closedWhileRunning.Load(), "the snapshot was closed while WriteTo read it")
			require.Equal(t, int32(1), ss.closes.Load())
		})
	}
}

type fakeDowngrader struct {
	resp *pb.DowngradeResponse
	err  error
	hdr  *pb.ResponseHeader
}

func (f *fakeDowngrader) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return f.resp, f.err
}

func (f *fakeDowngrader) LeaseHeader() *pb.ResponseHeader { return f.hdr }

var _ downgrader = (*fakeDowngrader)(nil)

// TestDowngrade_FillsHeader: as etcd's, the response carries the cluster
// and member ID, the current revision and the raft term; errors are etcd's.
func TestDowngrade_FillsHeader(t *testing.T) {
	hdr := &pb.ResponseHeader{ClusterId: 11, MemberId: 22, Revision: 33, RaftTerm: 4}
	own := &pb.ResponseHeader{ClusterId: 5, MemberId: 6, Revision: 7, RaftTerm: 8}
	for _, tc := range []struct {
		name    string
		resp    *pb.DowngradeResponse
		err     error
		want    *pb.DowngradeResponse
		wantErr error
	}{
		{name: "no header: filled", resp: &pb.DowngradeResponse{Version: "3.7"},
			want: &pb.DowngradeResponse{Header: hdr, Version: "3.7"}},
		{name: "header kept", resp: &pb.DowngradeResponse{Header: own, Version: "3.7"},
			want: &pb.DowngradeResponse{Header: own, Version: "3.7"}},
		{name: "error translated", err: fmt.Errorf("downgrade: %w", server.ErrInvalidDowngradeTargetVersion),
			wantErr: rpctypes.ErrGRPCInvalidDowngradeTargetVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDowngrader{resp: tc.resp, err: tc.err, hdr: hdr}
			resp, err := downgrade(context.Background(), d, &pb.DowngradeRequest{Action: pb.DowngradeRequest_VALIDATE, Version: "3.6"})
			require.Equal(t, tc.wantErr, err)
			require.Equal(t, tc.want, resp)
		})
	}
}
