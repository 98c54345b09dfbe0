package mvcc

import (
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/engine"
)

// Events returns the events of revisions from..to (inclusive; to 0 means the
// current revision) in revision order, for watch replay. It stops after
// about limit events (limit 0: no limit) but never splits a revision: the
// events of one revision are returned together. next is the first revision
// not returned (to+1 when everything was). With withPrev each event carries
// the key's previous version. A from below the compaction revision fails
// with ErrCompacted.
func (s *Store) Events(from, to int64, limit int, withPrev bool) (events []*mvccpb.Event, next int64, err error) {
	cur := s.currentRev.Load()
	if to <= 0 || to > cur {
		to = cur
	}
	if from < 1 {
		from = 1
	}
	if from > to {
		return nil, from, nil
	}
	snap := s.eng.NewSnapshot()
	defer snap.Close()
	if from < s.compactRev.Load() {
		return nil, 0, ErrCompacted
	}
	it := snap.NewIterator(engine.ChangeLog, engine.IterOptions{
		Lower: changeKey(nil, from, 0), Upper: changeKey(nil, to+1, 0)})
	defer it.Close()
	next = to + 1
	lastRev := int64(0)
	for ok := it.First(); ok; ok = it.Next() {
		main, _, err := splitChangeKey(it.Key())
		if err != nil {
			return nil, 0, err
		}
		if limit > 0 && len(events) >= limit && main != lastRev {
			next = main
			break
		}
		lastRev = main
		ev, err := eventAt(snap, main, it.Value(), withPrev)
		if err != nil {
			return nil, 0, err
		}
		events = append(events, ev)
	}
	if err := it.Err(); err != nil {
		return nil, 0, err
	}
	return events, next, nil
}

func eventAt(r engine.Reader, rev int64, rec []byte, withPrev bool) (*mvccpb.Event, error) {
	if len(rec) == 0 {
		return nil, ErrCorruptRecord
	}
	key := append([]byte(nil), rec[1:]...)
	ev := &mvccpb.Event{}
	switch rec[0] {
	case kindPut:
		kv, err := latestKV(r, key, rev, true)
		if err != nil {
			return nil, err
		}
		if kv == nil || kv.ModRevision != rev {
			return nil, ErrCorruptRecord
		}
		ev.Type, ev.Kv = mvccpb.Event_PUT, kv
	case kindDelete:
		ev.Type, ev.Kv = mvccpb.Event_DELETE, &mvccpb.KeyValue{Key: key, ModRevision: rev}
	default:
		return nil, ErrCorruptRecord
	}
	if withPrev && rev > 1 {
		prev, err := latestKV(r, key, rev-1, true)
		if err != nil {
			return nil, err
		}
		ev.PrevKv = prev
	}
	return ev, nil
}
