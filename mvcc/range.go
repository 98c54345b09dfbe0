package mvcc

import (
	"bytes"
	"encoding/binary"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/engine"
)

// Range answers req from the committed state. The response header carries
// only the revision; the server fills in cluster, member and term.
func (s *Store) Range(req *pb.RangeRequest) (*pb.RangeResponse, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := CheckRange(req); err != nil {
		return nil, err
	}
	cur := s.currentRev.Load()
	if !s.reads.on() || !cacheable(req, cur) {
		return rangeOn(s.eng, req, cur, s.compactRev.Load)
	}
	// One key at the current revision: the read cache (readcache.go).
	e, gen := s.reads.lookup(req.Key, cur)
	if e != nil {
		return e.rangeResponse(req, cur), nil
	}
	resp, err := rangeOn(s.eng, req, cur, s.compactRev.Load)
	switch {
	case err != nil:
	case len(resp.Kvs) == 1 && !req.KeysOnly:
		s.reads.fill(resp.Kvs[0], gen, cur, s.currentRev.Load)
	case resp.Count == 0:
		s.reads.fillAbsent(req.Key, gen, cur, s.currentRev.Load)
	}
	return resp, err
}

// keyBounds returns the data keyspace bounds [lower, upper) holding every
// version of every user key in [key, end). An empty end means the single key
// key; end "\x00" means every key >= key (upper nil). The encoded form of a
// key sorts below its versions and above every version of smaller keys, so
// it is the bound itself.
func keyBounds(key, end []byte) (lower, upper []byte) {
	lower = appendEscaped(nil, key)
	if len(end) == 0 {
		return lower, skipKey(nil, lower)
	}
	if len(end) == 1 && end[0] == 0 {
		return lower, nil
	}
	return lower, appendEscaped(nil, end)
}

// scanLive calls fn with the newest version at or below rev of every user
// key in [lower, upper) that is not deleted at rev, in key order. prefix and
// raw alias the iterator's memory: fn must copy what it keeps. fn returns
// false to stop.
func scanLive(r engine.Reader, lower, upper []byte, rev int64,
	fn func(prefix []byte, modRev int64, raw []byte) bool) error {
	it := r.NewIterator(engine.Data, engine.IterOptions{Lower: lower, Upper: upper})
	defer it.Close()
	return scanLiveIter(it, lower, rev, fn)
}

func scanLiveIter(it engine.Iterator, lower []byte, rev int64,
	fn func(prefix []byte, modRev int64, raw []byte) bool) error {
	var seek, cur []byte
	ok := it.Seek(lower)
	for ok {
		prefix, vrev, err := splitDataKey(it.Key())
		if err != nil {
			return err
		}
		if vrev > rev {
			// Newer than the read revision: jump to the newest version at
			// or below rev of this key (or to the next key).
			seek = binary.BigEndian.AppendUint64(append(seek[:0], prefix...), ^uint64(rev))
			ok = it.Seek(seek)
			continue
		}
		if !isTombstone(it.Value()) && !fn(prefix, vrev, it.Value()) {
			return nil
		}
		// Skip the older versions of this key: usually the next entry is
		// already another key; otherwise seek past them.
		cur = append(cur[:0], prefix...)
		ok = it.Next()
		if ok && bytes.HasPrefix(it.Key(), cur) {
			seek = skipKey(seek[:0], cur)
			ok = it.Seek(seek)
		}
	}
	return it.Err()
}

// seekNewest is scanLiveIter for the one user key whose escaped form is
// prefix, on an iterator over its versions: one Seek to its newest version
// at or below rev (IterOptions.SameSuffixedKey allows nothing else).
func seekNewest(it engine.Iterator, prefix []byte, rev int64,
	fn func(prefix []byte, modRev int64, raw []byte) bool) error {
	target := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), ^uint64(rev))
	if !it.Seek(target) {
		return it.Err()
	}
	p, vrev, err := splitDataKey(it.Key())
	if err != nil {
		return err
	}
	if bytes.Equal(p, prefix) && !isTombstone(it.Value()) {
		fn(p, vrev, it.Value())
	}
	return nil
}

// versionSeeker finds the newest version of a key at or below a revision in
// one call (engine.IndexedBatch: the apply path's reads).
type versionSeeker interface {
	SeekVersion(target []byte) (k, v []byte, ok bool, err error)
}

