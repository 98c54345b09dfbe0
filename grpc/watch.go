package grpc

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/server"
)

// Watch service limits as etcd's.
const (
	// DefaultProgressNotifyInterval is etcd's progress report interval.
	DefaultProgressNotifyInterval = 10 * time.Minute
	// MinProgressNotifyInterval: shorter intervals are raised to it.
	MinProgressNotifyInterval = 100 * time.Millisecond
	// grpcOverheadBytes is what etcd adds to --max-request-bytes for the
	// fragment threshold (MaxRequestBytesWithOverhead).
	grpcOverheadBytes = 512 * 1024
)

// WatchBackend is what the Watch service needs from the server.
type WatchBackend interface {
	WatchHub() *mvcc.WatchHub
	// Header is a response header at rev with the cluster ID, member ID
	// and raft term filled.
	Header(rev int64) *pb.ResponseHeader
}

// WatchOptions configure the Watch service.
type WatchOptions struct {
	// MaxRequestBytes (plus etcd's 512 KiB of gRPC overhead) is the size
	// past which responses of a watch created with fragment=true are split.
	MaxRequestBytes int
	// ProgressNotifyInterval is how often watches created with
	// progress_notify hear from a quiet stream (etcd's
	// --watch-progress-notify-interval; 0: 10 minutes, at least 100 ms),
	// plus up to 10% jitter.
	ProgressNotifyInterval time.Duration
	// MaxWatchersPerStream bounds the watchers one stream may hold (0: no
	// limit); a create past it is refused with a reason.
	MaxWatchersPerStream int
	// BatchDelay: after a stream sent a batch of 64 responses or more, its
	// sender waits this long before the next, so that the events of the
	// revisions committed meanwhile go out merged, one response per
	// watcher (mvcc.WatchStream merges queued events). Under a heavy
	// fan-out that is several times fewer messages to encode, write and
	// decode, at the price of at most this much added delay; a quiet or
	// small stream never waits. 0 turns it off.
	BatchDelay time.Duration
}

type watchServer struct {
	pb.UnimplementedWatchServer
	b        WatchBackend
	maxBytes int
	interval time.Duration
	maxPer   int
	delay    time.Duration
}

// NewWatchServer returns etcd's Watch service over b.
func NewWatchServer(b WatchBackend, opts WatchOptions) pb.WatchServer {
	iv := opts.ProgressNotifyInterval
	if iv <= 0 {
		iv = DefaultProgressNotifyInterval
	}
	return &watchServer{b: b, maxBytes: opts.MaxRequestBytes + grpcOverheadBytes,
		interval: max(iv, MinProgressNotifyInterval), maxPer: opts.MaxWatchersPerStream, delay: max(opts.BatchDelay, 0)}
}

// Watch serves one stream as etcd does: a receive goroutine turns create,
// cancel and progress requests into calls on an mvcc.WatchStream, which
// queues every response (created, events, canceled, progress) in stream
// order; this goroutine sends them. A client that closes its send side
// keeps receiving until it goes away.
func (s *watchServer) Watch(stream pb.Watch_WatchServer) error {
	ws := s.b.WatchHub().NewStream()
	defer ws.Close()
	errc := make(chan error, 1)
	go func() {
		if err := s.recvLoop(stream, ws); err != nil {
			errc <- err
		}
	}()
	return s.sendLoop(stream, ws, errc)
}

func (s *watchServer) recvLoop(stream pb.Watch_WatchServer, ws *mvcc.WatchStream) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		server.ApplyWatchRequest(ws, req, s.maxPer, func(c *pb.WatchCreateRequest) bool {
			return s.authorizeWatch(stream.Context(), ws, c) // auth.go
		})
	}
}

func (s *watchServer) sendLoop(stream pb.Watch_WatchServer, ws *mvcc.WatchStream, errc <-chan error) error {
	// Jitter as etcd: streams opened together do not tick together.
	tick := time.NewTicker(s.interval + rand.N(s.interval/10+1))
	defer tick.Stop()
	var buf []mvcc.WatchResponse
	var enc watchEncoder // watch_encode.go
	for {
		select {
		case <-ws.Ready():
			buf = ws.Take(buf[:0])
			var hdr *pb.ResponseHeader // shared by the batch's responses at one revision
			for i := range buf {
				if hdr == nil || hdr.Revision != buf[i].Revision {
					hdr = s.b.Header(buf[i].Revision)
				}
				if err := s.send(stream, &enc, &buf[i], hdr); err != nil {
					return err
				}
			}
			clear(buf) // drop the events for the collector
			enc.reset()
			server.PauseAfterWatchBatch(len(buf), s.delay)
		case <-tick.C:
			ws.ProgressTick()
		case err := <-errc:
			if errors.Is(err, context.Canceled) {
				return rpctypes.ErrGRPCWatchCanceled
			}
			return err
		case <-stream.Context().Done():
			err := stream.Context().Err()
			if errors.Is(err, context.Canceled) {
				return rpctypes.ErrGRPCWatchCanceled
			}
			return err
		case <-ws.Done():
			return rpctypes.ErrGRPCStopped // the server is stopping
		}
	}
}

// send encodes one response; event responses of a watch created with
// fragment=true are split as etcd's sendFragments does, other event
// responses are assembled by enc from encodings shared in the batch.
// The header is shared, never changed.
func (s *watchServer) send(stream pb.Watch_WatchServer, enc *watchEncoder, r *mvcc.WatchResponse, hdr *pb.ResponseHeader) error {
	if r.EventsOnly() && !r.Fragment {
		b, err := enc.encode(r, hdr)
		if err != nil {
			return err
		}
		return stream.SendMsg(&encodedMsg{b: b})
	}
	wr := &pb.WatchResponse{Header: hdr, WatchId: r.WatchID,
		Created: r.Created, Canceled: r.Canceled, CompactRevision: r.CompactRevision,
		CancelReason: r.CancelReason, Events: mvcc.EventsFor(r.Events, r.PrevKV)}
	if r.Fragment && len(wr.Events) > 1 {
		return sendFragments(wr, s.maxBytes, stream.Send)
	}
	return stream.Send(wr)
}

// sendFragments splits wr into messages under maxBytes, each with at least
// one event, all but the last marked fragment (etcd's rule: a response
// under the limit or with one event goes whole). Sizes are summed per
// event rather than re-measuring the message after each one.
func sendFragments(wr *pb.WatchResponse, maxBytes int, send func(*pb.WatchResponse) error) error {
	if proto.Size(wr) < maxBytes || len(wr.Events) < 2 {
		return send(wr)
	}
	idx := 0
	for {
		cur := &pb.WatchResponse{Header: wr.Header, WatchId: wr.WatchId, Created: wr.Created,
			Canceled: wr.Canceled, CompactRevision: wr.CompactRevision, CancelReason: wr.CancelReason,
			Fragment: true}
		size := proto.Size(cur)
		for _, ev := range wr.Events[idx:] {
			size += eventFieldSize(ev)
			if len(cur.Events) > 0 && size >= maxBytes {
				break
			}
			cur.Events = append(cur.Events, ev)
			idx++
		}
		if idx == len(wr.Events) {
			cur.Fragment = false
		}
		if err := send(cur); err != nil {
			return err
		}
		if !cur.Fragment {
			return nil
		}
	}
}

// eventFieldSize is what one event adds to an encoded WatchResponse: the
// field tag (events is field 11: one byte), the length, the message.
func eventFieldSize(ev *mvccpb.Event) int {
	n := proto.Size(ev)
	return 1 + protowire.SizeVarint(uint64(n)) + n
}
