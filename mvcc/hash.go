package mvcc

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"github.com/metastore/metastore/engine"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// HashKV hashes every version at or below rev (0: the current revision)
// that survives the compaction revision, in storage order. Two stores with
// the same history hash alike whatever their engine, and however far their
// background compaction has got, since the hash follows the logical state.
// It returns the hash, the revision hashed and the compaction revision.
func (s *Store) HashKV(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	cur := s.currentRev.Load()
	if rev > cur {
		return 0, 0, 0, ErrFutureRev
	}
	if rev == 0 {
		rev = cur
	}
	snap := s.eng.NewSnapshot()
	defer snap.Close()
	compactRev = s.compactRev.Load()
	// A negative revision hashes no version, as in etcd (it is neither
	// "current" nor compacted).
	if rev > 0 && rev < compactRev {
		return 0, 0, 0, ErrCompacted
	}
	h, err := hashVersions(snap, rev, compactRev)
	return h, rev, compactRev, err
}

// Hash hashes the whole keyspace at the current revision; it changes with
// every write.
func (s *Store) Hash() (hash uint32, rev int64, err error) {
	h, r, _, err := s.HashKV(0)
	return h, r, err
}

func hashVersions(r engine.Reader, rev, compactRev int64) (uint32, error) {
	it := r.NewIterator(engine.Data, engine.IterOptions{})
	defer it.Close()
	h := crc32.New(castagnoli)
	var cur, curV1 []byte
	var newestAtCompact int64 // newest revision <= compactRev of cur (0 until seen)
	var revBuf [8]byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		prefix, vrev, err := splitDataKey(k)
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(prefix, cur) {
			cur = append(cur[:0], prefix...)
			// Hashed in key format 1, as members before format 2 hash:
			// members of both kinds compare hashes in one cluster.
			if curV1, err = appendPrefixV1(curV1[:0], prefix); err != nil {
				return 0, err
			}
			newestAtCompact = 0
		}
		if vrev <= compactRev && newestAtCompact == 0 {
			newestAtCompact = vrev
		}
		if vrev > rev || compactedAway(vrev, isTombstone(it.Value()), newestAtCompact, compactRev) {
			continue
		}
		h.Write(curV1)
		binary.BigEndian.PutUint64(revBuf[:], uint64(vrev))
		h.Write(revBuf[:])
		h.Write(it.Value())
	}
	return h.Sum32(), it.Err()
}
