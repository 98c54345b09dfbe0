package raft

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/engine"
)

// Layout of the engine.RaftLog keyspace:
//
//	'e' + 8-byte big-endian index  -> raftpb.Entry (proto)
//	"m/hardstate"                  -> raftpb.HardState (proto)
//	"m/snapshot"                   -> raftpb.SnapshotMetadata of the compaction point (proto)
//	"m/conf"                       -> confHistory (JSON): membership + ConfState records
//	"m/restore"                    -> restoreMarker (JSON), present while a received
//	                                  snapshot is being restored into the Applier
//
// The log holds entries (snapshot.Index, lastIndex]. The term of
// snapshot.Index is kept in the snapshot metadata (raft's "dummy entry").
var (
	keyHardState = []byte("m/hardstate")
	keySnapshot  = []byte("m/snapshot")
	keyConf      = []byte("m/conf")
	keyRestore   = []byte("m/restore")

	entryLower = []byte{'e'}
	entryUpper = []byte{'f'}
)

func entryKey(i uint64) []byte {
	k := make([]byte, 9)
	k[0] = 'e'
	binary.BigEndian.PutUint64(k[1:], i)
	return k
}

// Tail cache bounds: raft reads the recent tail constantly (Term for
// matching, Entries for MsgApp to followers that keep up); older entries are
// read from the engine, which only a lagging follower needs.
const (
	cacheMaxEntries = 8192
	cacheMaxBytes   = 64 << 20
)

// logStore implements raft.Storage over an engine's RaftLog keyspace.
//
// Writers are the raft goroutine only (save, compact); readers are raft (on
// the raft goroutine) and Status callers. mu guards the cached state.
type logStore struct {
	eng engine.Engine

	mu struct {
		sync.Mutex
		hs    *raftpb.HardState
		snap  *raftpb.SnapshotMetadata // compaction point; Index 0 when none
		last  uint64                   // last index in the log
		cache []*raftpb.Entry          // contiguous tail ending at last
		bytes int                      // approximate bytes held by cache
	}

	// peerSnapshot, when set, builds the snapshot metadata raft sends to a
	// follower that needs one (see Node.peerSnapshot). Called on the raft
	// goroutine without s.mu held.
	peerSnapshot func() (*raftpb.Snapshot, error)

	// syncs counts synced engine commits (fsyncs), for benchmarks and tests.
	syncs atomic.Int64
	// onSync, when set, gets the duration of each synced commit (Config.OnLogSync).
	onSync func(time.Duration)
}

var _ raft.Storage = (*logStore)(nil)

// openLogStore loads the persistent state. conf is the stored confHistory
// (nil when the log is empty).
func openLogStore(eng engine.Engine) (*logStore, confHistory, error) {
	s := &logStore{eng: eng}
	s.mu.hs = &raftpb.HardState{}
	s.mu.snap = raftpb.EnsureSnapshotMetadata(nil)
	if b, err := eng.Get(engine.RaftLog, keyHardState); err == nil {
		if err := proto.Unmarshal(b, s.mu.hs); err != nil {
			return nil, nil, fmt.Errorf("raft: hard state: %w", err)
		}
	} else if !errors.Is(err, engine.ErrNotFound) {
		return nil, nil, fmt.Errorf("raft: read hard state: %w", err)
	}
	if b, err := eng.Get(engine.RaftLog, keySnapshot); err == nil {
		md := &raftpb.SnapshotMetadata{}
		if err := proto.Unmarshal(b, md); err != nil {
			return nil, nil, fmt.Errorf("raft: snapshot metadata: %w", err)
		}
		s.mu.snap = raftpb.EnsureSnapshotMetadata(md)
	} else if !errors.Is(err, engine.ErrNotFound) {
		return nil, nil, fmt.Errorf("raft: read snapshot metadata: %w", err)
	}
	var hist confHistory
	if b, err := eng.Get(engine.RaftLog, keyConf); err == nil {
		if err := json.Unmarshal(b, &hist); err != nil {
			return nil, nil, fmt.Errorf("raft: membership record: %w", err)
		}
	} else if !errors.Is(err, engine.ErrNotFound) {
		return nil, nil, fmt.Errorf("raft: read membership: %w", err)
	}
	// The last index is the largest entry key, or the snapshot index.
	s.mu.last = s.mu.snap.GetIndex()
	it := eng.NewIterator(engine.RaftLog, engine.IterOptions{Lower: entryLower, Upper: entryUpper, Reverse: true})
	if it.First() {
		s.mu.last = binary.BigEndian.Uint64(it.Key()[1:])
	}
	err := it.Err()
	it.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("raft: scan log: %w", err)
	}
	return s, hist, nil
}

