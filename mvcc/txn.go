package mvcc

import (
	"bytes"
	"cmp"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Txn applies a txn request at the next revision. As in etcd, every compare
// of the txn and of its nested txns is evaluated first, against the state
// before the txn; the chosen operations are checked (leases, ignore_*,
// range revisions) before any of them writes, then run in order, reads
// seeing the txn's own earlier writes. All writes share one main revision.
func (a *Apply) Txn(req *pb.TxnRequest) (*pb.TxnResponse, error) {
	if _, err := a.enter(); err != nil {
		return nil, err
	}
	if err := CheckTxn(req, a.s.cfg.MaxTxnOps); err != nil {
		return nil, err
	}
	a.beginWrite()
	path, err := a.comparePath(req)
	if err != nil {
		return nil, err
	}
	if _, err := a.checkPath(req, path); err != nil {
		return nil, err
	}
	resp, _, err := a.runTxn(req, path)
	if err != nil {
		return nil, err
	}
	a.endWrite()
	resp.Header = &pb.ResponseHeader{Revision: a.rev}
	setTxnHeaders(resp, a.rev)
	return resp, nil
}

// comparePath evaluates the compares of req and of the nested txns on the
// chosen branches, depth first, in etcd's order.
func (a *Apply) comparePath(req *pb.TxnRequest) ([]bool, error) {
	ok, err := a.compares(req.Compare)
	if err != nil {
		return nil, err
	}
	path := []bool{ok}
	for _, op := range branch(req, ok) {
		if t := op.GetRequestTxn(); t != nil {
			sub, err := a.comparePath(t)
			if err != nil {
				return nil, err
			}
			path = append(path, sub...)
		}
	}
	return path, nil
}

func branch(req *pb.TxnRequest, ok bool) []*pb.RequestOp {
	if ok {
		return req.Success
	}
	return req.Failure
}

// checkPath checks the operations the path will run; it returns how much of
// the path it consumed.
func (a *Apply) checkPath(req *pb.TxnRequest, path []bool) (int, error) {
	used := 1
	for _, op := range branch(req, path[0]) {
		switch r := op.GetRequest().(type) {
		case *pb.RequestOp_RequestPut:
			if err := a.checkPut(r.RequestPut); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestRange:
			rev := r.RequestRange.Revision
			if rev > a.rev {
				// etcd checks against the revision before the txn.
				return 0, ErrFutureRev
			}
			if rev > 0 && rev < a.compactRev() {
				return 0, ErrCompacted
			}
		case *pb.RequestOp_RequestTxn:
			n, err := a.checkPath(r.RequestTxn, path[used:])
			if err != nil {
				return 0, err
			}
			used += n
		}
	}
	return used, nil
}

func (a *Apply) runTxn(req *pb.TxnRequest, path []bool) (*pb.TxnResponse, int, error) {
	ops := branch(req, path[0])
	resp := &pb.TxnResponse{Succeeded: path[0], Responses: make([]*pb.ResponseOp, 0, len(ops))}
	used := 1
	for _, op := range ops {
		var out *pb.ResponseOp
		switch r := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := rangeOn(a.b, r.RequestRange, a.readRev(), a.compactRev)
			if err != nil {
				return nil, 0, err
			}
			out = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rr}}
		case *pb.RequestOp_RequestPut:
			pr, err := a.put(r.RequestPut)
			if err != nil {
				return nil, 0, err
			}
			out = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: pr}}
		case *pb.RequestOp_RequestDeleteRange:
			d := r.RequestDeleteRange
			dr, err := a.deleteRange(d.Key, d.RangeEnd, d.PrevKv)
			if err != nil {
				return nil, 0, err
			}
			out = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}}
		case *pb.RequestOp_RequestTxn:
			tr, n, err := a.runTxn(r.RequestTxn, path[used:])
			if err != nil {
				return nil, 0, err
			}
			used += n
			out = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}}
		}
		resp.Responses = append(resp.Responses, out)
	}
	return resp, used, nil
}

// setTxnHeaders gives every write sub-response the txn's revision; range
// sub-responses keep the revision they read at; a nested txn's own header
// stays empty, as in etcd.
func setTxnHeaders(resp *pb.TxnResponse, rev int64) {
	for _, r := range resp.Responses {
		switch v := r.Response.(type) {
		case *pb.ResponseOp_ResponsePut:
			v.ResponsePut.Header = &pb.ResponseHeader{Revision: rev}
		case *pb.ResponseOp_ResponseDeleteRange:
			v.ResponseDeleteRange.Header = &pb.ResponseHeader{Revision: rev}
		case *pb.ResponseOp_ResponseTxn:
			v.ResponseTxn.Header = &pb.ResponseHeader{}
			setTxnHeaders(v.ResponseTxn, rev)
		}
	}
}

// compares reports whether every compare holds at the current state.
func (a *Apply) compares(cs []*pb.Compare) (bool, error) {
	for _, c := range cs {
		ok, err := a.compare(c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// compare evaluates one compare as etcd does: over every key in
// [key, range_end); a missing key compares as a zero KeyValue, except that a
// value compare on a missing key is false.
func (a *Apply) compare(c *pb.Compare) (bool, error) {
	var kvs []*mvccpb.KeyValue
	if len(c.RangeEnd) == 0 {
		kv, err := a.latestKV(c.Key, c.Target == pb.Compare_VALUE)
		if err != nil {
			return false, err
		}
		if kv != nil {
			kvs = append(kvs, kv)
		}
	} else {
		rr, err := rangeOn(a.b, &pb.RangeRequest{Key: c.Key, RangeEnd: c.RangeEnd}, a.readRev(), a.compactRev)
		if err != nil {
			return false, err
		}
		kvs = rr.Kvs
	}
	if len(kvs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false, nil
		}
		return compareKV(c, &mvccpb.KeyValue{}), nil
	}
	for _, kv := range kvs {
		if !compareKV(c, kv) {
			return false, nil
		}
	}
	return true, nil
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var r int
	switch c.Target {
	case pb.Compare_VALUE:
		r = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		r = cmp.Compare(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		r = cmp.Compare(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		r = cmp.Compare(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		r = cmp.Compare(kv.Lease, c.GetLease())
	}
	// As etcd: a target it does not know compares as equal, and a result
	// it does not know holds.
	switch c.Result {
	case pb.Compare_EQUAL:
		return r == 0
	case pb.Compare_NOT_EQUAL:
		return r != 0
	case pb.Compare_GREATER:
		return r > 0
	case pb.Compare_LESS:
		return r < 0
	}
	return true
}

// IsReadOnlyTxn reports whether a txn, on every branch, only reads.
func IsReadOnlyTxn(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch v := op.GetRequest().(type) {
			case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
				return false
			case *pb.RequestOp_RequestTxn:
				if !IsReadOnlyTxn(v.RequestTxn) {
					return false
				}
			}
		}
	}
	return true
}

// ReadTxn runs a read-only txn against the committed state without
// proposing it (the caller has made the read linearizable if it must be).
func (s *Store) ReadTxn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if !IsReadOnlyTxn(r) {
		return nil, ErrNotReadOnly
	}
	a := s.NewApply()
	defer a.Abort()
	return a.Txn(r)
}
