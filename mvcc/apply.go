package mvcc

import (
	"bytes"
	"errors"
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/engine"
)

// Apply is one atomic write batch over the store: the server opens one for
// each slice of committed raft entries, applies every request of the slice
// to it, adds its own records (the applied index) through Batch, and
// commits once. Requests inside an Apply read the writes of the requests
// before them. Only one Apply is open at a time.
type Apply struct {
	s     *Store
	b     *engine.IndexedBatch
	start int64 // revision when the Apply opened
	rev   int64 // newest revision written in this Apply (start if none)
	// compact is a compaction revision scheduled in this Apply
	// (noCompaction if none).
	compact int64
	events  []*mvccpb.Event
	// eventsDropped: more than MaxApplyEvents events; none are kept.
	eventsDropped bool
	// lazyPrev: an event's PrevKv was recorded without its value.
	lazyPrev bool
	done     bool
	// written are the keys this Apply wrote, for the read cache; past
	// readCacheBarrier of them, writtenOverflow instead (readcache.go).
	written         [][]byte
	writtenOverflow bool
	// delKVs and delKeys hold a DeleteRange page that nothing keeps
	// (deleteRange), reused from page to page.
	delKVs  []mvccpb.KeyValue
	delKeys []byte
	// final is where the Apply stands with FinalRequest; unindexed is
	// set while the final request, a Put or DeleteRange, writes its
	// versions without the overlay (writeVersion).
	final     finalState
	unindexed bool

	// w is the write in progress: one request or txn, one main revision.
	w struct {
		rev int64 // main revision the write takes
		sub int64 // operations written so far
	}
	buf []byte
}

// Result is what a committed Apply changed: its events in revision order
// (Put events carry PrevKv when the key existed), and the new revision.
type Result struct {
	Rev    int64
	Events []*mvccpb.Event
	// lazyPrev: some events' PrevKv lack their value (no watcher wanted
	// it when they were written); the hub fills it in when one does.
	lazyPrev bool
	// EventsDropped: the Apply changed more keys than Config.MaxApplyEvents
	// and Events is empty; the revisions after the previous Result up to
	// Rev are in the change log only.
	EventsDropped bool
}

// NewApply opens a write batch. It blocks while another Apply is open.
func (s *Store) NewApply() *Apply {
	s.applyMu.Lock()
	rev := s.currentRev.Load()
	return &Apply{s: s, b: engine.NewIndexedBatch(s.eng), start: rev, rev: rev, compact: noCompaction}
}

// Batch is the underlying batch, for records the caller commits atomically
// with the state (raft applied index, leases, membership). Use keyspaces
// other than Data and ChangeLog.
func (a *Apply) Batch() *engine.IndexedBatch { return a.b }

// Rev is the newest revision written so far in this Apply.
func (a *Apply) Rev() int64 { return a.rev }

// Commit writes the batch atomically (syncing it when sync is set), then
// publishes the new revision to readers and starts a scheduled compaction.
func (a *Apply) Commit(sync bool) (Result, error) {
	if a.done {
		return Result{}, ErrClosed
	}
	a.done = true
	defer a.s.applyMu.Unlock()
	defer a.b.Close()
	if a.rev != a.start { // nothing reads it back before the commit
		a.b.PutUnindexed(engine.Meta, metaCurrentRev, encodeInt64(a.rev))
	}
	// The read cache marks the written keys before the revision is
	// published and settles them after (readcache.go).
	a.s.reads.markWritten(a.written, a.writtenOverflow)
	defer a.s.reads.settleWritten(a.written, a.writtenOverflow)
	if err := a.b.Commit(sync); err != nil {
		a.s.latest.reset() // it holds this batch's writes: latest.go
		return Result{}, err
	}
	a.s.currentRev.Store(a.rev)
	if a.compact != noCompaction {
		a.s.compactRev.Store(a.compact)
		a.s.compactor.schedule(a.compact)
	}
	res := Result{Rev: a.rev, Events: a.events, lazyPrev: a.lazyPrev, EventsDropped: a.eventsDropped}
	if a.s.onCommit != nil && (len(res.Events) > 0 || res.EventsDropped) {
		a.s.onCommit(res)
	}
	return res, nil
}

