package migrate

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// ErrBadSnapshot is wrapped by every refusal of an etcd snapshot file.
var ErrBadSnapshot = errors.New("migrate: not a usable etcd snapshot")

// etcd's bucket and meta key names (server/storage/schema/bucket.go).
var (
	bucketKey       = []byte("key")
	bucketMeta      = []byte("meta")
	bucketLease     = []byte("lease")
	bucketAuth      = []byte("auth")
	bucketAuthUsers = []byte("authUsers")
	bucketAuthRoles = []byte("authRoles")

	metaFinishedCompact  = []byte("finishedCompactRev")
	metaScheduledCompact = []byte("scheduledCompactRev")
	metaConsistentIndex  = []byte("consistent_index")
	authEnabledKey       = []byte("authEnabled")
)

// etcd's revision encoding (server/storage/mvcc/revision.go).
const (
	revBytesLen       = 8 + 1 + 8
	markedRevBytesLen = revBytesLen + 1
	markTombstone     = 't'
)

// openTimeout bounds the wait for bbolt's file lock: a live etcd holds it.
const openTimeout = time.Second

// Info describes an etcd snapshot file.
type Info struct {
	// Revision is the newest revision in the key bucket, raised to the
	// compaction revision (etcd's own rule at restore); 1 when empty.
	Revision int64
	// CompactRev is the finished compaction; ScheduledCompactRev the one
	// asked for (above CompactRev when the file was saved mid-compaction).
	CompactRev          int64
	ScheduledCompactRev int64
	ConsistentIndex     uint64
	Versions            int64 // records in the key bucket
	Leases              int64 // records in the lease bucket
	// HashVerified: the file ended with a SHA-256 (etcdctl snapshot save)
	// and it matched; false for a plain database file.
	HashVerified bool
	// AuthEnabled, AuthUsers and AuthRoles describe etcd's auth state,
	// which Import carries over (auth.go).
	AuthEnabled          bool
	AuthUsers, AuthRoles int
	// Size is the file's size in bytes.
	Size int64
}

// EtcdSnapshot is an etcd snapshot file opened read-only.
type EtcdSnapshot struct {
	path string
	db   *bolt.DB
	info Info
	auth etcdAuth // decoded by scan; small
}

// OpenEtcdSnapshot opens the file at path, verifies its trailing SHA-256 if
// it has one, and reads what Info reports (every key and lease record is
// decoded once, so a file that opens imports).
func OpenEtcdSnapshot(path string) (*EtcdSnapshot, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrBadSnapshot, path)
	}
	verified, err := verifyHash(path, st.Size())
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: openTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is locked (is an etcd member running on it?)", ErrBadSnapshot, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a bbolt database: %v", ErrBadSnapshot, path, err)
	}
	s := &EtcdSnapshot{path: path, db: db, info: Info{HashVerified: verified, Size: st.Size()}}
	if err := s.scan(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Info describes the file.
func (s *EtcdSnapshot) Info() Info { return s.info }

// Close releases the file.
func (s *EtcdSnapshot) Close() error { return s.db.Close() }

// verifyHash checks the SHA-256 etcd appends to a snapshot it streams: as
// etcdutl, a file of 512*k+32 bytes has one.
func verifyHash(path string, size int64) (bool, error) {
	if size%512 != sha256.Size {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size-sha256.Size)); err != nil {
		return false, fmt.Errorf("migrate: reading %s: %w", path, err)
	}
	want := make([]byte, sha256.Size)
	if _, err := f.ReadAt(want, size-sha256.Size); err != nil {
		return false, fmt.Errorf("migrate: reading %s: %w", path, err)
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return false, fmt.Errorf("%w: %s: SHA-256 mismatch (truncated or damaged)", ErrBadSnapshot, path)
	}
	return true, nil
}

// scan checks the buckets, reads the meta records, decodes every key and
// lease record once and the auth records, filling s.info and s.auth.
func (s *EtcdSnapshot) scan() error {
	return s.view(func(tx *bolt.Tx) error {
		keys, meta := tx.Bucket(bucketKey), tx.Bucket(bucketMeta)
		for _, b := range []struct {
			name []byte
			b    *bolt.Bucket
		}{{bucketKey, keys}, {bucketMeta, meta}} {
			if b.b == nil {
				return fmt.Errorf("%w: %s has no %q bucket (not an etcd v3 data file)", ErrBadSnapshot, s.path, b.name)
			}
		}
		var err error
		if s.info.CompactRev, err = metaRev(meta, metaFinishedCompact); err != nil {
			return err
		}
		if s.info.ScheduledCompactRev, err = metaRev(meta, metaScheduledCompact); err != nil {
			return err
		}
		if v := meta.Get(metaConsistentIndex); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("%w: meta %q has %d bytes, want 8", ErrBadSnapshot, metaConsistentIndex, len(v))
			}
			s.info.ConsistentIndex = binary.BigEndian.Uint64(v)
		}
		last := int64(0)
		err = keys.ForEach(func(k, v []byte) error {
			r, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			last = r.main
			s.info.Versions++
			return nil
		})
		if err != nil {
			return err
		}
		s.info.Revision = max(last, s.info.CompactRev, s.info.ScheduledCompactRev, 1)
		if lb := tx.Bucket(bucketLease); lb != nil {
			err = lb.ForEach(func(k, v []byte) error {
				if _, err := decodeLease(k, v); err != nil {
					return err
				}
				s.info.Leases++
				return nil
			})
			if err != nil {
				return err
			}
		}
		if s.auth, err = readAuth(tx); err != nil {
			return err
		}
		s.info.AuthEnabled, s.info.AuthUsers, s.info.AuthRoles = s.auth.enabled, len(s.auth.users), len(s.auth.roles)
		return nil
	})
}

