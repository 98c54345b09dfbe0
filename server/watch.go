package server

import (
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/metastore/metastore/mvcc"
)

// DefaultWatchProgressNotifyInterval is etcd's progress report interval.
const DefaultWatchProgressNotifyInterval = 10 * time.Minute

// DefaultWatchBatchDelay is the pause of a watch stream after a large
// batch (Config.WatchBatchDelay). With 1,000 watchers at 1,000 puts/s it
// cut the messages per event several times and kept event delay p99
// under 15 ms (docs/BENCHMARKS.md).
const DefaultWatchBatchDelay = 5 * time.Millisecond

// watchBatchMinResponses is the size of a batch of watch responses, sent
// at once, after which a stream waits Config.WatchBatchDelay.
const watchBatchMinResponses = 64

// PauseAfterWatchBatch is called by a watch stream's sender (the gRPC Watch
// service, the JSON gateway's /v3/watch) after it sent n responses at once:
// past watchBatchMinResponses it waits delay (0: never), so that the events
// of the revisions committed meanwhile merge in the stream's queue, one
// response per watcher. A quiet or small stream never waits.
func PauseAfterWatchBatch(n int, delay time.Duration) {
	if n >= watchBatchMinResponses && delay > 0 {
		time.Sleep(delay)
	}
}

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

// ApplyWatchRequest applies one request of a watch stream, for the gRPC
// service and the JSON gateway alike: a create, when authorize (the front
// end's read permission check, which answers a refusal itself) lets it
// through, by CreateWatch's rules; a cancel (an unknown ID gets no answer,
// as in etcd); or a progress request.
func ApplyWatchRequest(ws *mvcc.WatchStream, req *pb.WatchRequest, maxPerStream int, authorize func(*pb.WatchCreateRequest) bool) {
	switch u := req.RequestUnion.(type) {
	case *pb.WatchRequest_CreateRequest:
		if u.CreateRequest != nil && authorize(u.CreateRequest) {
			CreateWatch(ws, u.CreateRequest, maxPerStream)
		}
	case *pb.WatchRequest_CancelRequest:
		if u.CancelRequest != nil {
			_ = ws.Cancel(u.CancelRequest.WatchId)
		}
	case *pb.WatchRequest_ProgressRequest:
		if u.ProgressRequest != nil {
			ws.RequestProgress()
		}
	}
}

// CreateWatch applies etcd's rules to a watch create request, for the gRPC
// service and the JSON gateway alike: an empty key is "\x00" (the smallest
// key), a negative start revision is refused as compacted, a create past
// maxPerStream watchers (when > 0) is refused, and a refused create is
// answered created+canceled with watch ID -1 and the reason.
func CreateWatch(ws *mvcc.WatchStream, c *pb.WatchCreateRequest, maxPerStream int) {
	if c.StartRevision < 0 {
		ws.Reject(rpctypes.ErrCompacted.Error())
		return
	}
	if maxPerStream > 0 && ws.Len() >= maxPerStream {
		ws.Reject(fmt.Sprintf("too many watchers on this stream (--max-watchers-per-stream %d)", maxPerStream))
		return
	}
	key := c.Key
	if len(key) == 0 {
		key = []byte{0}
	}
	r := mvcc.WatchRequest{ID: c.WatchId, Key: key, End: c.RangeEnd, StartRev: c.StartRevision,
		PrevKV: c.PrevKv, Fragment: c.Fragment, ProgressNotify: c.ProgressNotify}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			r.NoPut = true
		case pb.WatchCreateRequest_NODELETE:
			r.NoDelete = true
		}
	}
	if _, err := ws.Watch(r); err != nil && !errors.Is(err, mvcc.ErrWatchStreamClosed) {
		ws.Reject(err.Error())
	}
}
