package mvcc

import (
	"bytes"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// AutoWatchID asks the stream to choose the watch ID (etcd's: 0).
const AutoWatchID int64 = 0

// WatchRequest creates one watch on a stream.
type WatchRequest struct {
	// ID is the client's chosen watch ID, or AutoWatchID.
	ID int64
	// Key and End are etcd's range: End empty watches Key alone, End
	// "\x00" every key >= Key, otherwise [Key, End).
	Key, End []byte
	// StartRev is the first revision to deliver (0: from the next commit).
	// Older revisions are replayed from the change log; a StartRev below
	// the compaction revision ends the watch with CompactRevision set.
	StartRev int64
	// NoPut and NoDelete drop events of that type (etcd's filters).
	NoPut, NoDelete bool
	// PrevKV, Fragment and ProgressNotify are the client's options; the
	// hub computes PrevKv for replayed events when PrevKV is set, and
	// copies PrevKV and Fragment into every response for the front end.
	PrevKV, Fragment, ProgressNotify bool
}

// WatchResponse is one message for the client, in stream order.
type WatchResponse struct {
	// WatchID is the watch it is for; -1 for a progress notification on
	// behalf of every watch of the stream, or for a failed create.
	WatchID int64
	// Events are in revision order; the events of one revision are never
	// split across responses. PUT events carry PrevKv when the key existed
	// before (strip it unless PrevKV is set).
	Events []*mvccpb.Event
	// Revision is the header revision: the watch has been given every
	// event up to it.
	Revision        int64
	CompactRevision int64
	Created         bool
	Canceled        bool
	CancelReason    string
	// PrevKV and Fragment are the watch's options.
	PrevKV, Fragment bool
}

// WatchStream is a set of watches whose responses go out on one ordered
// queue, as a gRPC Watch stream's do. One goroutine (the front end's
// sender) takes responses with Take when Ready fires; requests (Watch,
// Cancel, RequestProgress, ...) may come from another goroutine.
type WatchStream struct {
	hub *WatchHub

	// Guarded by hub.mu.
	watchers       map[int64]*watcher
	nextID         int64
	progressTarget int64 // revision a pending RequestProgress waits for
	closed         bool

	// mu guards the queue and every watcher's queued, lastQ and lastGen.
	mu struct {
		sync.Mutex
		queue []queued
		spare []queued // the previous queue, reused by the next Take
		// gen changes whenever queue indexes stop being valid (Take,
		// Cancel): a watcher's lastQ counts only when its lastGen is gen.
		gen uint64
		// barrier is the queue index merges must not reach below: just
		// past the last stream-wide response (a progress notification
		// must not overtake events queued after it).
		barrier int
	}
	ready chan struct{}
	done  chan struct{}
}

type queued struct {
	w    *watcher // nil for responses not charged to a watcher
	cost int
	resp WatchResponse
	// ownEvents: resp.Events was made by a merge, so it may be appended to
	// (the fan-out's slices are shared by every watcher of a group).
	ownEvents bool
	// bytes estimates resp's events' size once a merge measured it.
	bytes int
}

// maxMergedEvents and maxMergedBytes bound what one merged response
// collects (a single revision may still be larger: it is never split).
const (
	maxMergedEvents = 1024
	maxMergedBytes  = 1 << 20
)

// NewStream opens a stream. Close it when the client goes away.
func (h *WatchHub) NewStream() *WatchStream {
	ws := &WatchStream{hub: h, watchers: map[int64]*watcher{},
		ready: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		ws.closed = true
		close(ws.done)
		return ws
	}
	h.mu.streams[ws] = struct{}{}
	return ws
}

// Ready receives a value after responses were queued.
func (ws *WatchStream) Ready() <-chan struct{} { return ws.ready }

// Done is closed when the stream or the hub closes.
func (ws *WatchStream) Done() <-chan struct{} { return ws.done }

// Take appends the queued responses to dst, in order, and empties the
// queue; the watchers' buffer space is free again.
func (ws *WatchStream) Take(dst []WatchResponse) []WatchResponse {
	ws.mu.Lock()
	q := ws.mu.queue
	ws.mu.queue = ws.mu.spare[:0]
	ws.mu.gen++
	ws.mu.barrier = 0
	for i := range q {
		if q[i].w != nil {
			q[i].w.queued -= q[i].cost
		}
		dst = append(dst, q[i].resp)
	}
	clear(q) // drop the events for the collector
	ws.mu.spare = q
	ws.mu.Unlock()
	if len(q) > 0 && ws.hub.unsyncedN.Load() > 0 {
		ws.hub.wakeSync() // a watcher waiting for room may have it now
	}
	return dst
}

// push queues resp for w (nil: a stream-wide response). Unless force is
// set it fails when w's buffer cannot take it; a response always fits an
// empty buffer, so a revision larger than the buffer still goes out whole.
//
// Events for a watcher whose last queued response is an event response
// not yet taken are appended to that response: a sender that falls behind
// sends one message per watcher for all it missed, not one per revision.
func (ws *WatchStream) push(w *watcher, resp WatchResponse, force bool) bool {
	cost := max(len(resp.Events), 1)
	ws.mu.Lock()
	if w != nil {
		if !force && w.queued > 0 && w.queued+cost > ws.hub.cfg.WatcherBuffer {
			ws.mu.Unlock()
			return false
		}
		w.queued += cost
		if ws.mergeLocked(w, &resp, cost) {
			ws.mu.Unlock()
			return true // NB: the queue was not empty, a signal is pending
		}
		resp.WatchID = w.id
		resp.PrevKV, resp.Fragment = w.prevKV, w.fragment
		w.lastQ, w.lastGen = len(ws.mu.queue), ws.mu.gen
	}
	wasEmpty := len(ws.mu.queue) == 0
	ws.mu.queue = append(ws.mu.queue, queued{w: w, cost: cost, resp: resp})
	if w == nil {
		ws.mu.barrier = len(ws.mu.queue)
	}
	ws.mu.Unlock()
	if wasEmpty {
		// NB: a non-empty queue has a signal pending or a Take coming.
		select {
		case ws.ready <- struct{}{}:
		default:
		}
	}
	return true
}

// mergeLocked appends resp's events to w's last queued response when both
// are plain event responses and the result stays under maxMergedEvents.
// The merged response keeps w's order (nothing of w's lies between) and
// takes resp's header revision.
// REQUIRES: ws.mu held.
func (ws *WatchStream) mergeLocked(w *watcher, resp *WatchResponse, cost int) bool {
	if !resp.EventsOnly() || w.lastGen != ws.mu.gen || w.lastQ < ws.mu.barrier || w.lastQ >= len(ws.mu.queue) {
		return false
	}
	last := &ws.mu.queue[w.lastQ]
	if last.w != w || !last.resp.EventsOnly() || len(last.resp.Events)+len(resp.Events) > maxMergedEvents {
		return false
	}
	if last.bytes == 0 {
		last.bytes = eventBytes(last.resp.Events)
	}
	n := eventBytes(resp.Events)
	if last.bytes+n > maxMergedBytes {
		return false
	}
	last.bytes += n
	if !last.ownEvents {
		evs := make([]*mvccpb.Event, len(last.resp.Events), 2*(len(last.resp.Events)+len(resp.Events)))
		copy(evs, last.resp.Events)
		last.resp.Events, last.ownEvents = evs, true
	}
	last.resp.Events = append(last.resp.Events, resp.Events...)
	last.resp.Revision = max(last.resp.Revision, resp.Revision)
	last.cost += cost
	return true
}

// eventBytes estimates the encoded size of evs.
func eventBytes(evs []*mvccpb.Event) int {
	n := 0
	for _, ev := range evs {
		n += 32 + len(ev.Kv.Key) + len(ev.Kv.Value)
		if ev.PrevKv != nil {
			n += 32 + len(ev.PrevKv.Key) + len(ev.PrevKv.Value)
		}
	}
	return n
}

// EventsOnly reports whether r carries events and nothing else a client
// must see in its own message.
func (r *WatchResponse) EventsOnly() bool {
	return len(r.Events) > 0 && !r.Created && !r.Canceled && r.CompactRevision == 0 && r.CancelReason == ""
}

// room is how many events w may still queue (at least 1 when its buffer
// is empty).
func (ws *WatchStream) room(w *watcher) int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w.queued == 0 {
		return max(ws.hub.cfg.WatcherBuffer, 1)
	}
	return ws.hub.cfg.WatcherBuffer - w.queued
}

