package mvcc

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Watch errors; the messages are etcd's (a failed create carries them as
// its cancel reason).
var (
	ErrWatcherNotExist    = errors.New("mvcc: watcher does not exist")
	ErrEmptyWatcherRange  = errors.New("mvcc: watcher range is empty")
	ErrWatcherDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	ErrWatchStreamClosed  = errors.New("mvcc: watch stream closed")
)

// Watch hub defaults.
const (
	DefaultWatcherBuffer = 1024
	DefaultPendingEvents = 100000
	DefaultSyncWatchers  = 512 // etcd's maxWatchersPerSync
	DefaultSyncEvents    = 1000
	DefaultSyncInterval  = 100 * time.Millisecond // etcd's watchResyncPeriod
)

// WatchConfig tunes a WatchHub. Zero fields take the defaults above.
type WatchConfig struct {
	// WatcherBuffer bounds what one watcher may have queued on its stream
	// and not yet taken by the sender, in events (a response without events
	// counts as one). A watcher that would go past it is set aside
	// (unsynced) and later catches up from the change log.
	WatcherBuffer int
	// PendingEvents bounds the committed events waiting for the fan-out.
	// Past it, commits are not queued: every synced watcher catches up
	// from the change log instead.
	PendingEvents int
	// SyncWatchers and SyncEvents size one catch-up pass: how many unsynced
	// watchers it serves and about how many events it reads.
	SyncWatchers int
	SyncEvents   int
	// SyncInterval is how often unsynced watchers are retried when nothing
	// wakes the catch-up goroutine, and how often the hub checks for
	// revisions that were published without a commit notification.
	SyncInterval time.Duration
}