// Abort drops the batch. Nothing written through this Apply is kept.
func (a *Apply) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.b.Close()
	a.s.latest.reset() // it may hold writes of this batch: latest.go
	a.s.applyMu.Unlock()
}

// finalState tracks FinalRequest.
type finalState uint8

const (
	finalNone finalState = iota // not called: every request reads through
	finalNext                   // the next request is the last
	finalDone                   // the last request has been made
)

// errAfterFinal is a request made after the one FinalRequest named: it
// would not see that request's writes.
var errAfterFinal = errors.New("mvcc: request after the Apply's final one")

// FinalRequest tells the Apply that the next request is the last one to
// read or write keys through it (the server knows: it is the last request
// of the raft entries being applied). A Put or DeleteRange made as that
// request writes its versions into the batch without the copy in the
// batch's overlay that later reads would need: a DeleteRange of 250,000
// keys held 118 MB of Go heap in such copies until the commit. Requests
// after it fail; the caller's own records (Batch) and Commit are not
// affected.
func (a *Apply) FinalRequest() {
	if a.final == finalNone {
		a.final = finalNext
	}
}

// enter starts a request made through the Apply and reports whether it is
// the one FinalRequest named.
func (a *Apply) enter() (final bool, err error) {
	switch a.final {
	case finalNext:
		a.final = finalDone
		return true, nil
	case finalDone:
		return false, errAfterFinal
	}
	return false, nil
}

// beginWrite starts a request that will take the next main revision if it
// writes anything.
func (a *Apply) beginWrite() {
	a.w.rev = a.rev + 1
	a.w.sub = 0
}

// endWrite finishes the request: the revision advances only when something
// was written.
func (a *Apply) endWrite() {
	if a.w.sub > 0 {
		a.rev = a.w.rev
	}
}

// readRev is the revision a read inside the current write sees: its own
// writes are visible once it has made any.
func (a *Apply) readRev() int64 {
	if a.w.sub > 0 {
		return a.w.rev
	}
	return a.rev
}

func (a *Apply) compactRev() int64 { return max(a.compact, a.s.compactRev.Load()) }

// Range reads at the Apply's state, seeing everything written before it.
func (a *Apply) Range(req *pb.RangeRequest) (*pb.RangeResponse, error) {
	if _, err := a.enter(); err != nil {
		return nil, err
	}
	if err := CheckRange(req); err != nil {
		return nil, err
	}
	return rangeOn(a.b, req, a.readRev(), a.compactRev)
}

// Put applies a put request at the next revision.
func (a *Apply) Put(req *pb.PutRequest) (*pb.PutResponse, error) {
	final, err := a.enter()
	if err != nil {
		return nil, err
	}
	if err := CheckPut(req); err != nil {
		return nil, err
	}
	a.beginWrite()
	if err := a.checkPut(req); err != nil {
		return nil, err
	}
	a.unindexed = final
	resp, err := a.put(req)
	a.unindexed = false
	if err != nil {
		return nil, err
	}
	a.endWrite()
	resp.Header = &pb.ResponseHeader{Revision: a.rev}
	return resp, nil
}

// DeleteRange applies a delete request; the revision advances only when a
// key was deleted.
func (a *Apply) DeleteRange(req *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	final, err := a.enter()
	if err != nil {
		return nil, err
	}
	if err := CheckDeleteRange(req); err != nil {
		return nil, err
	}
	a.beginWrite()
	// A final delete's tombstones skip the overlay: its pages never read
	// a key twice (each starts past the last key of the one before).
	a.unindexed = final
	resp, err := a.deleteRange(req.Key, req.RangeEnd, req.PrevKv)
	a.unindexed = false
	if err != nil {
		return nil, err
	}
	a.endWrite()
	resp.Header = &pb.ResponseHeader{Revision: a.rev}
	return resp, nil
}