// newestVersion returns the newest version at or below rev of key, with its
// revision; found is false when the key has no version at or below rev. A
// tombstone is returned as such. The version's value is a copy, or nil
// without withValue.
func newestVersion(r engine.Reader, key []byte, rev int64, withValue bool) (v version, vrev int64, found bool, err error) {
	prefix := appendEscaped(nil, key)
	target := binary.BigEndian.AppendUint64(prefix, ^uint64(rev))
	var k, raw []byte
	if s, ok := r.(versionSeeker); ok {
		if k, raw, found, err = s.SeekVersion(target); !found {
			return version{}, 0, false, err
		}
	} else {
		// The lookup only seeks among the versions of key: an engine may use
		// a bloom filter over the key to skip data that does not hold it.
		it := r.NewIterator(engine.Data, engine.IterOptions{Lower: prefix, Upper: skipKey(nil, prefix), SameSuffixedKey: true})
		defer it.Close()
		if !it.Seek(target) {
			return version{}, 0, false, it.Err()
		}
		k, raw = it.Key(), it.Value()
	}
	_, vrev, err = splitDataKey(k)
	if err != nil {
		return version{}, 0, false, err
	}
	v, err = decodeVersion(raw)
	if err != nil {
		return version{}, 0, false, err
	}
	if withValue {
		v.value = bytes.Clone(v.value)
	} else {
		v.value = nil
	}
	return v, vrev, true, nil
}

// latestKV returns the live KeyValue of key at rev, or nil when the key does
// not exist at rev. Without withValue its Value is nil.
func latestKV(r engine.Reader, key []byte, rev int64, withValue bool) (*mvccpb.KeyValue, error) {
	v, vrev, found, err := newestVersion(r, key, rev, withValue)
	if err != nil || !found || v.tombstone {
		return nil, err
	}
	return &mvccpb.KeyValue{Key: bytes.Clone(key), CreateRevision: v.create, ModRevision: vrev,
		Version: v.ver, Value: v.value, Lease: v.lease}, nil
}

func toKV(prefix []byte, modRev int64, raw []byte, keysOnly bool) (*mvccpb.KeyValue, error) {
	key, err := unescape(prefix)
	if err != nil {
		return nil, err
	}
	kv := &mvccpb.KeyValue{}
	if err := fillKV(kv, key, modRev, raw, keysOnly); err != nil {
		return nil, err
	}
	return kv, nil
}

// fillKV sets kv, a zero KeyValue, to key's version raw.
func fillKV(kv *mvccpb.KeyValue, key []byte, modRev int64, raw []byte, keysOnly bool) error {
	v, err := decodeVersion(raw)
	if err != nil {
		return err
	}
	kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease = key, v.create, modRev, v.ver, v.lease
	if !keysOnly {
		kv.Value = bytes.Clone(v.value)
	}
	return nil
}

