package mvcc

import (
	"bytes"
	"encoding/binary"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// watcherState is where a watcher is in the hub. Every transition happens
// with hub.mu held.
type watcherState uint8

const (
	// stateSynced: every event up to the hub's revision is queued on the
	// stream; the fan-out delivers the next ones as they commit.
	stateSynced watcherState = iota
	// stateUnsynced: the watcher needs history from nextRev on; the
	// catch-up goroutine replays it from the change log.
	stateUnsynced
	// stateCompacted: the history it needed was compacted; it was told so
	// and receives nothing more. Its ID stays taken until it is canceled.
	stateCompacted
	// stateCanceled: removed from the hub.
	stateCanceled
)

// watcher is one watch on a stream.
type watcher struct {
	id     int64
	stream *WatchStream
	// key and end as etcd's: end nil watches key alone, end empty (not nil)
	// every key >= key, otherwise [key, end).
	key, end []byte
	group    *watchGroup // its group in the synced index while synced
	groupPos int         // its index in group.members

	noPut, noDelete bool
	prevKV          bool
	fragment        bool
	progressNotify  bool
	startRev        int64

	// Guarded by hub.mu.
	state watcherState
	// nextRev is the first revision whose events the watcher has not been
	// given. For a synced watcher the effective value is
	// max(nextRev, hub revision + 1): the fan-out does not bump it.
	nextRev int64
	// progressArmed is set at each progress tick and cleared when events
	// are queued: a progress notification goes out only after a quiet
	// interval (etcd elides it after an event).
	progressArmed bool

	// queued is the cost (events, at least 1 per response) of this
	// watcher's responses waiting in its stream's queue. Guarded by
	// stream.mu.
	queued int
	// lastQ is the index of this watcher's last response in its stream's
	// queue, valid while lastGen is the stream's gen. Guarded by stream.mu.
	lastQ   int
	lastGen uint64
}

// contains reports whether key is in the watcher's range.
func (w *watcher) contains(key []byte) bool {
	return rangeContains(w.key, w.end, key)
}

func rangeContains(start, end, key []byte) bool {
	if end == nil {
		return bytes.Equal(key, start)
	}
	if bytes.Compare(key, start) < 0 {
		return false
	}
	return len(end) == 0 || bytes.Compare(key, end) < 0
}

// filtered reports whether the watcher's filters drop ev.
func (w *watcher) filtered(ev *mvccpb.Event) bool {
	switch ev.Type {
	case mvccpb.Event_PUT:
		return w.noPut
	case mvccpb.Event_DELETE:
		return w.noDelete
	}
	return false
}

// pick returns the events of evs (all of one fan-out or replay pass, in
// revision order, already in the watcher's range) that the watcher takes:
// at or past nextRev and not filtered. It returns evs itself when it takes
// them all, so a group of identical watchers shares one slice.
func (w *watcher) pick(evs []*mvccpb.Event) []*mvccpb.Event {
	if len(evs) == 0 {
		return nil
	}
	if !w.noPut && !w.noDelete && evs[0].Kv.ModRevision >= w.nextRev {
		return evs
	}
	var out []*mvccpb.Event
	for _, ev := range evs {
		if ev.Kv.ModRevision >= w.nextRev && !w.filtered(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// watchGroup is the set of synced watchers on one identical key range:
// matching an event is one lookup per distinct range, however many
// watchers share it (the common case: many clients watching one prefix).
type watchGroup struct {
	key, end []byte
	members  []*watcher // a slice: the fan-out walks it for every commit
	pos      int        // index in watchIndex.ranges (range groups only)

	// matched collects the events of one fan-out pass that fall in the
	// range. It is handed to the members' responses, so each pass starts a
	// new slice rather than reusing it.
	matched []*mvccpb.Event
}

// watchIndex finds the synced watchers of an event's key: single-key
// groups by map lookup, range groups by a scan over the distinct ranges.
//
// NB: the range scan is linear in the number of distinct ranges. Watchers
// on the same range share a group, so this stays cheap for the usual
// "many watchers, few prefixes"; an interval tree would be the next step
// for many distinct ranges.
type watchIndex struct {
	keys   map[string]*watchGroup
	ranges []*watchGroup
	byID   map[string]*watchGroup // range groups by rangeID
	size   int
}

func newWatchIndex() watchIndex {
	return watchIndex{keys: map[string]*watchGroup{}, byID: map[string]*watchGroup{}}
}

// rangeID identifies a key range: length-prefixed key, then end, then
// whether end is nil.
func rangeID(key, end []byte) string {
	b := binary.AppendUvarint(nil, uint64(len(key)))
	b = append(b, key...)
	b = append(b, end...)
	if end == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
	}
	return string(b)
}

func (x *watchIndex) add(w *watcher) {
	x.size++
	if w.end == nil {
		g := x.keys[string(w.key)]
		if g == nil {
			g = &watchGroup{key: w.key}
			x.keys[string(w.key)] = g
		}
		g.addMember(w)
		return
	}
	id := rangeID(w.key, w.end)
	g := x.byID[id]
	if g == nil {
		g = &watchGroup{key: w.key, end: w.end, pos: len(x.ranges)}
		x.byID[id] = g
		x.ranges = append(x.ranges, g)
	}
	g.addMember(w)
}

func (g *watchGroup) addMember(w *watcher) {
	w.group, w.groupPos = g, len(g.members)
	g.members = append(g.members, w)
}

func (g *watchGroup) removeMember(w *watcher) {
	last := g.members[len(g.members)-1]
	g.members[w.groupPos] = last
	last.groupPos = w.groupPos
	g.members[len(g.members)-1] = nil
	g.members = g.members[:len(g.members)-1]
	w.group = nil
}

func (x *watchIndex) remove(w *watcher) {
	g := w.group
	if g == nil {
		return
	}
	x.size--
	g.removeMember(w)
	if len(g.members) > 0 {
		return
	}
	if g.end == nil {
		delete(x.keys, string(g.key))
		return
	}
	delete(x.byID, rangeID(g.key, g.end))
	last := x.ranges[len(x.ranges)-1]
	x.ranges[g.pos] = last
	last.pos = g.pos
	x.ranges = x.ranges[:len(x.ranges)-1]
}

// match adds ev to the matched list of every group whose range holds its
// key, appending groups seen for the first time in this pass to touched.
func (x *watchIndex) match(ev *mvccpb.Event, touched []*watchGroup) []*watchGroup {
	key := ev.Kv.Key
	if g := x.keys[string(key)]; g != nil {
		if len(g.matched) == 0 {
			touched = append(touched, g)
		}
		g.matched = append(g.matched, ev)
	}
	for _, g := range x.ranges {
		if !rangeContains(g.key, g.end, key) {
			continue
		}
		if len(g.matched) == 0 {
			touched = append(touched, g)
		}
		g.matched = append(g.matched, ev)
	}
	return touched
}

// each calls fn for every synced watcher.
func (x *watchIndex) each(fn func(w *watcher)) {
	for _, g := range x.keys {
		for _, w := range g.members {
			fn(w)
		}
	}
	for _, g := range x.ranges {
		for _, w := range g.members {
			fn(w)
		}
	}
}
