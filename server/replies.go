package server

import (
	"context"
	"strconv"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/version"
)

// The replies of the Cluster and Maintenance read calls, built once here so
// that the gRPC service and the HTTP gateway answer alike.

// headerAt is a response header at rev with cluster, member and term.
func (s *Server) headerAt(rev int64) *pb.ResponseHeader {
	h := &pb.ResponseHeader{Revision: rev}
	s.fillHeader(h)
	return h
}

// MemberList lists the members; linearizable first confirms with a quorum
// that this member's view is current.
func (s *Server) MemberList(ctx context.Context, linearizable bool) (*pb.MemberListResponse, error) {
	if linearizable {
		if err := s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
	}
	return &pb.MemberListResponse{Header: s.headerAt(s.store.Rev()), Members: membersOf(s.node.Members())}, nil
}

// Status is cheap: it reads counters and size estimates, never the whole
// database. Errors lists "no leader" and the active alarms as etcd does.
func (s *Server) Status(ctx context.Context) (*pb.StatusResponse, error) {
	st, err := s.node.Status(ctx)
	if err != nil {
		return nil, err
	}
	h := s.headerAt(s.store.Rev())
	h.RaftTerm = st.Term
	resp := &pb.StatusResponse{
		Header: h, Version: version.EtcdAPIVersion, StorageVersion: version.EtcdStorageVersion,
		DbSize: s.DBSize(), DbSizeInUse: s.DBSizeInUse(), DbSizeQuota: s.QuotaBytes(),
		Leader: st.Leader, RaftIndex: st.Commit, RaftTerm: st.Term, RaftAppliedIndex: st.Applied,
		IsLearner: st.IsLearner, DowngradeInfo: s.DowngradeInfo(),
	}
	if resp.Leader == 0 {
		resp.Errors = append(resp.Errors, "etcdserver: no leader")
	}
	for _, a := range s.Alarms(pb.AlarmType_NONE) {
		// The protobuf text form of the AlarmMember, as etcd lists it.
		resp.Errors = append(resp.Errors, "memberID:"+strconv.FormatUint(a.MemberID, 10)+" alarm:"+a.Alarm.String()+" ")
	}
	return resp, nil
}

// Hash hashes the whole keyspace at the current revision.
func (s *Server) Hash() (*pb.HashResponse, error) {
	h, rev, err := s.store.Hash()
	if err != nil {
		return nil, err
	}
	return &pb.HashResponse{Header: s.headerAt(rev), Hash: h}, nil
}

// HashKV hashes the versions up to rev (0: current); members with the same
// history return the same hash at the same revision.
func (s *Server) HashKV(rev int64) (*pb.HashKVResponse, error) {
	h, hashRev, compactRev, err := s.store.HashKV(rev)
	if err != nil {
		return nil, err
	}
	return &pb.HashKVResponse{Header: s.headerAt(s.store.Rev()), Hash: h, CompactRevision: compactRev, HashRevision: hashRev}, nil
}
