package server

import (
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// DefaultWarningRequestDuration is how long a request may take before it is
// logged as slow.
const DefaultWarningRequestDuration = 100 * time.Millisecond

// logSlow logs a request that took longer than the configured threshold,
// with its kind and duration, as etcd's "request took too long" warning.
// Use: defer s.logSlow("put", time.Now()).
func (s *Server) logSlow(kind string, start time.Time) {
	if d := time.Since(start); d > s.cfg.WarningRequestDuration {
		s.lg.Warn("request took too long", zap.String("kind", kind), zap.Duration("took", d),
			zap.Duration("expected-duration", s.cfg.WarningRequestDuration))
	}
}

// DefaultWarningApplyDuration is how long applying one request may take
// before it is logged (etcd's --warning-apply-duration).
const DefaultWarningApplyDuration = 100 * time.Millisecond

// logSlowApply logs a request whose apply took d, above the threshold, as
// etcd's "apply request took too long" warning, naming the request's kind
// (the field of the raft request it fills, e.g. put, txn, lease_revoke).
func (s *Server) logSlowApply(req *pb.InternalRaftRequest, d time.Duration) {
	kind := "unknown"
	req.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if fd.Kind() == protoreflect.MessageKind && fd.Name() != "header" {
			kind = string(fd.Name())
			return false
		}
		return true
	})
	s.lg.Warn("apply request took too long", zap.String("kind", kind), zap.Duration("took", d),
		zap.Duration("expected-duration", s.cfg.WarningApplyDuration))
}
