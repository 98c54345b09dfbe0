package mvcc

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// The Check functions validate a request before it is proposed, with etcd's
// rules (etcd's v3rpc/key.go); front ends call them so that a bad request
// never enters the raft log. They are pure: no store state is read.

// CheckRange validates a range request.
func CheckRange(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return ErrEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return ErrInvalidSortOpt
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return ErrInvalidSortOpt
	}
	return nil
}

// CheckPut validates a put request.
func CheckPut(r *pb.PutRequest) error {
	if len(r.Key) == 0 {
		return ErrEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return ErrValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return ErrLeaseProvided
	}
	return nil
}

// CheckDeleteRange validates a delete-range request.
func CheckDeleteRange(r *pb.DeleteRangeRequest) error {
	if len(r.Key) == 0 {
		return ErrEmptyKey
	}
	return nil
}

// CheckTxn validates a txn: op counts against maxTxnOps (nested txns share
// the budget as in etcd), every op, and that no key is written twice on any
// path through the txn.
func CheckTxn(r *pb.TxnRequest, maxTxnOps int) error {
	if err := checkTxnOps(r, maxTxnOps); err != nil {
		return err
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		if singleFlat(ops) {
			continue // nothing to collide with: skip the maps
		}
		if _, _, err := checkIntervals(ops); err != nil {
			return err
		}
	}
	return nil
}

// singleFlat reports whether ops is at most one op and not a nested txn,
// which cannot write a key twice.
func singleFlat(ops []*pb.RequestOp) bool {
	return len(ops) == 0 || (len(ops) == 1 && ops[0].GetRequestTxn() == nil)
}

// CheckSize fails with ErrRequestTooLarge when the marshalled request is
// over limit bytes (etcd's --max-request-bytes). It is a front end's early
// refusal of a request that will go through raft: the exact limit, as
// etcd's, is on the raft request that wraps it (server.propose), a few
// bytes larger.
func CheckSize(m proto.Message, limit int) error {
	if limit > 0 && proto.Size(m) > limit {
		return ErrRequestTooLarge
	}
	return nil
}

// CheckTxnSize is CheckSize for a txn: a read-only txn does not go through
// raft, and has no size limit (as in etcd).
func CheckTxnSize(r *pb.TxnRequest, limit int) error {
	if IsReadOnlyTxn(r) {
		return nil
	}
	return CheckSize(r, limit)
}

func checkTxnOps(r *pb.TxnRequest, maxTxnOps int) error {
	opc := max(len(r.Compare), len(r.Success), len(r.Failure))
	if opc > maxTxnOps {
		return ErrTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return ErrEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, u := range ops {
			if err := checkRequestOp(u, maxTxnOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRequestOp(u *pb.RequestOp, maxTxnOps int) error {
	switch uv := u.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		return CheckRange(uv.RequestRange)
	case *pb.RequestOp_RequestPut:
		return CheckPut(uv.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return CheckDeleteRange(uv.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return checkTxnOps(uv.RequestTxn, maxTxnOps)
	default:
		// An op with no request: etcd answers "key not found".
		return ErrKeyNotFound
	}
}

// span is a key interval [start, end); end nil means the single key start,
// end "\x00" means every key >= start.
type span struct{ start, end []byte }

func (s span) contains(k []byte) bool {
	if len(s.end) == 0 {
		return bytes.Equal(s.start, k)
	}
	if bytes.Compare(k, s.start) < 0 {
		return false
	}
	return (len(s.end) == 1 && s.end[0] == 0) || bytes.Compare(k, s.end) < 0
}

func intersects(dels []span, k []byte) bool {
	for _, d := range dels {
		if d.contains(k) {
			return true
		}
	}
	return false
}

// checkIntervals is etcd's duplicate-key rule: on one level, a key may be
// put once and must not be both put and deleted; a nested txn's success and
// failure branches exclude each other, so both may put the same key.
// Deletes may overlap each other. It returns this level's puts and deletes
// for the enclosing level.
func checkIntervals(reqs []*pb.RequestOp) (map[string]struct{}, []span, error) {
	var dels []span
	for _, req := range reqs {
		if d := req.GetRequestDeleteRange(); d != nil {
			dels = append(dels, span{d.Key, d.RangeEnd})
		}
	}
	puts := make(map[string]struct{})
	for _, req := range reqs {
		t := req.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.Success)
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := checkIntervals(t.Failure)
		if err != nil {
			return nil, nil, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || intersects(dels, []byte(k)) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				if _, fromThen := putsThen[k]; !fromThen {
					return nil, nil, ErrDuplicateKey
				}
			}
			if intersects(dels, []byte(k)) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}
	for _, req := range reqs {
		p := req.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.Key)
		if _, dup := puts[k]; dup || intersects(dels, p.Key) {
			return nil, nil, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