// DeleteKeys deletes the given keys in one revision (lease revoke and
// expiry). Keys that do not exist are skipped. It returns how many were
// deleted.
func (a *Apply) DeleteKeys(keys [][]byte) (int64, error) {
	if _, err := a.enter(); err != nil {
		return 0, err
	}
	a.beginWrite()
	var n int64
	for _, k := range keys {
		resp, err := a.deleteRange(k, nil, false)
		if err != nil {
			return n, err
		}
		n += resp.Deleted
	}
	a.endWrite()
	return n, nil
}

// Compact schedules compaction at rev: reads below rev fail from now on,
// and the superseded versions are deleted in the background after Commit.
func (a *Apply) Compact(rev int64) (*pb.CompactionResponse, error) {
	if _, err := a.enter(); err != nil {
		return nil, err
	}
	if rev <= a.compactRev() {
		return nil, ErrCompacted
	}
	if rev > a.rev {
		return nil, ErrFutureRev
	}
	a.compact = rev
	a.b.Put(engine.Meta, metaScheduledRev, encodeInt64(rev))
	return &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: a.rev}}, nil
}

// checkPut fails a put that cannot apply, before anything is written: an
// unknown lease, or ignore_value/ignore_lease on a missing key.
func (a *Apply) checkPut(req *pb.PutRequest) error {
	if req.Lease != 0 && (a.s.cfg.Leases == nil || !a.s.cfg.Leases.Exists(req.Lease)) {
		return ErrLeaseNotFound
	}
	if req.IgnoreValue || req.IgnoreLease {
		kv, err := a.latestKV(req.Key, false)
		if err != nil {
			return err
		}
		if kv == nil {
			return ErrKeyNotFound
		}
	}
	return nil
}

// put writes one version at a.w.rev. Checks are done by checkPut.
func (a *Apply) put(req *pb.PutRequest) (*pb.PutResponse, error) {
	// The previous value is needed for the reply, for ignore_value, or for
	// a prev_kv watcher's event; otherwise only its metadata is read.
	withValue := req.PrevKv || req.IgnoreValue || a.s.prevWatchers.Load() > 0
	prev, err := a.latestKV(req.Key, withValue)
	if err != nil {
		return nil, err
	}
	if prev != nil && !withValue {
		a.lazyPrev = true
	}
	v := version{create: a.w.rev, ver: 1, lease: req.Lease, value: req.Value}
	if prev != nil {
		v.create, v.ver = prev.CreateRevision, prev.Version+1
		if req.IgnoreValue {
			v.value = prev.Value
		}
		if req.IgnoreLease {
			v.lease = prev.Lease
		}
	}
	a.writeVersion(req.Key, v, kindPut)
	if leases := a.s.cfg.Leases; leases != nil {
		if prev != nil && prev.Lease != 0 && prev.Lease != v.lease {
			leases.Detach(prev.Lease, req.Key)
		}
		if v.lease != 0 && (prev == nil || prev.Lease != v.lease) {
			leases.Attach(v.lease, req.Key)
		}
	}
	if a.keepEvent() {
		kv := &mvccpb.KeyValue{Key: bytes.Clone(req.Key), CreateRevision: v.create, ModRevision: a.w.rev,
			Version: v.ver, Value: bytes.Clone(v.value), Lease: v.lease}
		a.events = append(a.events, &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv, PrevKv: prev})
	}
	resp := &pb.PutResponse{}
	if req.PrevKv {
		resp.PrevKv = prev
	}
	return resp, nil
}

// deletePage is how many keys deleteRange reads before it writes their
// tombstones: a large delete holds one page of keys, not all of them.
const deletePage = 1024

