package grpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strconv"

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

// Status is cheap: it reads counters and engine size estimates, never the
// whole database.
func (m *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	st, err := m.s.Node().Status(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	n := m.s.Node()
	resp := &pb.StatusResponse{
		Header:           &pb.ResponseHeader{ClusterId: n.ClusterID(), MemberId: n.ID(), RaftTerm: st.Term, Revision: m.s.Store().Rev()},
		Version:          version.EtcdAPIVersion,
		DbSize:           m.s.DBSize(),
		DbSizeInUse:      m.s.DBSizeInUse(),
		DbSizeQuota:      m.s.QuotaBytes(),
		Leader:           st.Leader,
		RaftIndex:        st.Commit,
		RaftTerm:         st.Term,
		RaftAppliedIndex: st.Applied,
		IsLearner:        st.IsLearner,
		StorageVersion:   version.EtcdAPIVersion,
		DowngradeInfo:    m.s.DowngradeInfo(),
	}
	if resp.Leader == 0 {
		resp.Errors = append(resp.Errors, "etcdserver: no leader")
	}
	for _, a := range m.s.Alarms(pb.AlarmType_NONE) {
		resp.Errors = append(resp.Errors, alarmString(a))
	}
	return resp, nil
}

// alarmString is an alarm as etcd's Status lists it (the protobuf text form
// of the AlarmMember).
func alarmString(a *pb.AlarmMember) string {
	return "memberID:" + strconv.FormatUint(a.MemberID, 10) + " alarm:" + a.Alarm.String() + " "
}

func (m *maintenanceServer) header(rev int64) *pb.ResponseHeader {
	n := m.s.Node()
	return &pb.ResponseHeader{ClusterId: n.ClusterID(), MemberId: n.ID(), RaftTerm: n.Term(), Revision: rev}
}

// Hash hashes the whole keyspace at the current revision.
func (m *maintenanceServer) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	h, rev, err := m.s.Store().Hash()
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashResponse{Header: m.header(rev), Hash: h}, nil
}

// HashKV hashes the versions up to a revision (0: current); members with
// the same history return the same hash at the same revision.
func (m *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	h, rev, compactRev, err := m.s.Store().HashKV(r.Revision)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashKVResponse{Header: m.header(m.s.Store().Rev()), Hash: h, CompactRevision: compactRev, HashRevision: rev}, nil
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
	defer ss.Close()
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() {
		_, err := ss.WriteTo(pw)
		pw.CloseWithError(err)
	}()
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
		if err := srv.Send(&pb.SnapshotResponse{Header: m.header(ss.Revision()), RemainingBytes: uint64(total - sent),
			Blob: buf[:n], Version: version.EtcdAPIVersion}); err != nil {
			return err
		}
	}
	return srv.Send(&pb.SnapshotResponse{Header: m.header(ss.Revision()), Blob: h.Sum(nil), Version: version.EtcdAPIVersion})
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
	resp, err := m.s.Downgrade(ctx, r)
	if err != nil {
		return nil, toGRPC(err)
	}
	return resp, nil
}
