package grpc

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/mvcc"
)

// A watch fan-out sends the same events to many watchers of one stream,
// each in its own WatchResponse (the watch ID differs). Marshalling every
// response whole encoded each event once per watcher: 17% of the server's
// CPU with 1,000 watchers on one key. The sender instead encodes each event
// (and each revision's header) once per batch and assembles a response's
// bytes from them; the codec passes such pre-encoded messages through.

// encodedMsg is a message already in its wire format.
type encodedMsg struct{ b []byte }

// passthroughCodec is gRPC's proto codec, except that an *encodedMsg goes
// out as its bytes.
type passthroughCodec struct{ proto encoding.CodecV2 }

func (c passthroughCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*encodedMsg); ok {
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c passthroughCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

func (c passthroughCodec) Name() string { return c.proto.Name() }

// codecOption installs passthroughCodec on a server.
func codecOption() grpc.ServerOption {
	return grpc.ForceServerCodecV2(passthroughCodec{proto: encoding.GetCodecV2("proto")})
}

// WatchResponse field numbers (rpc.proto).
const (
	fieldHeader  = 1
	fieldWatchID = 2
	fieldEvents  = 11
)

// eventKey names one encoding of an event: with or without its PrevKv.
type eventKey struct {
	ev       *mvccpb.Event
	withPrev bool
}

// watchEncoder encodes the event responses of one sent batch, sharing the
// encodings of events and headers between its responses. Reset it per
// batch: it holds the batch's events.
type watchEncoder struct {
	events map[eventKey][]byte
	hdr    *pb.ResponseHeader
	hdrB   []byte
	evs    [][]byte // scratch: the encodings of one response's events
	// arena is where responses are assembled: each takes the next bytes
	// of it, so that a fan-out of small responses costs an allocation per
	// arenaBytes, not one per response. A response handed to gRPC keeps
	// its part of the arena alive until written; the arena only grows at
	// its end, so no part is written twice.
	arena []byte
}

// arenaBytes is the size of a fresh arena (a response larger than it gets
// one of its own size).
const arenaBytes = 64 << 10

func (e *watchEncoder) reset() {
	clear(e.events)
	e.hdr, e.hdrB = nil, nil
}

// encode returns the wire format of the WatchResponse with hdr, r's watch
// ID and r's events (PrevKv dropped unless r.PrevKV), the same bytes
// proto.Marshal gives for that message. Only for event responses
// (mvcc.WatchResponse.Events set, no created, canceled or compact
// revision).
func (e *watchEncoder) encode(r *mvcc.WatchResponse, hdr *pb.ResponseHeader) ([]byte, error) {
	if e.events == nil {
		e.events = map[eventKey][]byte{}
	}
	if hdr != e.hdr {
		b, err := proto.Marshal(hdr)
		if err != nil {
			return nil, err
		}
		e.hdr, e.hdrB = hdr, b
	}
	evs := e.evs[:0]
	size := 1 + protowire.SizeBytes(len(e.hdrB))
	if r.WatchID != 0 {
		size += 1 + protowire.SizeVarint(uint64(r.WatchID))
	}
	for _, ev := range r.Events {
		k := eventKey{ev: ev, withPrev: r.PrevKV || ev.PrevKv == nil}
		b, ok := e.events[k]
		if !ok {
			m := ev
			if !k.withPrev {
				m = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
			}
			var err error
			if b, err = proto.Marshal(m); err != nil {
				return nil, err
			}
			e.events[k] = b
		}
		evs = append(evs, b)
		size += 1 + protowire.SizeBytes(len(b))
	}
	e.evs = evs[:0]
	if cap(e.arena)-len(e.arena) < size {
		e.arena = make([]byte, 0, max(arenaBytes, size))
	}
	n := len(e.arena)
	out := e.arena[n:n:cap(e.arena)]
	out = protowire.AppendTag(out, fieldHeader, protowire.BytesType)
	out = protowire.AppendBytes(out, e.hdrB)
	if r.WatchID != 0 {
		out = protowire.AppendTag(out, fieldWatchID, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(r.WatchID))
	}
	for _, b := range evs {
		out = protowire.AppendTag(out, fieldEvents, protowire.BytesType)
		out = protowire.AppendBytes(out, b)
	}
	clear(evs) // the encodings stay in e.events until reset, not here
	e.arena = e.arena[:n+len(out)]
	return out[:len(out):len(out)], nil
}