// deleteRange writes tombstones for every live key in [key, end), a page
// of keys at a time (the batch is not written while its iterator is open).
func (a *Apply) deleteRange(key, end []byte, wantPrev bool) (*pb.DeleteRangeResponse, error) {
	lower, upper := keyBounds(key, end)
	resp := &pb.DeleteRangeResponse{}
	if upper != nil && bytes.Compare(lower, upper) >= 0 {
		return resp, nil
	}
	// Values are kept only for a reply or event that needs them: a large
	// delete would otherwise hold every deleted value in memory at once.
	withValue := wantPrev || a.s.prevWatchers.Load() > 0
	var page []*mvccpb.KeyValue
	var last []byte // the escaped key of the page's last entry
	for from := lower; ; from = skipKey(from[:0], last) {
		page = page[:0]
		// Once the Apply keeps no events and no reply wants the records,
		// nothing of a page outlives it: its keys and records go in
		// buffers the Apply reuses, not in allocations of their own.
		reuse := !wantPrev && a.eventsDropped
		if reuse {
			if a.delKVs == nil {
				a.delKVs = make([]mvccpb.KeyValue, deletePage)
			}
			a.delKeys = a.delKeys[:0]
		}
		var decodeErr error
		err := scanLive(a.b, from, upper, math.MaxInt64, func(prefix []byte, modRev int64, raw []byte) bool {
			var kv *mvccpb.KeyValue
			var err error
			if reuse {
				start := len(a.delKeys)
				if a.delKeys, err = appendUnescaped(a.delKeys, prefix); err == nil {
					kv = &a.delKVs[len(page)]
					*kv = mvccpb.KeyValue{} // only what this page uses is reset
					err = fillKV(kv, a.delKeys[start:len(a.delKeys):len(a.delKeys)], modRev, raw, !withValue)
				}
			} else {
				kv, err = toKV(prefix, modRev, raw, !withValue)
			}
			if err != nil {
				decodeErr = err
				return false
			}
			page = append(page, kv)
			last = append(last[:0], prefix...)
			return len(page) < deletePage
		})
		if err == nil {
			err = decodeErr
		}
		if err != nil {
			return nil, err
		}
		for _, prev := range page {
			a.writeVersion(prev.Key, version{tombstone: true}, kindDelete)
			if prev.Lease != 0 && a.s.cfg.Leases != nil {
				a.s.cfg.Leases.Detach(prev.Lease, prev.Key)
			}
			if a.keepEvent() {
				a.events = append(a.events, &mvccpb.Event{Type: mvccpb.Event_DELETE,
					Kv: &mvccpb.KeyValue{Key: prev.Key, ModRevision: a.w.rev}, PrevKv: prev})
			}
		}
		if len(page) > 0 && !withValue {
			a.lazyPrev = true
		}
		resp.Deleted += int64(len(page))
		if wantPrev {
			resp.PrevKvs = append(resp.PrevKvs, page...)
		}
		if len(page) < deletePage {
			return resp, nil
		}
	}
}

// keepEvent reports whether the write in progress is to add its event.
// Past MaxApplyEvents the Apply keeps none (Result.EventsDropped), and
// callers build no event, nor copy a key or value for one.
func (a *Apply) keepEvent() bool {
	if a.eventsDropped {
		return false
	}
	if len(a.events) >= a.s.cfg.MaxApplyEvents {
		a.events, a.eventsDropped = nil, true
		return false
	}
	return true
}

// writeVersion adds the version and its change log record to the batch.
func (a *Apply) writeVersion(key []byte, v version, kind byte) {
	a.buf = dataKey(a.buf[:0], key, a.w.rev)
	n := len(a.buf)
	a.buf = appendVersion(a.buf, v)
	if a.unindexed {
		a.b.PutUnindexed(engine.Data, a.buf[:n], a.buf[n:]) // FinalRequest
	} else {
		a.b.Put(engine.Data, a.buf[:n], a.buf[n:])
	}
	a.buf = changeKey(a.buf[:0], a.w.rev, a.w.sub)
	n = len(a.buf)
	a.buf = changeValue(a.buf, kind, key)
	// Nothing reads the change log back within an Apply (watchers and
	// compaction read committed state), so it skips the batch's overlay.
	a.b.PutUnindexed(engine.ChangeLog, a.buf[:n], a.buf[n:])
	a.w.sub++
	a.noteWrite(key, v)
	if a.s.reads.on() && !a.writtenOverflow {
		if len(a.written) >= readCacheBarrier {
			a.written, a.writtenOverflow = nil, true
		} else {
			a.written = append(a.written, bytes.Clone(key))
		}
	}
}