// InitialState implements raft.Storage. The ConfState is the current one
// from the membership history (the raft goroutine keeps it in step).
func (s *logStore) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.Lock()
	hs := proto.Clone(s.mu.hs).(*raftpb.HardState)
	s.mu.Unlock()
	b, err := s.eng.Get(engine.RaftLog, keyConf)
	if errors.Is(err, engine.ErrNotFound) {
		return hs, &raftpb.ConfState{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var hist confHistory
	if err := json.Unmarshal(b, &hist); err != nil {
		return nil, nil, fmt.Errorf("raft: membership record: %w", err)
	}
	return hs, hist.current().confState(), nil
}

// FirstIndex implements raft.Storage.
func (s *logStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.snap.GetIndex() + 1, nil
}

// LastIndex implements raft.Storage.
func (s *logStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.last, nil
}

// Snapshot implements raft.Storage. It returns only metadata: the state
// itself is streamed from the Applier by the transport when a MsgSnap is
// sent (see snapshot.go).
func (s *logStore) Snapshot() (*raftpb.Snapshot, error) {
	if s.peerSnapshot != nil {
		return s.peerSnapshot()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &raftpb.Snapshot{Metadata: proto.Clone(s.mu.snap).(*raftpb.SnapshotMetadata)}, nil
}

// Term implements raft.Storage.
func (s *logStore) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snapIdx := s.mu.snap.GetIndex()
	switch {
	case i == snapIdx:
		return s.mu.snap.GetTerm(), nil
	case i < snapIdx:
		return 0, raft.ErrCompacted
	case i > s.mu.last:
		return 0, raft.ErrUnavailable
	}
	if e := s.cachedLocked(i); e != nil {
		return e.GetTerm(), nil
	}
	e, err := s.readEntry(i)
	if err != nil {
		return 0, err
	}
	return e.GetTerm(), nil
}

// Entries implements raft.Storage.
func (s *logStore) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lo <= s.mu.snap.GetIndex() {
		return nil, raft.ErrCompacted
	}
	if hi > s.mu.last+1 {
		return nil, fmt.Errorf("raft: entries [%d, %d) beyond last index %d: %w", lo, hi, s.mu.last, raft.ErrUnavailable)
	}
	var out []*raftpb.Entry
	var size uint64
	add := func(e *raftpb.Entry) bool {
		sz := uint64(proto.Size(e))
		if len(out) > 0 && size+sz > maxSize {
			return false
		}
		size += sz
		out = append(out, e)
		return true
	}
	cacheFirst := s.mu.last + 1
	if len(s.mu.cache) > 0 {
		cacheFirst = s.mu.cache[0].GetIndex()
	}
	if lo < cacheFirst {
		end := min(hi, cacheFirst)
		it := s.eng.NewIterator(engine.RaftLog, engine.IterOptions{Lower: entryKey(lo), Upper: entryKey(end)})
		next := lo
		for ok := it.First(); ok; ok = it.Next() {
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(it.Value(), e); err != nil {
				it.Close()
				return nil, fmt.Errorf("raft: entry %d: %w", next, err)
			}
			if e.GetIndex() != next {
				it.Close()
				return nil, fmt.Errorf("raft: log hole at %d (found %d): %w", next, e.GetIndex(), raft.ErrUnavailable)
			}
			next++
			if !add(e) {
				it.Close()
				return out, nil
			}
		}
		err := it.Err()
		it.Close()
		if err != nil {
			return nil, fmt.Errorf("raft: read log: %w", err)
		}
		if next != end {
			return nil, fmt.Errorf("raft: log hole at %d: %w", next, raft.ErrUnavailable)
		}
		lo = end
	}
	for i := lo; i < hi; i++ {
		if !add(s.mu.cache[i-cacheFirst]) {
			break
		}
	}
	return out, nil
}

