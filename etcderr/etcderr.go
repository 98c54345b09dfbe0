// Package etcderr gives etcd's v3 API error for each error of MetaStore's
// lower layers (server, raft, mvcc, lease), so that both front ends answer
// with the code and message clientv3, etcdctl and etcd's JSON gateway
// clients expect: grpc/ returns them as they are, http/ derives the HTTP
// status from their code. The layers below never know about gRPC; this table
// is the one place their errors are translated.
package etcderr

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/auth"
	"github.com/metastore/metastore/lease"
	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/raft"
	"github.com/metastore/metastore/server"
)

// table maps sentinels to etcd's errors (a gRPC status with etcd's message).
var table = []struct {
	err  error
	etcd error
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
	{server.ErrMemberBadURLs, rpctypes.ErrGRPCMemberBadURLs},
	// etcd's table gives the client-side form (rpctypes.ErrMemberNotEnoughStarted),
	// which is not a status: its gRPC server sends it as Unknown.
	{server.ErrMemberNotEnoughStarted, status.Error(codes.Unknown, status.Convert(rpctypes.ErrGRPCMemberNotEnoughStarted).Message())},
	{server.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy},
	// maintenance (server/alarm.go, quota.go, maintenance.go)
	{server.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{server.ErrCorrupt, rpctypes.ErrGRPCCorrupt},
	{server.ErrBadAlarm, status.Error(codes.InvalidArgument, "etcdserver: only NOSPACE and CORRUPT alarms can be activated")},
	{server.ErrUnknownMethod, status.Error(codes.Unknown, "etcdserver: unknown method")},
	{server.ErrBadLeaderTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
	{server.ErrTimeoutLeaderTransfer, status.Error(codes.Unknown, "etcdserver: request timed out, leader transfer took too long")},
	{server.ErrWrongDowngradeVersionFormat, rpctypes.ErrGRPCWrongDowngradeVersionFormat},
	{server.ErrInvalidDowngradeTargetVersion, rpctypes.ErrGRPCInvalidDowngradeTargetVersion},
	{server.ErrDowngradeInProcess, rpctypes.ErrGRPCDowngradeInProcess},
	{server.ErrNoInflightDowngrade, rpctypes.ErrGRPCNoInflightDowngrade},
	// auth (auth/, server/auth.go)
	{auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{auth.ErrNoPasswordUser, status.Error(codes.Unknown, auth.ErrNoPasswordUser.Error())}, // before ErrAuthFailed: it is one
	{auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{auth.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
	{auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
}

// FromError returns etcd's API error for err: a gRPC status error carrying
// etcd's code and message. A status error passes through; an error it does
// not know becomes codes.Unknown with its own message, as etcd does.
func FromError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, row := range table {
		if errors.Is(err, row.err) {
			return row.etcd
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
