package mvcc

import "errors"

// Errors returned by the store. Front ends translate them to etcd's gRPC
// errors (grpc/) and HTTP statuses (http/); the messages follow etcd's.
var (
	ErrCompacted        = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev        = errors.New("mvcc: required revision is a future revision")
	ErrEmptyKey         = errors.New("mvcc: key is not provided")
	ErrKeyNotFound      = errors.New("mvcc: key not found")
	ErrValueProvided    = errors.New("mvcc: value is provided")
	ErrLeaseProvided    = errors.New("mvcc: lease is provided")
	ErrTooManyOps       = errors.New("mvcc: too many operations in txn request")
	ErrDuplicateKey     = errors.New("mvcc: duplicate key given in txn request")
	ErrRequestTooLarge  = errors.New("mvcc: request is too large")
	ErrLeaseNotFound    = errors.New("mvcc: lease not found")
	ErrInvalidSortOpt   = errors.New("mvcc: invalid sort option")
	ErrCorruptRecord    = errors.New("mvcc: corrupt record")
	ErrClosed           = errors.New("mvcc: store closed")
	ErrApplyInProgress  = errors.New("mvcc: an apply batch is already open")
	ErrCompactScheduled = errors.New("mvcc: compaction revision below the scheduled one")
	ErrNotReadOnly      = errors.New("mvcc: txn writes")
)