// REQUIRES: s.mu held.
func (s *logStore) cachedLocked(i uint64) *raftpb.Entry {
	if len(s.mu.cache) == 0 {
		return nil
	}
	first := s.mu.cache[0].GetIndex()
	if i < first || i > s.mu.last {
		return nil
	}
	return s.mu.cache[i-first]
}

func (s *logStore) readEntry(i uint64) (*raftpb.Entry, error) {
	b, err := s.eng.Get(engine.RaftLog, entryKey(i))
	if errors.Is(err, engine.ErrNotFound) {
		return nil, raft.ErrUnavailable
	}
	if err != nil {
		return nil, fmt.Errorf("raft: read entry %d: %w", i, err)
	}
	e := &raftpb.Entry{}
	if err := proto.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("raft: entry %d: %w", i, err)
	}
	return e, nil
}

// logWrite is everything one Ready makes durable; save commits it as ONE
// engine batch, so all proposals of the Ready share a single fsync.
type logWrite struct {
	hs      *raftpb.HardState
	entries []*raftpb.Entry
	snap    *raftpb.SnapshotMetadata // a received snapshot replaces the log
	conf    confHistory              // new membership history, if it changed
	restore *restoreMarker           // set with snap: the Applier must restore
	sync    bool
}

func (w *logWrite) empty() bool {
	return w.hs == nil && len(w.entries) == 0 && w.snap == nil && w.conf == nil && w.restore == nil
}

