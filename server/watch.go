package server

import (
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/mvcc"
)

// DefaultWatchProgressNotifyInterval is etcd's progress report interval.
const DefaultWatchProgressNotifyInterval = 10 * time.Minute

// DefaultWatchBatchDelay is the pause of a watch stream after a large
// batch (Config.WatchBatchDelay). With 1,000 watchers at 1,000 puts/s it
// cut the messages per event several times and kept event delay p99
// under 15 ms (docs/BENCHMARKS.md).
const DefaultWatchBatchDelay = 5 * time.Millisecond

// WatchHub is the member's watch hub: every committed Apply is handed to
// it (the store's commit hook) and front ends open streams on it.
func (s *Server) WatchHub() *mvcc.WatchHub { return s.watch }

// Header is a response header at rev with the cluster ID, member ID and
// raft term filled, for responses made outside the request path (watch).
func (s *Server) Header(rev int64) *pb.ResponseHeader {
	h := &pb.ResponseHeader{Revision: rev}
	s.fillHeader(h)
	return h
}
