package rocksdb

import (
	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/native"
)

// snapshot is a RocksDB snapshot; Gets and iterators through it read with
// read options that carry it.
type snapshot struct {
	db *DB
	// n is the native snapshot; nil once closed (by Close or by DB.Close).
	// Guarded by db.mu: written under Lock by DB.Close, or under RLock by
	// Close (a snapshot is not shared between goroutines while closing).
	n *native.Snapshot
}

var _ engine.Snapshot = (*snapshot)(nil)

func (db *DB) newSnapshot() *snapshot {
	s := &snapshot{db: db}
	if db.acquire() != nil {
		return s // closed engine: every call returns ErrClosed
	}
	defer db.mu.RUnlock()
	s.n = db.n.NewSnapshot()
	db.live.Lock()
	db.live.snaps[s] = struct{}{}
	db.live.Unlock()
	return s
}

// Get implements engine.Reader.
func (s *snapshot) Get(ks engine.Keyspace, key []byte) ([]byte, error) {
	return s.db.get(ks, s, key)
}

// NewIterator implements engine.Reader.
func (s *snapshot) NewIterator(ks engine.Keyspace, opts engine.IterOptions) engine.Iterator {
	return s.db.newIterator(ks, s, opts)
}

// Close implements engine.Snapshot.
func (s *snapshot) Close() error {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	if s.n == nil || s.db.closed {
		return nil
	}
	s.db.live.Lock()
	delete(s.db.live.snaps, s)
	s.db.live.Unlock()
	s.release()
	return nil
}

// release frees the native snapshot.
// REQUIRES: db.mu held (RLock by the owner, or Lock by DB.Close).
func (s *snapshot) release() {
	if s.n != nil {
		s.db.n.ReleaseSnapshot(s.n)
		s.n = nil
	}
}