// save persists w with one batch, then updates the cached state.
func (s *logStore) save(w *logWrite) error {
	if w.empty() {
		return nil
	}
	b := s.eng.NewBatch()
	defer b.Close()
	s.mu.Lock()
	last := s.mu.last
	s.mu.Unlock()
	if w.snap != nil {
		b.DeleteRange(engine.RaftLog, entryLower, entryUpper)
		b.Put(engine.RaftLog, keySnapshot, mustMarshal(w.snap))
		last = w.snap.GetIndex()
	}
	if w.restore != nil {
		v, _ := json.Marshal(w.restore)
		b.Put(engine.RaftLog, keyRestore, v)
	}
	if n := len(w.entries); n > 0 {
		first := w.entries[0].GetIndex()
		newLast := w.entries[n-1].GetIndex()
		if first > last+1 {
			return fmt.Errorf("raft: append at %d leaves a gap after last index %d", first, last)
		}
		// Entries at >= first are overwritten by the Puts; any old suffix
		// beyond the new last entry conflicts and goes.
		if newLast < last {
			b.DeleteRange(engine.RaftLog, entryKey(newLast+1), entryKey(last+1))
		}
		for _, e := range w.entries {
			b.Put(engine.RaftLog, entryKey(e.GetIndex()), mustMarshal(e))
		}
	}
	if w.hs != nil {
		b.Put(engine.RaftLog, keyHardState, mustMarshal(w.hs))
	}
	if w.conf != nil {
		v, err := json.Marshal(w.conf)
		if err != nil {
			return fmt.Errorf("raft: encode membership: %w", err)
		}
		b.Put(engine.RaftLog, keyConf, v)
	}
	sync := w.sync || w.snap != nil || w.conf != nil || len(w.entries) > 0
	start := time.Now()
	if err := b.Commit(sync); err != nil {
		return fmt.Errorf("raft: persist ready: %w", err)
	}
	if sync {
		s.syncs.Add(1)
		if s.onSync != nil {
			s.onSync(time.Since(start))
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if w.snap != nil {
		s.mu.snap = proto.Clone(w.snap).(*raftpb.SnapshotMetadata)
		s.mu.last = w.snap.GetIndex()
		s.mu.cache, s.mu.bytes = nil, 0
	}
	if w.hs != nil {
		s.mu.hs = proto.Clone(w.hs).(*raftpb.HardState)
	}
	if n := len(w.entries); n > 0 {
		first := w.entries[0].GetIndex()
		if len(s.mu.cache) > 0 && s.mu.cache[0].GetIndex() <= first {
			keep := int(first - s.mu.cache[0].GetIndex())
			for _, e := range s.mu.cache[keep:] {
				s.mu.bytes -= len(e.GetData())
			}
			// Entries copies out of the cache, so nobody else holds its
			// backing array: appending in place is safe.
			clear(s.mu.cache[keep:])
			s.mu.cache = s.mu.cache[:keep]
		} else {
			s.mu.cache, s.mu.bytes = nil, 0
		}
		for _, e := range w.entries {
			s.mu.bytes += len(e.GetData())
		}
		s.mu.cache = append(s.mu.cache, w.entries...)
		s.mu.last = w.entries[n-1].GetIndex()
		s.trimCacheLocked()
	}
	return nil
}

// REQUIRES: s.mu held.
func (s *logStore) trimCacheLocked() {
	drop := 0
	for len(s.mu.cache)-drop > cacheMaxEntries || (s.mu.bytes > cacheMaxBytes && len(s.mu.cache)-drop > 1) {
		s.mu.bytes -= len(s.mu.cache[drop].GetData())
		drop++
	}
	if drop > 0 {
		// Slide the window instead of copying the tail (a copy of up to
		// 8,192 pointers per Ready showed in profiles); the dropped slots
		// are cleared so the entries can be collected, and append moves
		// the window to a new array when it reaches the end of this one.
		clear(s.mu.cache[:drop])
		s.mu.cache = s.mu.cache[drop:]
	}
}

// compact makes index the new compaction point: entries up to and including
// it are deleted (one DeleteRange) and its term and ConfState kept in the
// snapshot metadata. conf is the pruned membership history to store with it.
func (s *logStore) compact(index uint64, cs *raftpb.ConfState, conf confHistory) error {
	term, err := s.Term(index)
	if err != nil {
		return fmt.Errorf("raft: compact to %d: %w", index, err)
	}
	md := &raftpb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: cs}
	b := s.eng.NewBatch()
	defer b.Close()
	b.Put(engine.RaftLog, keySnapshot, mustMarshal(md))
	b.DeleteRange(engine.RaftLog, entryLower, entryKey(index+1))
	v, err := json.Marshal(conf)
	if err != nil {
		return fmt.Errorf("raft: encode membership: %w", err)
	}
	b.Put(engine.RaftLog, keyConf, v)
	// NB: no fsync needed: losing this batch in a crash leaves the old,
	// equally valid compaction point, and the next synced Ready batch makes
	// it durable anyway (the engine's log is ordered).
	if err := b.Commit(false); err != nil {
		return fmt.Errorf("raft: compact to %d: %w", index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.snap = md
	drop := 0
	for drop < len(s.mu.cache) && s.mu.cache[drop].GetIndex() <= index {
		s.mu.bytes -= len(s.mu.cache[drop].GetData())
		drop++
	}
	if drop > 0 {
		// Slide the window instead of copying the tail (a copy of up to
		// 8,192 pointers per Ready showed in profiles); the dropped slots
		// are cleared so the entries can be collected, and append moves
		// the window to a new array when it reaches the end of this one.
		clear(s.mu.cache[:drop])
		s.mu.cache = s.mu.cache[drop:]
	}
	return nil
}

// snapshotIndex is the current compaction point.
func (s *logStore) snapshotIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.snap.GetIndex()
}

func (s *logStore) hardState() *raftpb.HardState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return proto.Clone(s.mu.hs).(*raftpb.HardState)
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("raft: %T does not encode: %v", m, err))
	}
	return b
}
