package grpc

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/lease"
	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/raft"
	"github.com/metastore/metastore/server"
)

// errorTable maps the sentinels of the layers below to etcd's gRPC errors,
// so clientv3 and etcdctl turn them into their typed errors. The layers
// below never know about gRPC: this is the one place errors are translated.
var errorTable = []struct {
	err  error
	grpc error
}{
	{mvcc.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
	{mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{mvcc.ErrValueProvided, rpctypes.ErrGRPCValueProvided},
	{mvcc.ErrLeaseProvided, rpctypes.ErrGRPCLeaseProvided},
	{mvcc.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
	{mvcc.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{mvcc.ErrInvalidSortOpt, rpctypes.ErrGRPCInvalidSortOption},
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{mvcc.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{mvcc.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{lease.ErrNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{lease.ErrExists, rpctypes.ErrGRPCLeaseExist},
	{lease.ErrTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{lease.ErrNotPrimary, rpctypes.ErrGRPCNotLeader},
	{server.ErrTooManyRequests, rpctypes.ErrGRPCRequestTooManyRequests},
	{server.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{server.ErrStopped, rpctypes.ErrGRPCStopped},
	{raft.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{raft.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{raft.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged},
	{raft.ErrStopped, rpctypes.ErrGRPCStopped},
	{raft.ErrRemoved, rpctypes.ErrGRPCStopped},
	{raft.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{raft.ErrProposalDropped, rpctypes.ErrGRPCNoLeader},
	{raft.ErrMemberExists, rpctypes.ErrGRPCMemberExist},
	{raft.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist},
	{raft.ErrMemberNotFound, rpctypes.ErrGRPCMemberNotFound},
	{raft.ErrMemberRemoved, rpctypes.ErrGRPCMemberNotFound},
	{raft.ErrNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{raft.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{raft.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	// maintenance (server/alarm.go, quota.go, maintenance.go)
	{server.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{server.ErrCorrupt, rpctypes.ErrGRPCCorrupt},
	{server.ErrBadLeaderTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
	{server.ErrTimeoutLeaderTransfer, status.Error(codes.Unknown, "etcdserver: request timed out, leader transfer took too long")},
	{server.ErrWrongDowngradeVersionFormat, rpctypes.ErrGRPCWrongDowngradeVersionFormat},
	{server.ErrInvalidDowngradeTargetVersion, rpctypes.ErrGRPCInvalidDowngradeTargetVersion},
	{server.ErrDowngradeInProcess, rpctypes.ErrGRPCDowngradeInProcess},
	{server.ErrNoInflightDowngrade, rpctypes.ErrGRPCNoInflightDowngrade},
}

// toGRPC translates an error from the server into etcd's gRPC error.
// Unknown errors become codes.Unknown with their message, as etcd does.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.grpc
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return rpctypes.ErrGRPCDeadlineExceeded
	}
	return status.Error(codes.Unknown, err.Error())
}
