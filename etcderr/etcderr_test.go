package etcderr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/lease"
	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/raft"
	"github.com/metastore/metastore/server"
)

func TestFromError(t *testing.T) {
	cases := []struct {
		in   error
		want error
	}{
		{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
		{fmt.Errorf("reading: %w", mvcc.ErrFutureRev), rpctypes.ErrGRPCFutureRev},
		{lease.ErrNotFound, rpctypes.ErrGRPCLeaseNotFound},
		{server.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
		{raft.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
		{context.DeadlineExceeded, rpctypes.ErrGRPCDeadlineExceeded},
		{rpctypes.ErrGRPCEmptyKey, rpctypes.ErrGRPCEmptyKey},
	}
	for _, tc := range cases {
		if got := FromError(tc.in); got != tc.want {
			t.Errorf("FromError(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	// clientv3 recognises the result as etcd's typed error.
	if got := rpctypes.Error(FromError(mvcc.ErrCompacted)); !errors.Is(got, rpctypes.ErrCompacted) {
		t.Errorf("clientv3 view of compacted: %v", got)
	}
	unknown := FromError(errors.New("disk on fire"))
	if st := status.Convert(unknown); st.Code() != codes.Unknown || st.Message() != "disk on fire" {
		t.Errorf("unknown error: %v", unknown)
	}
	if FromError(nil) != nil {
		t.Error("nil must stay nil")
	}
	// etcd's server sends too few started members as Unknown (its table
	// holds the client-side error); clientv3 still recognises the message.
	notStarted := FromError(server.ErrMemberNotEnoughStarted)
	if st := status.Convert(notStarted); st.Code() != codes.Unknown ||
		st.Message() != "etcdserver: re-configuration failed due to not enough started members" {
		t.Errorf("not enough started members: %v", notStarted)
	}
	if got := rpctypes.Error(notStarted); !errors.Is(got, rpctypes.ErrMemberNotEnoughStarted) {
		t.Errorf("clientv3 view of not enough started members: %v", got)
	}
}

func TestTableHasNoDuplicateSentinels(t *testing.T) {
	seen := map[error]bool{}
	for _, row := range table {
		if seen[row.err] {
			t.Errorf("sentinel %v appears twice", row.err)
		}
		seen[row.err] = true
		if _, ok := status.FromError(row.etcd); !ok {
			t.Errorf("%v maps to a non-status error %v", row.err, row.etcd)
		}
	}
}
