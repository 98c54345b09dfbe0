package migrate

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/lease"
	"github.com/metastore/metastore/mvcc"
)

// leaseBatch is how many lease records go in one engine batch.
const leaseBatch = 10000

// Stats is what an import wrote.
type Stats struct {
	mvcc.ImportStats
	Leases int64
	// AuthUsers and AuthRoles were imported; AuthEnabled: auth is on.
	AuthUsers, AuthRoles int
	AuthEnabled          bool
}

// Import writes the snapshot's keyspace, leases and auth state into eng,
// which must be empty (see mvcc.NewImporter): the leases first, then every
// version of the key bucket in revision order, then the revisions, then
// the users, roles and auth flag (auth.go). The whole file is
// read in one bbolt read transaction; the engine gets bounded batches. On
// error the engine holds part of the data and must be thrown away
// (server.ImportDataDir removes the directory).
func (s *EtcdSnapshot) Import(eng engine.Engine) (Stats, error) {
	im, err := mvcc.NewImporter(eng, s.info.CompactRev)
	if err != nil {
		return Stats{}, err
	}
	defer im.Close()
	var st Stats
	err = s.view(func(tx *bolt.Tx) error {
		n, err := importLeases(eng, tx.Bucket(bucketLease))
		if err != nil {
			return err
		}
		st.Leases = n
		return tx.Bucket(bucketKey).ForEach(func(k, v []byte) error {
			r, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			iv := mvcc.ImportVersion{Key: r.kv.Key, Main: r.main, Sub: r.sub, Tombstone: r.tombstone}
			if !r.tombstone {
				iv.CreateRev, iv.Version, iv.Lease, iv.Value = r.kv.CreateRevision, r.kv.Version, r.kv.Lease, r.kv.Value
			}
			if err := im.Add(iv); err != nil {
				if errors.Is(err, mvcc.ErrImport) {
					return fmt.Errorf("%w: %w", ErrBadSnapshot, err)
				}
				return err
			}
			return nil
		})
	})
	if err != nil {
		return Stats{}, err
	}
	st.ImportStats, err = im.Finish(s.info.ScheduledCompactRev)
	if err != nil {
		return Stats{}, err
	}
	if err := importAuth(eng, s.auth); err != nil {
		return Stats{}, err
	}
	st.AuthUsers, st.AuthRoles, st.AuthEnabled = len(s.auth.users), len(s.auth.roles), s.auth.enabled
	if st.Rev != s.info.Revision {
		// Both follow etcd's rule; a difference is a bug here, not bad input.
		return Stats{}, fmt.Errorf("migrate: imported revision %d, the file says %d", st.Rev, s.info.Revision)
	}
	return st, nil
}

// importLeases writes every lease record of b (nil: none) in batches.
func importLeases(eng engine.Engine, b *bolt.Bucket) (int64, error) {
	if b == nil {
		return 0, nil
	}
	batch := eng.NewBatch()
	defer batch.Close()
	var n int64
	err := b.ForEach(func(k, v []byte) error {
		l, err := decodeLease(k, v)
		if err != nil {
			return err
		}
		if err := lease.ImportRecord(batch, l.ID, l.TTL, l.RemainingTTL); err != nil {
			return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
		n++
		if batch.Count() >= leaseBatch {
			if err := batch.Commit(false); err != nil {
				return err
			}
			batch.Reset()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if batch.Count() > 0 {
		if err := batch.Commit(false); err != nil {
			return 0, err
		}
	}
	return n, nil
}
