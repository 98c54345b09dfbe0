package grpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/metastore/metastore/raft"
	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/version"
)

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *server.Server
}

// Status is cheap: it reads counters and size estimates (server/replies.go).
func (m *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := m.s.Status(ctx)
	return resp, toGRPC(err)
}

func (m *maintenanceServer) header(rev int64) *pb.ResponseHeader {
	n := m.s.Node()
	return &pb.ResponseHeader{ClusterId: n.ClusterID(), MemberId: n.ID(), RaftTerm: n.Term(), Revision: rev}
}

// Hash hashes the whole keyspace at the current revision.
func (m *maintenanceServer) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	resp, err := m.s.Hash()
	return resp, toGRPC(err)
}

// HashKV hashes the versions up to a revision (0: current).
func (m *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	resp, err := m.s.HashKV(r.Revision)
	return resp, toGRPC(err)
}

// Defragment reclaims free space online (see server.Defragment).
func (m *maintenanceServer) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := m.s.Defragment(ctx); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.DefragmentResponse{Header: m.header(m.s.Store().Rev())}, nil
}

// snapshotChunk is the blob size of each Snapshot message (etcd: 32 KiB).
const snapshotChunk = 32 * 1024

// Snapshot streams a consistent copy of the member's state as etcd does:
// messages with remaining_bytes counting down to 0, then one last message
// whose blob is the SHA-256 of everything sent before it.
func (m *maintenanceServer) Snapshot(r *pb.SnapshotRequest, srv pb.Maintenance_SnapshotServer) error {
	ss, err := m.s.NewStateSnapshot()
	if err != nil {
		return toGRPC(err)
	}
	return sendSnapshot(ss, m.header(ss.Revision()), srv)
}

// stateSnapshot is what sendSnapshot reads; *server.StateSnapshot is one.
type stateSnapshot interface {
	io.WriterTo
	Size() int64
	Revision() int64
	Close() error
}

var _ stateSnapshot = (*server.StateSnapshot)(nil)

// sendSnapshot streams ss to srv in snapshotChunk blobs, every message with
// hdr, and closes ss.
func sendSnapshot(ss stateSnapshot, hdr *pb.ResponseHeader, srv pb.Maintenance_SnapshotServer) error {
	// NB: ss is closed by the reader's Close, only once WriteTo has
	// returned (server.SnapshotReader).
	pr := server.SnapshotReader(ss)
	defer pr.Close()
	h := sha256.New()
	total, sent := ss.Size(), int64(0)
	for total-sent > 0 {
		buf := make([]byte, min(snapshotChunk, total-sent)) // Send may keep buf: never reuse it
		n, err := io.ReadFull(pr, buf)
		if err != nil {
			return toGRPC(err)
		}
		sent += int64(n)
		h.Write(buf[:n])
		if err := srv.Send(&pb.SnapshotResponse{Header: hdr, RemainingBytes: uint64(total - sent),
			Blob: buf[:n], Version: version.EtcdStorageVersion}); err != nil {
			return err
		}
	}
	return srv.Send(&pb.SnapshotResponse{Header: hdr, Blob: h.Sum(nil), Version: version.EtcdStorageVersion})
}

// Alarm gets, activates or deactivates alarms (server.Alarm).
func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp, err := m.s.Alarm(ctx, r)
	if err != nil {
		return nil, toGRPC(err)
	}
	return resp, nil
}

// MoveLeader transfers leadership; only the leader takes it, as etcd.
func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := m.s.MoveLeader(ctx, r.TargetID); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return nil, rpctypes.ErrGRPCNotLeader
		}
		return nil, toGRPC(err)
	}
	return &pb.MoveLeaderResponse{Header: m.header(m.s.Store().Rev())}, nil
}

// Downgrade answers etcd's downgrade validate/enable/cancel.
func (m *maintenanceServer) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return downgrade(ctx, m.s, r)
}

// downgrader is what Downgrade needs; *server.Server is one.
type downgrader interface {
	Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error)
	LeaseHeader() *pb.ResponseHeader
}

var _ downgrader = (*server.Server)(nil)

// downgrade calls server.Downgrade and adds the response header etcd fills
// (cluster and member ID, current revision, raft term), which the server
// leaves out; the HTTP gateway does the same (http/maintenance.go).
func downgrade(ctx context.Context, d downgrader, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	resp, err := d.Downgrade(ctx, r)
	if err != nil {
		return nil, toGRPC(err)
	}
	if resp.Header == nil {
		resp.Header = d.LeaseHeader()
	}
	return resp, nil
}
