package http

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/server"
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

func (m memberInfo) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return m.s.MemberList(ctx, r.Linearizable)
}

func (m memberInfo) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	return m.s.Status(ctx)
}

func (m memberInfo) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return m.s.Alarm(ctx, r)
}

func (m memberInfo) Alarms() []*pb.AlarmMember { return m.s.Alarms(pb.AlarmType_NONE) }

func (m memberInfo) Hash(context.Context, *pb.HashRequest) (*pb.HashResponse, error) {
	return m.s.Hash()
}

func (m memberInfo) HashKV(_ context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	return m.s.HashKV(r.Revision)
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