func (c WatchConfig) withDefaults() WatchConfig {
	if c.WatcherBuffer <= 0 {
		c.WatcherBuffer = DefaultWatcherBuffer
	}
	if c.PendingEvents <= 0 {
		c.PendingEvents = DefaultPendingEvents
	}
	if c.SyncWatchers <= 0 {
		c.SyncWatchers = DefaultSyncWatchers
	}
	if c.SyncEvents <= 0 {
		c.SyncEvents = DefaultSyncEvents
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	return c
}

// WatchHub delivers committed events to watchers:
//
//   - Notify (the store's commit hook) only appends the Result to a bounded
//     queue and returns: the apply goroutine never waits for watchers.
//   - The fan-out goroutine takes Results in order and hands each synced
//     watcher the events in its range, as one response per Result, on its
//     stream's queue. A watcher whose queue is full becomes unsynced.
//   - The catch-up goroutine replays history from the change log
//     (Store.Events) to unsynced watchers, a batch at a time and only as
//     fast as their streams drain, then moves them back to synced.
//
// Every watcher gets every revision in its range exactly once, in order.
// Two numbers carry that invariant. The hub's revision is the newest
// revision the fan-out has handed out: every synced watcher has every event
// up to it queued. A watcher's nextRev is the first revision it has not
// been given. The fan-out gives a watcher only events at or past its
// nextRev; a watcher leaving the live path keeps
// nextRev = max(nextRev, hub revision + 1); the catch-up replays from
// nextRev and lets a watcher rejoin only when nextRev > hub revision (it
// may be ahead: the fan-out then skips what it already has). A gap (commits
// not queued because the queue was full, or revisions published without a
// Result after a snapshot restore) unsyncs every synced watcher that needs
// any of it; Results at or below the hub's revision are skipped.
//
// Memory is bounded per watcher (WatcherBuffer events queued), for the
// fan-out queue (PendingEvents), and for a catch-up pass (SyncWatchers x
// SyncEvents): a watcher that cannot keep up costs only its place in the
// unsynced set, never a growing backlog.
type WatchHub struct {
	store *Store
	cfg   WatchConfig

	// in is the queue between the commit hook and the fan-out. Lock order:
	// hub.mu, then in.mu (the hook takes only in.mu).
	in struct {
		sync.Mutex
		items  []hubItem
		events int
		closed bool
	}
	inWake chan struct{}

	// mu guards every watcher's state, the index, the unsynced set, the
	// streams and their watcher maps. Lock order: mu, then a stream's mu.
	mu struct {
		sync.Mutex
		// rev is the newest revision the fan-out has handed to synced
		// watchers: each of them has every event up to rev queued.
		rev      int64
		synced   watchIndex
		unsynced map[*watcher]struct{}
		streams  map[*WatchStream]struct{}
		// progress holds streams with a RequestProgress not answered yet.
		progress map[*WatchStream]struct{}
		watchers int
		closed   bool
		// stale detects revisions published without a Result (a snapshot
		// restore replaced the store): the store and hub revisions seen at
		// the previous check.
		staleStore, staleHub int64
	}
	unsyncedN atomic.Int64 // len(mu.unsynced), read without the lock
	gaps      atomic.Int64 // gaps handled (see WatchStats.Gaps)
	syncWake  chan struct{}

	stopc chan struct{}
	wg    sync.WaitGroup
}

// hubItem is one queued commit, or a gap: commits up to rev that were not
// queued because the queue was full.
type hubItem struct {
	res Result
	gap bool
}

// NewWatchHub starts a hub over s at its current revision. Register
// hub.Notify as the store's commit hook before the first Apply, and Close
// the hub before the store.
func NewWatchHub(s *Store, cfg WatchConfig) *WatchHub {
	h := &WatchHub{store: s, cfg: cfg.withDefaults(),
		inWake: make(chan struct{}, 1), syncWake: make(chan struct{}, 1), stopc: make(chan struct{})}
	h.mu.rev = s.Rev()
	h.mu.synced = newWatchIndex()
	h.mu.unsynced = map[*watcher]struct{}{}
	h.mu.streams = map[*WatchStream]struct{}{}
	h.mu.progress = map[*WatchStream]struct{}{}
	h.wg.Add(2)
	go h.fanOutLoop()
	go h.syncLoop()
	return h
}

// Notify queues a committed Result for the watchers. It is the store's
// commit hook: it never blocks on a watcher and returns at once.
func (h *WatchHub) Notify(res Result) {
	if len(res.Events) == 0 && !res.EventsDropped {
		return
	}
	h.in.Lock()
	switch {
	case h.in.closed:
	case res.EventsDropped || h.in.events > 0 && h.in.events+len(res.Events) > h.cfg.PendingEvents:
		// Full, or the Apply kept no events: record a gap instead (one
		// per run of dropped commits); the change log has them.
		if n := len(h.in.items); n > 0 && h.in.items[n-1].gap {
			h.in.items[n-1].res.Rev = res.Rev
		} else {
			h.in.items = append(h.in.items, hubItem{res: Result{Rev: res.Rev}, gap: true})
		}
	default:
		h.in.items = append(h.in.items, hubItem{res: res})
		h.in.events += len(res.Events)
	}
	h.in.Unlock()
	select {
	case h.inWake <- struct{}{}:
	default:
	}
}

// Close stops the hub's goroutines and closes every stream.
func (h *WatchHub) Close() {
	h.in.Lock()
	if h.in.closed {
		h.in.Unlock()
		return
	}
	h.in.closed = true
	h.in.items = nil
	h.in.Unlock()
	close(h.stopc)
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.closed = true
	for ws := range h.mu.streams {
		ws.closeLocked()
	}
}

// Rev is the newest revision the hub has handed to its synced watchers.
func (h *WatchHub) Rev() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.rev
}

// WatchStats counts the hub's streams and watchers.
type WatchStats struct {
	Streams, Watchers int
	// Synced watchers get events as they commit; Unsynced ones are
	// catching up from the change log.
	Synced, Unsynced int
	// Gaps counts the times committed revisions bypassed the fan-out (its
	// queue was full, or a snapshot restore) and the synced watchers that
	// needed them caught up from the change log instead.
	Gaps int64
}

