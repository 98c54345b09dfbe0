package lease

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/metastore/metastore/engine"
)

// Lease records live in the Meta keyspace:
//
//	"lease/l/" bigEndian(uint64(id)) -> bigEndian(ttl) bigEndian(remaining)
//
// They are written through the apply batch, so they commit atomically with
// the state, and raft snapshots (which copy Meta) carry them. Attached keys
// are not recorded: each live key carries its lease in the keyspace, and the
// server re-attaches them after Load.

var recordPrefix = []byte("lease/l/")

// ErrCorruptRecord is wrapped when a stored lease record cannot be decoded.
var ErrCorruptRecord = errors.New("lease: corrupt lease record")

const recordLen = 16

func recordKey(id int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), recordPrefix...), uint64(id))
}

// REQUIRES: l.mu held (read or write).
func encodeRecord(ls *lease) []byte {
	b := make([]byte, 0, recordLen)
	b = binary.BigEndian.AppendUint64(b, uint64(ls.ttl))
	return binary.BigEndian.AppendUint64(b, uint64(ls.remaining))
}

// Load replaces every lease with the records stored in r. Leases have no
// keys afterwards (the caller attaches them) and, unless the lessor is
// primary, no deadline. Callers blocked in Renew on a lease that was
// expiring are released with ErrNotFound.
func (l *Lessor) Load(r engine.Reader) error {
	upper := append([]byte(nil), recordPrefix...)
	upper[len(upper)-1]++
	it := r.NewIterator(engine.Meta, engine.IterOptions{Lower: recordPrefix, Upper: upper})
	defer it.Close()
	leases := make(map[int64]*lease)
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != len(recordPrefix)+8 || len(v) != recordLen {
			return fmt.Errorf("%w: key %q, %d value bytes", ErrCorruptRecord, k, len(v))
		}
		id := int64(binary.BigEndian.Uint64(k[len(recordPrefix):]))
		ls := &lease{id: id, hidx: -1, keys: make(map[string]struct{}), revoked: make(chan struct{}),
			ttl:       max(int64(binary.BigEndian.Uint64(v[:8])), l.cfg.MinTTL),
			remaining: int64(binary.BigEndian.Uint64(v[8:]))}
		leases[id] = ls
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("lease: loading lease records: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, old := range l.mu.leases {
		close(old.revoked)
	}
	l.mu.leases = leases
	l.mu.due = nil
	l.mu.cps = nil
	if l.mu.primary {
		now := l.cfg.Now()
		for _, ls := range leases {
			l.refreshLocked(ls, now, 0, ls.baseTTL())
			l.scheduleCheckpointLocked(ls, now, ls.baseTTL())
		}
	}
	return nil
}
