package server

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestExceedsApplyLag: proposals are refused once commit runs more than
// MaxApplyLag entries ahead of apply; with priority requests (etcd's
// PriorityRequest gate) a LeaseRevoke still goes in up to twice that, and
// nothing else does.
func TestExceedsApplyLag(t *testing.T) {
	put := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k")}}
	revoke := &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 7}}
	grant := &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 5}}
	const applied, lag = 1000, 100
	cases := []struct {
		committed uint64
		req       *pb.InternalRaftRequest
		priority  bool
		refused   bool
	}{
		{applied + lag, put, false, false},
		{applied + lag + 1, put, false, true},
		{applied + lag + 1, revoke, false, true},
		{applied + lag + 1, revoke, true, false},
		{applied + 2*lag, revoke, true, false},
		{applied + 2*lag + 1, revoke, true, true},
		{applied + lag + 1, put, true, true},
		{applied + lag + 1, grant, true, true},
		{applied, revoke, true, false},
	}
	for _, c := range cases {
		name := fmt.Sprintf("commit %d ahead, %v, priority %v", c.committed-applied, c.req, c.priority)
		t.Logf("Step: %s", name)
		require.Equal(t, c.refused, exceedsApplyLag(applied, c.committed, lag, c.req, c.priority), name)
	}
}