// Watch creates a watch and queues its created response (header revision:
// the store's current revision). It fails, queuing nothing, when the range
// is empty (key >= end), the chosen ID is in use, or the stream is closed;
// the front end then answers with Reject.
// Len is the number of watchers open on the stream.
func (ws *WatchStream) Len() int {
	ws.hub.mu.Lock()
	defer ws.hub.mu.Unlock()
	return len(ws.watchers)
}

func (ws *WatchStream) Watch(r WatchRequest) (int64, error) {
	end := r.End
	switch {
	case len(end) == 0:
		end = nil
	case len(end) == 1 && end[0] == 0:
		end = []byte{}
	case bytes.Compare(r.Key, end) >= 0:
		return -1, ErrEmptyWatcherRange
	}
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if ws.closed {
		return -1, ErrWatchStreamClosed
	}
	id := r.ID
	if id == AutoWatchID {
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
		ws.nextID++
	} else if ws.watchers[id] != nil {
		return -1, ErrWatcherDuplicateID
	}
	w := &watcher{id: id, stream: ws, key: bytes.Clone(r.Key), end: bytes.Clone(end),
		noPut: r.NoPut, noDelete: r.NoDelete, prevKV: r.PrevKV, fragment: r.Fragment,
		progressNotify: r.ProgressNotify, startRev: r.StartRev,
		progressArmed: r.ProgressNotify} // etcd notifies at the first tick
	if end != nil && w.end == nil {
		w.end = []byte{} // bytes.Clone keeps nil-ness; keep "every key >=" too
	}
	ws.watchers[id] = w
	h.mu.watchers++
	if w.prevKV {
		h.store.prevWatchers.Add(1)
	}
	cur := h.store.Rev()
	ws.push(w, WatchResponse{Created: true, Revision: cur}, true)
	if r.StartRev <= 0 || r.StartRev > cur {
		// From now (or a future revision): the live path alone serves it.
		// NB: cur may be ahead of the hub's revision; nextRev makes the
		// fan-out skip what the watcher must not see.
		w.state = stateSynced
		w.nextRev = max(cur+1, r.StartRev)
		h.mu.synced.add(w)
		return id, nil
	}
	w.state = stateUnsynced
	w.nextRev = r.StartRev
	h.mu.unsynced[w] = struct{}{}
	h.unsyncedN.Store(int64(len(h.mu.unsynced)))
	h.wakeSync()
	return id, nil
}

