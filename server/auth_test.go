package server

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/auth"
)

// applyHarness drives a server's applier directly, without raft, so that a
// test chooses exactly which entries come between a request's check and
// its apply. The server is not started: nothing else applies.
type applyHarness struct {
	t     *testing.T
	s     *Server
	index uint64
	id    uint64
}

func newApplyHarness(t *testing.T) *applyHarness {
	t.Helper()
	s, err := New(Config{Name: "a", DataDir: filepath.Join(t.TempDir(), "m"), Engine: EngineMemory,
		InitialCluster: soloCluster(t)})
	require.NoError(t, err)
	t.Cleanup(func() { s.store.Close(); s.closeEngines() })
	return &applyHarness{t: t, s: s}
}

// apply applies reqs as one slice of committed entries and returns each
// one's result. A request without a header is the server's own.
func (h *applyHarness) apply(reqs ...*pb.InternalRaftRequest) []result {
	h.t.Helper()
	var entries []*raftpb.Entry
	var chans []<-chan result
	for _, r := range reqs {
		h.id++
		if r.Header == nil {
			r.Header = &pb.RequestHeader{}
		}
		r.Header.ID = h.id
		ch, _ := h.s.waiters.register(h.id)
		chans = append(chans, ch)
		data, err := proto.Marshal(r)
		require.NoError(h.t, err)
		h.index++
		entries = append(entries, &raftpb.Entry{Index: new(h.index), Term: new(uint64(1)),
			Type: raftpb.EntryNormal.Enum(), Data: data})
	}
	require.NoError(h.t, applier{h.s}.Apply(entries))
	out := make([]result, len(chans))
	for i, ch := range chans {
		out[i] = <-ch
	}
	return out
}

// ok applies reqs and requires every one to succeed.
func (h *applyHarness) ok(reqs ...*pb.InternalRaftRequest) {
	h.t.Helper()
	for i, r := range h.apply(reqs...) {
		require.NoError(h.t, r.err, "request %d", i)
	}
}

// checked is req as a client's proposal: checked now for info (as
// propose does before proposing), with the header that check records.
func (h *applyHarness) checked(info *auth.AuthInfo, req *pb.InternalRaftRequest) *pb.InternalRaftRequest {
	h.t.Helper()
	req.Header = &pb.RequestHeader{}
	require.NoError(h.t, h.s.authorize(auth.WithInfo(context.Background(), info), req))
	return req
}

func (h *applyHarness) value(key string) string {
	h.t.Helper()
	r, err := h.s.store.Range(&pb.RangeRequest{Key: []byte(key)})
	require.NoError(h.t, err)
	if len(r.Kvs) == 0 {
		return ""
	}
	return string(r.Kvs[0].Value)
}

func put(key, val string, id int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(val), Lease: id}}
}

func grantRole(user, role string) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: user, Role: role}}
}

// setupAuth creates root and alice (read-write on /app/) and enables auth.
func (h *applyHarness) setupAuth() {
	h.t.Helper()
	h.ok(
		&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: "x"}},
		&pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "root"}},
		grantRole("root", "root"),
		&pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "app"}},
		&pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "app",
			Perm: &authpb.Permission{PermType: authpb.READWRITE, Key: []byte("/app/"), RangeEnd: []byte("/app0")}}},
		&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "alice", HashedPassword: "x"}},
		grantRole("alice", "app"),
		&pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}},
	)
}

