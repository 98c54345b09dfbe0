package mvcc

import (
	"errors"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// syncLoop is the catch-up goroutine: it replays history from the change
// log to unsynced watchers until they reach the live path. It runs when
// woken (a watcher became unsynced, a stream drained) and every
// SyncInterval while unsynced watchers remain.
func (h *WatchHub) syncLoop() {
	defer h.wg.Done()
	tick := time.NewTicker(h.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.stopc:
			return
		case <-h.syncWake:
		case <-tick.C:
			if h.unsyncedN.Load() == 0 {
				continue
			}
		}
		for h.syncOnce() {
			select {
			case <-h.stopc:
				return
			default:
			}
		}
	}
}

// syncOnce runs one catch-up pass and reports whether it made progress
// (so another pass may make more).
//
// A pass picks up to SyncWatchers unsynced watchers whose buffers have
// room, reads the change log once from the smallest nextRev among them
// (about SyncEvents events, whole revisions), and gives each its share.
// Watchers whose history is compacted get a compacted response instead.
// The read runs without the hub lock: the fan-out and new requests go on
// meanwhile, and only the catch-up goroutine moves an unsynced watcher.
func (h *WatchHub) syncOnce() bool {
	h.mu.Lock()
	if len(h.mu.unsynced) == 0 || h.mu.closed {
		h.mu.Unlock()
		return false
	}
	compactRev := h.store.CompactRev()
	cur := h.store.Rev()
	progressed := false
	var chosen []*watcher
	minRev := int64(math.MaxInt64)
	withPrev := false
	for w := range h.mu.unsynced {
		switch {
		case w.nextRev < compactRev:
			h.compactedLocked(w, compactRev, cur)
			progressed = true
			continue
		case w.nextRev > cur:
			// Nothing to read. NB: the hub revision is at most cur unless
			// the store went back (it never should); then wait for it.
			if w.nextRev > h.mu.rev {
				h.syncedLocked(w)
				progressed = true
			}
			continue
		case w.stream.room(w) <= 0:
			continue // its sender has not taken what it has yet
		}
		chosen = append(chosen, w)
		minRev = min(minRev, w.nextRev)
		withPrev = withPrev || w.prevKV
		if len(chosen) >= h.cfg.SyncWatchers {
			break
		}
	}
	if progressed {
		h.checkProgressLocked()
	}
	h.mu.Unlock()
	if len(chosen) == 0 {
		return progressed
	}

	evs, next, err := h.store.Events(minRev, cur, h.cfg.SyncEvents, withPrev)
	if errors.Is(err, ErrCompacted) {
		return true // compacted meanwhile: the next pass tells them
	}
	if err != nil {
		// The engine failed to read; retry at the next tick rather than spin.
		return false
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range chosen {
		if w.state == stateUnsynced {
			h.replayLocked(w, evs, next)
		}
	}
	h.checkProgressLocked()
	return true
}

// replayLocked gives w its events of evs (revisions up to next-1, read
// from w.nextRev or earlier), as many whole revisions as its buffer room
// allows, and moves it to synced once it has reached the hub.
// REQUIRES: h.mu held, w unsynced.
func (h *WatchHub) replayLocked(w *watcher, evs []*mvccpb.Event, next int64) {
	budget := w.stream.room(w)
	stop := next // first revision not given
	var out []*mvccpb.Event
	for i := 0; i < len(evs); {
		rev := evs[i].Kv.ModRevision
		j := i
		for j < len(evs) && evs[j].Kv.ModRevision == rev {
			j++
		}
		if rev >= w.nextRev {
			n := len(out)
			for _, ev := range evs[i:j] {
				if w.contains(ev.Kv.Key) && !w.filtered(ev) {
					out = append(out, ev)
				}
			}
			if n > 0 && len(out) > budget {
				// This revision does not fit: it goes next time, whole.
				out = out[:n]
				stop = rev
				break
			}
		}
		i = j
	}
	if len(out) > 0 {
		w.stream.push(w, WatchResponse{Events: out, Revision: stop - 1}, true)
		w.progressArmed = false
	}
	w.nextRev = max(w.nextRev, stop)
	if w.nextRev > h.mu.rev {
		h.syncedLocked(w)
	}
}

// compactedLocked ends a watcher whose history is compacted: it gets a
// response with CompactRevision set and is canceled (etcd's behaviour);
// its ID stays taken until the client cancels it.
// REQUIRES: h.mu held, w unsynced.
func (h *WatchHub) compactedLocked(w *watcher, compactRev, cur int64) {
	delete(h.mu.unsynced, w)
	h.unsyncedN.Store(int64(len(h.mu.unsynced)))
	w.state = stateCompacted
	// NB: etcd leaves the header revision 0 here; the current revision
	// tells the client more and no client reads it.
	w.stream.push(w, WatchResponse{CompactRevision: compactRev, Canceled: true, Revision: cur}, true)
}
