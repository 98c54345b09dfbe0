package mvcc

import "go.etcd.io/etcd/api/v3/mvccpb"

// EventsFor returns the events as a watch should see them: with PrevKv only
// if the watch asked for it (keep). Events are shared by every watch of a
// revision, so they are copied, never changed; a slice with no PrevKv to
// drop is returned as it is. Both front ends use it.
func EventsFor(evs []*mvccpb.Event, keep bool) []*mvccpb.Event {
	if keep {
		return evs
	}
	var out []*mvccpb.Event
	for i, ev := range evs {
		if ev.PrevKv == nil {
			if out != nil {
				out[i] = ev
			}
			continue
		}
		if out == nil {
			out = make([]*mvccpb.Event, len(evs))
			copy(out, evs[:i])
		}
		out[i] = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
	}
	if out == nil {
		return evs
	}
	return out
}