// Stats returns the hub's counts.
func (h *WatchHub) Stats() WatchStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return WatchStats{Streams: len(h.mu.streams), Watchers: h.mu.watchers,
		Synced: h.mu.synced.size, Unsynced: len(h.mu.unsynced), Gaps: h.gaps.Load()}
}

func (h *WatchHub) fanOutLoop() {
	defer h.wg.Done()
	tick := time.NewTicker(h.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.stopc:
			return
		case <-h.inWake:
			h.drainInput()
		case <-tick.C:
			h.checkStale()
		}
	}
}

// drainInput fans out every queued item, in order.
func (h *WatchHub) drainInput() {
	for {
		h.in.Lock()
		items := h.in.items
		h.in.items, h.in.events = nil, 0
		h.in.Unlock()
		if len(items) == 0 {
			return
		}
		for i := range items {
			h.mu.Lock()
			h.processLocked(&items[i])
			h.checkProgressLocked()
			h.mu.Unlock()
			items[i] = hubItem{}
		}
	}
}

// checkStale treats revisions the store published without a commit
// notification (a snapshot restore, which replaces the state wholesale) as
// a gap, once it has seen the same lag at two checks in a row.
//
// NB: declaring a gap is always safe, only slower: the synced watchers
// replay it from the change log, and a Result that arrives later for
// revisions at or below the hub's revision is skipped.
func (h *WatchHub) checkStale() {
	cur := h.store.Rev()
	h.in.Lock()
	empty := len(h.in.items) == 0
	h.in.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !empty || cur <= h.mu.rev {
		h.mu.staleStore, h.mu.staleHub = 0, 0
		return
	}
	if h.mu.staleStore != cur || h.mu.staleHub != h.mu.rev {
		h.mu.staleStore, h.mu.staleHub = cur, h.mu.rev
		return
	}
	h.gapLocked(h.mu.rev+1, cur)
	h.mu.rev = cur
	h.mu.staleStore, h.mu.staleHub = 0, 0
	h.checkProgressLocked()
}

// processLocked hands one queued item to the synced watchers.
// REQUIRES: h.mu held.
func (h *WatchHub) processLocked(it *hubItem) {
	if it.gap {
		if it.res.Rev > h.mu.rev {
			h.gapLocked(h.mu.rev+1, it.res.Rev)
			h.mu.rev = it.res.Rev
		}
		return
	}
	evs := it.res.Events
	i := 0
	for i < len(evs) && evs[i].Kv.ModRevision <= h.mu.rev {
		i++ // already covered by a gap
	}
	evs = evs[i:]
	if len(evs) == 0 {
		return
	}
	if first := evs[0].Kv.ModRevision; first > h.mu.rev+1 {
		h.gapLocked(h.mu.rev+1, first-1)
		h.mu.rev = first - 1
	}
	h.fanOutLocked(evs, it.res.Rev, it.res.lazyPrev)
	h.mu.rev = max(h.mu.rev, it.res.Rev)
}

// fanOutLocked queues evs (revisions h.mu.rev+1 .. rev) on every synced
// watcher whose range they touch. With lazyPrev, the previous values a
// prev_kv watcher needs are read back first, before any event is shared.
// REQUIRES: h.mu held.
func (h *WatchHub) fanOutLocked(evs []*mvccpb.Event, rev int64, lazyPrev bool) {
	var touched []*watchGroup
	for _, ev := range evs {
		touched = h.mu.synced.match(ev, touched)
	}
	if lazyPrev {
		for _, g := range touched {
			if g.wantsPrev() {
				h.fillPrev(g.matched)
			}
		}
	}
	from := h.mu.rev + 1
	var over []*watcher
	for _, g := range touched {
		matched := g.matched
		g.matched = nil // shared with the responses below: never reused
		for _, w := range g.members {
			picked := w.pick(matched)
			if len(picked) == 0 {
				continue
			}
			if !w.stream.push(w, WatchResponse{Events: picked, Revision: rev}, false) {
				over = append(over, w)
				continue
			}
			w.progressArmed = false
		}
	}
	for _, w := range over {
		h.unsyncLocked(w, max(w.nextRev, from))
	}
}

