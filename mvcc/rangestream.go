package mvcc

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/engine"
)

// RangeStreamChunkBytes is about how many bytes of keys and values one
// RangeStream chunk carries.
const RangeStreamChunkBytes = 1 << 20

// RangeStream answers req like Range, but hands the key-values to send in
// chunks of about RangeStreamChunkBytes and returns the final response
// (header, count, more; no kvs), as etcd 3.7's KV.RangeStream does. All
// chunks come from one point-in-time view at one revision.
//
// When the result needs no sorting and no revision filters, the chunks are
// read straight from the engine iterator, so a huge range is never held in
// memory whole. Otherwise (etcd sorts and filters in memory too) the whole
// result is built first and then cut into chunks.
func (s *Store) RangeStream(req *pb.RangeRequest, send func(kvs []*mvccpb.KeyValue) error) (*pb.RangeResponse, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := CheckRange(req); err != nil {
		return nil, err
	}
	filtered := req.MinModRevision != 0 || req.MaxModRevision != 0 ||
		req.MinCreateRevision != 0 || req.MaxCreateRevision != 0
	sorted := req.SortOrder != pb.RangeRequest_NONE &&
		!(req.SortTarget == pb.RangeRequest_KEY && req.SortOrder == pb.RangeRequest_ASCEND)
	if filtered || sorted || req.CountOnly {
		resp, err := rangeOn(s.eng, req, s.currentRev.Load(), s.compactRev.Load)
		if err != nil {
			return nil, err
		}
		if err := sendChunks(resp.Kvs, send); err != nil {
			return nil, err
		}
		resp.Kvs = nil
		return resp, nil
	}
	return s.streamRange(req, send)
}

// streamRange scans the range once, sending key-values as they are read.
func (s *Store) streamRange(req *pb.RangeRequest, send func(kvs []*mvccpb.KeyValue) error) (*pb.RangeResponse, error) {
	curRev := s.currentRev.Load()
	rev := req.Revision
	if rev > curRev {
		return nil, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	lower, upper := keyBounds(req.Key, req.RangeEnd)
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: curRev}}
	it := s.eng.NewIterator(engine.Data, engine.IterOptions{Lower: lower, Upper: upper})
	defer it.Close()
	if rev < s.compactRev.Load() {
		return nil, ErrCompacted
	}
	var (
		chunk    []*mvccpb.KeyValue
		bytes    int
		count    int64
		returned int64
		failed   error
	)
	err := scanLiveIter(it, lower, rev, func(prefix []byte, modRev int64, raw []byte) bool {
		count++
		if req.Limit > 0 && returned >= req.Limit {
			return true // keep counting, as Range does
		}
		kv, err := toKV(prefix, modRev, raw, req.KeysOnly)
		if err != nil {
			failed = err
			return false
		}
		if fastKeysOnly(req) {
			kv.Lease = 0
		}
		chunk = append(chunk, kv)
		returned++
		bytes += len(kv.Key) + len(kv.Value)
		if bytes >= RangeStreamChunkBytes {
			if err := send(chunk); err != nil {
				failed = err
				return false
			}
			chunk, bytes = nil, 0
		}
		return true
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return nil, err
	}
	if len(chunk) > 0 {
		if err := send(chunk); err != nil {
			return nil, err
		}
	}
	resp.Count = count
	resp.More = req.Limit > 0 && count > req.Limit
	return resp, nil
}

func sendChunks(kvs []*mvccpb.KeyValue, send func([]*mvccpb.KeyValue) error) error {
	start, bytes := 0, 0
	for i, kv := range kvs {
		bytes += len(kv.Key) + len(kv.Value)
		if bytes >= RangeStreamChunkBytes {
			if err := send(kvs[start : i+1]); err != nil {
				return err
			}
			start, bytes = i+1, 0
		}
	}
	if start < len(kvs) {
		return send(kvs[start:])
	}
	return nil
}
