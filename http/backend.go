package http

import (
	"context"
	"strconv"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/version"
)

// KV is what the key-value handlers need; *server.Server implements it.
// Every call is linearizable unless the request says serializable, and fills
// the response header.
//
// NB: the handlers pass requests whose byte fields borrow fasthttp's request
// buffers and pooled memory. An implementation must not keep a request (or
// its Key/Value slices) after it returns; the server marshals proposals
// before returning, so it does not.
type KV interface {
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error)
}

// Maintenance is what the cluster, maintenance and health endpoints need.
type Maintenance interface {
	MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error)
	Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error)
	Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error)
	HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error)
	Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error)
	// Alarms lists the active alarms of the cluster.
	Alarms() []*pb.AlarmMember
	// Leader is the current leader's ID, 0 when none is known.
	Leader() uint64
	// IsLearner reports whether this member is a learner.
	IsLearner() bool
}

var _ KV = (*server.Server)(nil)

// memberInfo answers Maintenance over a server. It builds the same replies as
// grpc/cluster.go and grpc/maintenance.go (a front end may not import the
// other; see the report about moving these replies into server/).
type memberInfo struct{ s *server.Server }

var _ Maintenance = memberInfo{}

func (m memberInfo) header(rev int64) *pb.ResponseHeader {
	n := m.s.Node()
	return &pb.ResponseHeader{ClusterId: n.ClusterID(), MemberId: n.ID(), RaftTerm: n.Term(), Revision: rev}
}

func (m memberInfo) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if _, err := m.s.Node().ReadIndex(ctx); err != nil {
			return nil, err
		}
	}
	ms := m.s.Node().Members()
	out := make([]*pb.Member, 0, len(ms))
	for _, x := range ms {
		out = append(out, &pb.Member{ID: x.ID, Name: x.Name, PeerURLs: x.PeerURLs, ClientURLs: x.ClientURLs, IsLearner: x.IsLearner})
	}
	return &pb.MemberListResponse{Header: m.header(m.s.Store().Rev()), Members: out}, nil
}

func (m memberInfo) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	st, err := m.s.Node().Status(ctx)
	if err != nil {
		return nil, err
	}
	h := m.header(m.s.Store().Rev())
	h.RaftTerm = st.Term
	resp := &pb.StatusResponse{
		Header: h, Version: version.EtcdAPIVersion, StorageVersion: version.EtcdAPIVersion,
		DbSize: m.s.DBSize(), DbSizeInUse: m.s.DBSizeInUse(), DbSizeQuota: m.s.QuotaBytes(),
		Leader: st.Leader, RaftIndex: st.Commit, RaftTerm: st.Term, RaftAppliedIndex: st.Applied,
		IsLearner: st.IsLearner, DowngradeInfo: m.s.DowngradeInfo(),
	}
	if resp.Leader == 0 {
		resp.Errors = append(resp.Errors, "etcdserver: no leader")
	}
	for _, a := range m.s.Alarms(pb.AlarmType_NONE) {
		resp.Errors = append(resp.Errors, "memberID:"+strconv.FormatUint(a.MemberID, 10)+" alarm:"+a.Alarm.String()+" ")
	}
	return resp, nil
}

func (m memberInfo) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return m.s.Alarm(ctx, r)
}

func (m memberInfo) Alarms() []*pb.AlarmMember { return m.s.Alarms(pb.AlarmType_NONE) }

func (m memberInfo) Hash(context.Context, *pb.HashRequest) (*pb.HashResponse, error) {
	h, rev, err := m.s.Store().Hash()
	if err != nil {
		return nil, err
	}
	return &pb.HashResponse{Header: m.header(rev), Hash: h}, nil
}

func (m memberInfo) HashKV(_ context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	h, rev, compactRev, err := m.s.Store().HashKV(r.Revision)
	if err != nil {
		return nil, err
	}
	return &pb.HashKVResponse{Header: m.header(m.s.Store().Rev()), Hash: h, CompactRevision: compactRev, HashRevision: rev}, nil
}

func (m memberInfo) Leader() uint64 { return m.s.Node().Leader() }

func (m memberInfo) IsLearner() bool {
	id := m.s.Node().ID()
	for _, x := range m.s.Node().Members() {
		if x.ID == id {
			return x.IsLearner
		}
	}
	return false
}