// TestRecheckAtApply: a request checked before an auth change and applied
// after it is checked again, as its user, against the auth state at its
// log position: denied if the change took its permission away, applied if
// the change was unrelated. Lease attachments, which do not move the auth
// revision, are checked again always.
func TestRecheckAtApply(t *testing.T) {
	h := newApplyHarness(t)
	s := h.s
	h.setupAuth()
	alice := &auth.AuthInfo{Username: "alice"}

	t.Logf("Step 1: alice's put of /app/a is checked, then her role is revoked before it applies")
	rev := s.auth.Revision()
	p := h.checked(alice, put("/app/a", "1", 0))
	require.Equal(t, "alice", p.Header.Username)
	require.Equal(t, rev, p.Header.AuthRevision)
	res := h.apply(
		&pb.InternalRaftRequest{AuthUserRevokeRole: &pb.AuthUserRevokeRoleRequest{Name: "alice", Role: "app"}},
		p,
	)
	require.NoError(t, res[0].err)
	require.ErrorIs(t, res[1].err, auth.ErrPermissionDenied)
	require.Equal(t, "", h.value("/app/a"))

	t.Logf("Step 2: a put checked before an unrelated auth change applies")
	h.ok(grantRole("alice", "app"))
	p = h.checked(alice, put("/app/b", "2", 0))
	h.ok(&pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "other"}}, p)
	require.Greater(t, s.auth.Revision(), p.Header.AuthRevision)
	require.Equal(t, "2", h.value("/app/b"))

	t.Logf("Step 3: a txn checked before its permission is revoked is denied in either branch")
	txn := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("/app/b"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_Value{Value: []byte("nope")}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("/app/c"), Value: []byte("3")}}}},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("/app/d"), Value: []byte("4")}}}},
	}}
	p = h.checked(alice, txn)
	res = h.apply(&pb.InternalRaftRequest{AuthRoleRevokePermission: &pb.AuthRoleRevokePermissionRequest{
		Role: "app", Key: []byte("/app/"), RangeEnd: []byte("/app0")}}, p)
	require.NoError(t, res[0].err)
	require.ErrorIs(t, res[1].err, auth.ErrPermissionDenied)
	require.Equal(t, "", h.value("/app/d"))

	t.Logf("Step 4: a lease revoke checked while its lease held only /app/l is denied once /secret is attached (auth revision unchanged)")
	h.ok(&pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "app",
		Perm: &authpb.Permission{PermType: authpb.READWRITE, Key: []byte("/app/"), RangeEnd: []byte("/app0")}}})
	h.ok(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 60}})
	h.ok(h.checked(alice, put("/app/l", "leased", 7)))
	revoke := h.checked(alice, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 7}})
	rev = s.auth.Revision()
	res = h.apply(put("/secret", "s", 7), revoke) // the server's own put: not checked
	require.Equal(t, rev, s.auth.Revision())
	require.NoError(t, res[0].err)
	require.ErrorIs(t, res[1].err, auth.ErrPermissionDenied)
	keys, err := s.leases.lessor.Keys(7)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("/app/l"), []byte("/secret")}, keys)

	t.Logf("Step 5: alice may not attach that lease to her own key (etcd's checkLeasePuts), at check and at apply")
	err = s.authorize(auth.WithInfo(context.Background(), alice), put("/app/m", "x", 7))
	require.ErrorIs(t, err, auth.ErrPermissionDenied)
	h.ok(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 8, TTL: 60}})
	p = h.checked(alice, put("/app/n", "x", 8))
	res = h.apply(put("/secret2", "s", 8), p)
	require.ErrorIs(t, res[1].err, auth.ErrPermissionDenied)
	require.Equal(t, "", h.value("/app/n"))

	t.Logf("Step 6: an anonymous put checked while auth was disabled is refused once auth is enabled before it applies")
	h.apply(&pb.InternalRaftRequest{AuthDisable: &pb.AuthDisableRequest{}})
	require.False(t, s.auth.IsEnabled())
	p = h.checked(&auth.AuthInfo{}, put("/open", "x", 0))
	res = h.apply(&pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}, p)
	require.NoError(t, res[0].err)
	require.ErrorIs(t, res[1].err, auth.ErrUserEmpty)
	require.Equal(t, "", h.value("/open"))

	t.Logf("Step 7: root's requests and the server's own pass whatever changed")
	p = h.checked(&auth.AuthInfo{Username: "root"}, put("/other", "r", 0))
	h.ok(&pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "another"}}, p, put("/own", "o", 0))
	require.Equal(t, "r", h.value("/other"))
	require.Equal(t, "o", h.value("/own"))
}

// TestReadsLeases lists the requests whose check depends on lease
// attachments (checked again at every apply).
func TestReadsLeases(t *testing.T) {
	leasedPut := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), Lease: 1}}}
	plainPut := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k")}}}
	for _, tc := range []struct {
		name string
		r    *pb.InternalRaftRequest
		want bool
	}{
		{"put", put("k", "v", 0), false},
		{"put with lease", put("k", "v", 1), true},
		{"revoke", &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 1}}, true},
		{"grant", &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 1}}, false},
		{"txn", &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{plainPut}}}, false},
		{"txn with lease in failure", &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{plainPut},
			Failure: []*pb.RequestOp{leasedPut}}}, true},
		{"nested txn with lease", &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{
			RequestTxn: &pb.TxnRequest{Success: []*pb.RequestOp{leasedPut}}}}}}}, true},
	} {
		require.Equal(t, tc.want, readsLeases(tc.r), tc.name)
	}
}