// rangeOn answers req from r at a store whose newest revision is curRev.
// compactRev is read after the iterator is open, so that a compaction
// scheduled concurrently is either visible to the check or not yet started.
func rangeOn(r engine.Reader, req *pb.RangeRequest, curRev int64, compactRev func() int64) (*pb.RangeResponse, error) {
	rev := req.Revision
	if rev > curRev {
		return nil, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	lower, upper := keyBounds(req.Key, req.RangeEnd)
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: curRev}}
	// One key: a single seek in a prefix-mode iterator (seekNewest), which
	// may skip every file and memtable whose bloom filter rules the key out.
	// A total-order scan seeks in every level: on a member with a few
	// hundred thousand writes behind it, that made a one-key range's seek
	// 11% of the member's CPU instead of 5%.
	single := len(req.RangeEnd) == 0
	scan := scanLiveIter
	if single {
		scan = seekNewest
	}
	it := r.NewIterator(engine.Data, engine.IterOptions{Lower: lower, Upper: upper, SameSuffixedKey: single})
	defer it.Close()
	if rev < compactRev() {
		return nil, ErrCompacted
	}
	if upper != nil && bytes.Compare(lower, upper) >= 0 {
		// range_end before key: etcd answers with nothing, not an error.
		return resp, nil
	}

	filtered := req.MinModRevision != 0 || req.MaxModRevision != 0 ||
		req.MinCreateRevision != 0 || req.MaxCreateRevision != 0
	// As in etcd: the limit is pushed into the scan only when no order is
	// asked and nothing is filtered; then the scan stops after limit+1
	// pairs (etcd reads one more to know whether there are more), which a
	// non-key target still sorts ascending before the cut. Otherwise
	// everything is read, filtered, sorted, then cut.
	pushLimit := req.Limit > 0 && req.SortOrder == pb.RangeRequest_NONE && !filtered
	var count int64
	var scanErr error
	dropValues := fastKeysOnly(req)
	err := scan(it, lower, rev, func(prefix []byte, modRev int64, raw []byte) bool {
		count++
		if req.CountOnly || (pushLimit && int64(len(resp.Kvs)) > req.Limit) {
			return true
		}
		kv, err := toKV(prefix, modRev, raw, dropValues)
		if err != nil {
			scanErr = err
			return false
		}
		if dropValues {
			kv.Lease = 0 // fastKeysOnly
		}
		resp.Kvs = append(resp.Kvs, kv)
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return nil, err
	}
	resp.Count = count
	if req.CountOnly {
		return resp, nil
	}
	if filtered {
		resp.Kvs = filterKVs(resp.Kvs, req)
	}
	sortKVs(resp.Kvs, req.SortOrder, req.SortTarget)
	if req.KeysOnly && !dropValues {
		for _, kv := range resp.Kvs {
			kv.Value = nil
		}
	}
	if req.Limit > 0 {
		resp.More = int64(len(resp.Kvs)) > req.Limit || (pushLimit && count > req.Limit)
		if int64(len(resp.Kvs)) > req.Limit {
			resp.Kvs = resp.Kvs[:req.Limit]
		}
	}
	return resp, nil
}

// fastKeysOnly reports whether req is what etcd 3.7.3 answers from its key
// index alone: keys-only, unless sorted by value (values are needed for that
// sort). Such an answer has neither values nor leases, the key index holding
// no lease.
func fastKeysOnly(req *pb.RangeRequest) bool {
	return req.KeysOnly && req.SortTarget != pb.RangeRequest_VALUE
}

func filterKVs(kvs []*mvccpb.KeyValue, req *pb.RangeRequest) []*mvccpb.KeyValue {
	out := kvs[:0]
	for _, kv := range kvs {
		switch {
		case req.MaxModRevision != 0 && kv.ModRevision > req.MaxModRevision:
		case req.MinModRevision != 0 && kv.ModRevision < req.MinModRevision:
		case req.MaxCreateRevision != 0 && kv.CreateRevision > req.MaxCreateRevision:
		case req.MinCreateRevision != 0 && kv.CreateRevision < req.MinCreateRevision:
		default:
			out = append(out, kv)
		}
	}
	return out
}

// sortKVs orders kvs as etcd does: results come in ascending key order, a
// non-key target with no order means ascending, and key ascending needs no
// work. Equal elements end up where etcd's own sort puts them: the same
// comparison through sort.Sort (sort.Reverse for descending) on the same
// key-ordered input.
func sortKVs(kvs []*mvccpb.KeyValue, order pb.RangeRequest_SortOrder, target pb.RangeRequest_SortTarget) {
	if target != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if order == pb.RangeRequest_NONE || (target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND) {
		return
	}
	var less func(a, b *mvccpb.KeyValue) bool
	switch target {
	case pb.RangeRequest_KEY:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }
	case pb.RangeRequest_VERSION:
		less = func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version }
	case pb.RangeRequest_CREATE:
		less = func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision }
	case pb.RangeRequest_MOD:
		less = func(a, b *mvccpb.KeyValue) bool { return a.ModRevision < b.ModRevision }
	case pb.RangeRequest_VALUE:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 }
	default:
		return
	}
	var sorter sort.Interface = kvSorter{kvs, less}
	if order == pb.RangeRequest_DESCEND {
		sorter = sort.Reverse(sorter)
	}
	sort.Sort(sorter)
}

// kvSorter sorts key-values by less.
type kvSorter struct {
	kvs  []*mvccpb.KeyValue
	less func(a, b *mvccpb.KeyValue) bool
}

func (s kvSorter) Len() int           { return len(s.kvs) }
func (s kvSorter) Less(i, j int) bool { return s.less(s.kvs[i], s.kvs[j]) }
func (s kvSorter) Swap(i, j int)      { s.kvs[i], s.kvs[j] = s.kvs[j], s.kvs[i] }
