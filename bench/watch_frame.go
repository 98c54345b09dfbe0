package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// The watch benchmarks receive hundreds of thousands of events a second on
// the same two cores as the server. Decoding each WatchResponse whole
// (header, events, key-values) was 43% of the client's CPU at 1,000
// watchers, and a slower client measures itself, not the server. The
// receive loop instead reads from the wire only what it uses: the watch ID,
// the created and canceled flags with the reason, and, per event, the put
// sequence number the benchmark wrote in the value's first 8 bytes.

// watchFrame is what the benchmark reads of one WatchResponse.
type watchFrame struct {
	watchID           int64
	created, canceled bool
	cancelReason      string
	// seqs holds, per event, the big-endian uint64 at the start of its
	// value, or -1 when the value is shorter than 8 bytes.
	seqs []int64
	buf  []byte // scratch for a message that arrives in several buffers
}

// WatchResponse, Event and KeyValue field numbers (rpc.proto, kv.proto).
const (
	wrWatchID      = 2
	wrCreated      = 3
	wrCanceled     = 4
	wrCancelReason = 6
	wrEvents       = 11
	evKV           = 2
	kvValue        = 5
)

var errBadFrame = errors.New("bench: malformed watch response")

// decode reads b, a WatchResponse in protobuf wire format, into f.
func (f *watchFrame) decode(b []byte) error {
	f.watchID, f.created, f.canceled, f.cancelReason, f.seqs = 0, false, false, "", f.seqs[:0]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errBadFrame
		}
		b = b[n:]
		switch {
		case num == wrWatchID && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errBadFrame
			}
			f.watchID, b = int64(v), b[n:]
		case (num == wrCreated || num == wrCanceled) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errBadFrame
			}
			if num == wrCreated {
				f.created = v != 0
			} else {
				f.canceled = v != 0
			}
			b = b[n:]
		case num == wrCancelReason && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errBadFrame
			}
			f.cancelReason, b = string(v), b[n:]
		case num == wrEvents && typ == protowire.BytesType:
			ev, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errBadFrame
			}
			seq, err := eventSeq(ev)
			if err != nil {
				return err
			}
			f.seqs, b = append(f.seqs, seq), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errBadFrame
			}
			b = b[n:]
		}
	}
	return nil
}

// eventSeq finds the value of an Event's kv and returns its sequence
// number (-1 if there is no value of 8 bytes or more).
func eventSeq(ev []byte) (int64, error) {
	kv, err := field(ev, evKV)
	if err != nil || kv == nil {
		return -1, err
	}
	v, err := field(kv, kvValue)
	if err != nil || len(v) < 8 {
		return -1, err
	}
	seq := binary.BigEndian.Uint64(v[:8])
	if seq > math.MaxInt64 {
		return -1, nil // not one the benchmark wrote
	}
	return int64(seq), nil
}

// field returns the last bytes-typed field num of message b (nil if none).
func field(b []byte, num protowire.Number) ([]byte, error) {
	var out []byte
	for len(b) > 0 {
		n0, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errBadFrame
		}
		b = b[n:]
		if n0 == num && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, errBadFrame
			}
			out, b = v, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(n0, typ, b)
		if n < 0 {
			return nil, errBadFrame
		}
		b = b[n:]
	}
	return out, nil
}

// watchCodec is gRPC's proto codec, except that a *watchFrame is decoded
// by watchFrame.decode.
type watchCodec struct{ proto encoding.CodecV2 }

func newWatchCodec() watchCodec { return watchCodec{proto: encoding.GetCodecV2("proto")} }

func (c watchCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c watchCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*watchFrame)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	if len(data) == 1 {
		return f.decode(data[0].ReadOnlyData())
	}
	f.buf = f.buf[:0]
	for _, d := range data {
		f.buf = append(f.buf, d.ReadOnlyData()...)
	}
	if err := f.decode(f.buf); err != nil {
		return fmt.Errorf("%w (%d bytes)", err, len(f.buf))
	}
	return nil
}

func (c watchCodec) Name() string { return c.proto.Name() }