// Reject queues the created-and-canceled response etcd sends for a create
// request it refused (watch ID -1), with reason as cancel reason.
func (ws *WatchStream) Reject(reason string) {
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if ws.closed {
		return
	}
	ws.push(nil, WatchResponse{WatchID: -1, Created: true, Canceled: true, CancelReason: reason,
		Revision: h.store.Rev()}, true)
}

// Cancel removes a watch, drops its responses not yet taken but its
// created response (a client that creates and cancels at once gets both
// answers, as from etcd), and queues its canceled response. An unknown ID
// fails with ErrWatcherNotExist and queues nothing (as etcd).
func (ws *WatchStream) Cancel(id int64) error {
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	w := ws.watchers[id]
	if ws.closed || w == nil {
		return ErrWatcherNotExist
	}
	h.removeLocked(w)
	delete(ws.watchers, id)
	ws.mu.Lock()
	kept := ws.mu.queue[:0]
	for _, q := range ws.mu.queue {
		switch {
		case q.w != w:
			kept = append(kept, q)
		case q.resp.Created:
			// No longer charged to the watcher, without the events a
			// merge may have added.
			q.w, q.resp.Events = nil, nil
			kept = append(kept, q)
		}
	}
	clear(ws.mu.queue[len(kept):])
	ws.mu.queue = kept
	ws.mu.gen++ // indexes moved
	w.queued = 0
	ws.mu.Unlock()
	ws.push(nil, WatchResponse{WatchID: id, Canceled: true, Revision: h.store.Rev()}, true)
	h.checkProgressLocked() // the rest may all be synced now
	return nil
}

// RequestProgress asks for a progress notification (watch ID -1) on behalf
// of every watch of the stream. It is queued once every watch is synced at
// a revision at least the store's current one, and at least every watch's
// start revision (as etcd); requests made while one waits are answered by
// it. A stream without watches gets nothing (as etcd).
//
// NB: etcd 3.6+ drops a request made while a watcher is unsynced; this one
// is answered once the stream has caught up instead.
func (ws *WatchStream) RequestProgress() {
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if ws.closed || len(ws.watchers) == 0 {
		return
	}
	ws.progressTarget = max(ws.progressTarget, h.store.Rev())
	h.mu.progress[ws] = struct{}{}
	h.checkProgressLocked()
}

// progressReadyLocked reports whether the stream's pending progress
// request can be answered at hub revision rev.
// REQUIRES: hub.mu held.
func (ws *WatchStream) progressReadyLocked(rev int64) bool {
	if rev < ws.progressTarget {
		return false
	}
	for _, w := range ws.watchers {
		switch w.state {
		case stateSynced:
			// NB: a watcher that joined ahead of the hub has been given
			// more than rev; saying rev would make a client resume early.
			if rev < w.startRev || rev < w.nextRev-1 {
				return false
			}
		case stateUnsynced:
			return false
		}
	}
	return true
}

// ProgressTick is the periodic progress notification: each watch created
// with ProgressNotify that is synced, got no events since the last tick,
// and has room, gets an empty response at the hub's revision (etcd's
// progress ticker, including not notifying before the start revision).
func (ws *WatchStream) ProgressTick() {
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range ws.watchers {
		if !w.progressNotify {
			continue
		}
		// A synced watcher has been given everything up to the hub's
		// revision, or up to nextRev-1 when it joined ahead of the hub.
		rev := max(h.mu.rev, w.nextRev-1)
		if w.progressArmed && w.state == stateSynced && rev >= w.startRev {
			ws.push(w, WatchResponse{Revision: rev}, false)
		}
		w.progressArmed = true
	}
}

// Close removes every watch of the stream and closes Done.
func (ws *WatchStream) Close() {
	h := ws.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	ws.closeLocked()
}

// closeLocked removes the stream from the hub.
// REQUIRES: hub.mu held.
func (ws *WatchStream) closeLocked() {
	if ws.closed {
		return
	}
	ws.closed = true
	h := ws.hub
	for id, w := range ws.watchers {
		h.removeLocked(w)
		delete(ws.watchers, id)
	}
	delete(h.mu.streams, ws)
	delete(h.mu.progress, ws)
	ws.mu.Lock()
	ws.mu.queue, ws.mu.spare = nil, nil
	ws.mu.Unlock()
	close(ws.done)
}