// gapLocked moves every synced watcher that needs a revision in from..to
// to unsynced: those revisions were not (and will not be) fanned out.
// REQUIRES: h.mu held.
func (h *WatchHub) gapLocked(from, to int64) {
	h.gaps.Add(1)
	var moved []*watcher
	h.mu.synced.each(func(w *watcher) {
		if max(w.nextRev, from) <= to {
			moved = append(moved, w)
		}
	})
	for _, w := range moved {
		h.unsyncLocked(w, max(w.nextRev, from))
	}
}

// unsyncLocked sets a synced watcher aside: it needs history from next on.
// REQUIRES: h.mu held.
func (h *WatchHub) unsyncLocked(w *watcher, next int64) {
	h.mu.synced.remove(w)
	w.state = stateUnsynced
	w.nextRev = next
	h.mu.unsynced[w] = struct{}{}
	h.unsyncedN.Store(int64(len(h.mu.unsynced)))
	h.wakeSync()
}

// syncedLocked moves an unsynced watcher back to the live path.
// REQUIRES: h.mu held, w.nextRev > h.mu.rev.
func (h *WatchHub) syncedLocked(w *watcher) {
	if w.nextRev <= h.mu.rev {
		panic("mvcc: watcher rejoins the live path behind the hub revision")
	}
	delete(h.mu.unsynced, w)
	h.unsyncedN.Store(int64(len(h.mu.unsynced)))
	w.state = stateSynced
	h.mu.synced.add(w)
}

// removeLocked takes a watcher out of the hub (cancel, stream close).
// REQUIRES: h.mu held.
func (h *WatchHub) removeLocked(w *watcher) {
	switch w.state {
	case stateSynced:
		h.mu.synced.remove(w)
	case stateUnsynced:
		delete(h.mu.unsynced, w)
		h.unsyncedN.Store(int64(len(h.mu.unsynced)))
	}
	w.state = stateCanceled
	h.mu.watchers--
	if w.prevKV {
		h.store.prevWatchers.Add(-1)
	}
}

func (h *WatchHub) wakeSync() {
	select {
	case h.syncWake <- struct{}{}:
	default:
	}
}

// checkProgressLocked answers the pending RequestProgress of every stream
// whose watchers are all synced at a revision at least the one current
// when it asked.
// REQUIRES: h.mu held.
func (h *WatchHub) checkProgressLocked() {
	for ws := range h.mu.progress {
		if ws.progressReadyLocked(h.mu.rev) {
			delete(h.mu.progress, ws)
			ws.progressTarget = 0
			ws.push(nil, WatchResponse{WatchID: -1, Revision: h.mu.rev}, true)
		}
	}
}

// wantsPrev reports whether a member of the group asked for prev_kv.
func (g *watchGroup) wantsPrev() bool {
	for _, w := range g.members {
		if w.prevKV {
			return true
		}
	}
	return false
}

// fillPrev reads back the previous value of events whose PrevKv was
// recorded without it (see Store.prevWatchers): the version at the
// PrevKv's mod revision, committed before the event. If a compaction has
// removed it meanwhile, the PrevKv keeps its metadata without the value.
// The events are not shared with any stream yet, so they are changed in
// place.
func (h *WatchHub) fillPrev(evs []*mvccpb.Event) {
	for _, ev := range evs {
		p := ev.PrevKv
		if p == nil || p.Value != nil {
			continue
		}
		kv, err := latestKV(h.store.eng, p.Key, p.ModRevision, true)
		if err == nil && kv != nil && kv.ModRevision == p.ModRevision {
			if kv.Value == nil {
				kv.Value = []byte{}
			}
			ev.PrevKv = kv
		}
	}
}