// view runs fn in a read transaction. bbolt trusts its pages: a damaged
// file without a hash to catch it can make it panic deep in a page walk,
// so a panic here is a bad input, reported as one.
func (s *EtcdSnapshot) view(fn func(tx *bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s is damaged: %v", ErrBadSnapshot, s.path, r)
		}
	}()
	return s.db.View(fn)
}

// metaRev decodes a revision stored in the meta bucket (0 when absent).
func metaRev(meta *bolt.Bucket, key []byte) (int64, error) {
	v := meta.Get(key)
	if v == nil {
		return 0, nil
	}
	main, _, tomb, err := decodeBucketKey(v)
	if err != nil || tomb || main < 0 {
		return 0, fmt.Errorf("%w: meta %q is not a revision (%x)", ErrBadSnapshot, key, v)
	}
	return main, nil
}

// decodeBucketKey splits a key bucket key: main and sub revision, and
// whether it marks a tombstone.
func decodeBucketKey(k []byte) (main, sub int64, tombstone bool, err error) {
	switch {
	case len(k) == markedRevBytesLen && k[revBytesLen] == markTombstone:
		tombstone = true
	case len(k) == revBytesLen:
	default:
		return 0, 0, false, fmt.Errorf("%w: key bucket key %x: want %d bytes, or %d ending in 't'",
			ErrBadSnapshot, k, revBytesLen, markedRevBytesLen)
	}
	if k[8] != '_' {
		return 0, 0, false, fmt.Errorf("%w: key bucket key %x: no '_' after the main revision", ErrBadSnapshot, k)
	}
	main = int64(binary.BigEndian.Uint64(k[:8]))
	sub = int64(binary.BigEndian.Uint64(k[9:revBytesLen]))
	return main, sub, tombstone, nil
}

// record is one decoded key bucket entry.
type record struct {
	main, sub int64
	tombstone bool
	kv        *mvccpb.KeyValue
}

func decodeRecord(k, v []byte) (record, error) {
	main, sub, tomb, err := decodeBucketKey(k)
	if err != nil {
		return record{}, err
	}
	kv := &mvccpb.KeyValue{}
	if err := proto.Unmarshal(v, kv); err != nil {
		return record{}, fmt.Errorf("%w: revision (%d, %d): value is not an mvccpb.KeyValue: %v", ErrBadSnapshot, main, sub, err)
	}
	if len(kv.Key) == 0 {
		return record{}, fmt.Errorf("%w: revision (%d, %d): empty key", ErrBadSnapshot, main, sub)
	}
	if !tomb && kv.ModRevision != main {
		return record{}, fmt.Errorf("%w: revision (%d, %d): key %q has mod revision %d",
			ErrBadSnapshot, main, sub, kv.Key, kv.ModRevision)
	}
	return record{main: main, sub: sub, tombstone: tomb, kv: kv}, nil
}

// etcdLease is a decoded leasepb.Lease.
type etcdLease struct {
	ID, TTL, RemainingTTL int64
}

// decodeLease decodes a lease bucket entry: leasepb.Lease has three int64
// fields, ID = 1, TTL = 2, RemainingTTL = 3 (varints). Unknown fields are
// skipped, as proto.Unmarshal would.
func decodeLease(k, v []byte) (etcdLease, error) {
	if len(k) != 8 {
		return etcdLease{}, fmt.Errorf("%w: lease bucket key %x: want 8 bytes", ErrBadSnapshot, k)
	}
	id := int64(binary.BigEndian.Uint64(k))
	var l etcdLease
	b := v
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return etcdLease{}, fmt.Errorf("%w: lease %016x: %v", ErrBadSnapshot, id, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.VarintType && num >= 1 && num <= 3 {
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return etcdLease{}, fmt.Errorf("%w: lease %016x: %v", ErrBadSnapshot, id, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 1:
				l.ID = int64(x)
			case 2:
				l.TTL = int64(x)
			case 3:
				l.RemainingTTL = int64(x)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return etcdLease{}, fmt.Errorf("%w: lease %016x: %v", ErrBadSnapshot, id, protowire.ParseError(n))
		}
		b = b[n:]
	}
	if l.ID != id {
		return etcdLease{}, fmt.Errorf("%w: lease record under %016x has ID %016x", ErrBadSnapshot, id, l.ID)
	}
	return l, nil
}
