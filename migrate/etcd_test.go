package migrate

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// revKey is etcd's key bucket key of (main, sub), with the tombstone mark.
func revKey(main, sub int64, tomb bool) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(main))
	b = append(b, '_')
	b = binary.BigEndian.AppendUint64(b, uint64(sub))
	if tomb {
		b = append(b, 't')
	}
	return b
}

func leaseKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// leaseValue is a marshalled leasepb.Lease.
func leaseValue(id, ttl, remaining int64) []byte {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		v   int64
	}{{1, id}, {2, ttl}, {3, remaining}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f.v))
		}
	}
	return b
}

func kvValue(t *testing.T, kv *mvccpb.KeyValue) []byte {
	t.Helper()
	b, err := proto.Marshal(kv)
	require.NoError(t, err)
	return b
}

// etcdRec is one record of a synthetic etcd file.
type etcdRec struct {
	bucket string
	k, v   []byte
}

// writeEtcdFile writes a bbolt file with etcd's buckets (those named in
// buckets, created even when empty) and records.
func writeEtcdFile(t *testing.T, buckets []string, recs []etcdRec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "etcd.db")
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		for _, r := range recs {
			b, err := tx.CreateBucketIfNotExists([]byte(r.bucket))
			if err != nil {
				return err
			}
			if err := b.Put(r.k, r.v); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())
	return path
}

// appendHash makes path look like etcdctl's output: padded to 512*k bytes
// plus the SHA-256 of the padded content.
func appendHash(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	if pad := len(b) % 512; pad != 0 {
		b = append(b, make([]byte, 512-pad)...)
	}
	sum := sha256.Sum256(b)
	require.NoError(t, os.WriteFile(path, append(b, sum[:]...), 0o600))
}

var etcdBuckets = []string{"key", "meta", "lease", "members", "auth", "authUsers", "authRoles", "alarm", "cluster"}

func TestDecodeBucketKey(t *testing.T) {
	tests := []struct {
		name      string
		k         []byte
		main, sub int64
		tomb      bool
		wantErr   string
	}{
		{"put", revKey(3, 0, false), 3, 0, false, ""},
		{"txn op", revKey(9, 2, false), 9, 2, false, ""},
		{"tombstone", revKey(5, 1, true), 5, 1, true, ""},
		{"large revision", revKey(1<<40+7, 0, false), 1<<40 + 7, 0, false, ""},
		{"16 bytes", revKey(3, 0, false)[:16], 0, 0, false, "want 17 bytes"},
		{"19 bytes", append(revKey(3, 0, true), 't'), 0, 0, false, "want 17 bytes"},
		{"18 bytes not t", append(revKey(3, 0, false), 'x'), 0, 0, false, "want 17 bytes, or 18 ending in 't'"},
		{"no underscore", append(revKey(3, 0, false)[:8], append([]byte{'-'}, make([]byte, 8)...)...), 0, 0, false, "no '_'"},
		{"empty", nil, 0, 0, false, "want 17 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			main, sub, tomb, err := decodeBucketKey(tt.k)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrBadSnapshot)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []any{tt.main, tt.sub, tt.tomb}, []any{main, sub, tomb})
		})
	}
}

func TestDecodeRecord(t *testing.T) {
	put := kvValue(t, &mvccpb.KeyValue{Key: []byte("a"), CreateRevision: 2, ModRevision: 3, Version: 2,
		Value: []byte("v"), Lease: 7})
	r, err := decodeRecord(revKey(3, 0, false), put)
	require.NoError(t, err)
	require.Equal(t, int64(3), r.main)
	require.False(t, r.tombstone)
	require.Equal(t, []any{"a", "v", int64(2), int64(2), int64(7)},
		[]any{string(r.kv.Key), string(r.kv.Value), r.kv.CreateRevision, r.kv.Version, r.kv.Lease})

	// etcd's tombstone holds only the key.
	r, err = decodeRecord(revKey(5, 0, true), kvValue(t, &mvccpb.KeyValue{Key: []byte("a")}))
	require.NoError(t, err)
	require.True(t, r.tombstone)
	require.Equal(t, "a", string(r.kv.Key))

	for _, tc := range []struct {
		name    string
		k, v    []byte
		wantErr string
	}{
		{"mod revision differs", revKey(4, 0, false), put, `key "a" has mod revision 3`},
		{"not a KeyValue", revKey(3, 0, false), []byte{0xff, 0xff, 0xff}, "not an mvccpb.KeyValue"},
		{"empty key", revKey(3, 0, false), kvValue(t, &mvccpb.KeyValue{ModRevision: 3}), "empty key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeRecord(tc.k, tc.v)
			require.ErrorIs(t, err, ErrBadSnapshot)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestDecodeLease(t *testing.T) {
	withUnknown := leaseValue(9, 60, 0)
	withUnknown = protowire.AppendTag(withUnknown, 7, protowire.BytesType)
	withUnknown = protowire.AppendBytes(withUnknown, []byte("future field"))
	tests := []struct {
		name    string
		k, v    []byte
		want    etcdLease
		wantErr string
	}{
		{"ttl", leaseKey(0x390da214a25d3e0a), leaseValue(0x390da214a25d3e0a, 3600, 0), etcdLease{0x390da214a25d3e0a, 3600, 0}, ""},
		{"checkpointed", leaseKey(5), leaseValue(5, 600, 120), etcdLease{5, 600, 120}, ""},
		{"unknown field skipped", leaseKey(9), withUnknown, etcdLease{9, 60, 0}, ""},
		{"id mismatch", leaseKey(5), leaseValue(6, 60, 0), etcdLease{}, "has ID 0000000000000006"},
		{"short key", []byte{1, 2}, leaseValue(5, 60, 0), etcdLease{}, "want 8 bytes"},
		{"truncated varint", leaseKey(5), []byte{0x08, 0xff}, etcdLease{}, "lease 0000000000000005"},
		{"bad tag", leaseKey(5), []byte{0x00}, etcdLease{}, "lease 0000000000000005"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeLease(tt.k, tt.v)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrBadSnapshot)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestOpenEtcdSnapshot_BadInput: every kind of bad file is refused with one
// line naming the problem.
func TestOpenEtcdSnapshot_BadInput(t *testing.T) {
	dir := t.TempDir()
	notBolt := filepath.Join(dir, "not-bolt")
	require.NoError(t, os.WriteFile(notBolt, make([]byte, 64<<10), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	goodKV := kvValue(t, &mvccpb.KeyValue{Key: []byte("a"), CreateRevision: 2, ModRevision: 2, Version: 1})
	damaged := writeEtcdFile(t, etcdBuckets, []etcdRec{{"key", revKey(2, 0, false), goodKV}})
	appendHash(t, damaged)
	b, err := os.ReadFile(damaged)
	require.NoError(t, err)
	b[len(b)/2] ^= 0xff
	require.NoError(t, os.WriteFile(damaged, b, 0o600))

	tests := []struct {
		name, path, wantErr string
	}{
		{"missing file", filepath.Join(dir, "nope"), "no such file"},
		{"a directory", dir, "is not a regular file"},
		{"not bbolt", notBolt, "is not a bbolt database"},
		{"empty file", empty, "is not a bbolt database"},
		{"hash mismatch", damaged, "SHA-256 mismatch"},
		{"no key bucket", writeEtcdFile(t, []string{"meta", "lease"}, nil), `has no "key" bucket`},
		{"no meta bucket", writeEtcdFile(t, []string{"key", "lease"}, nil), `has no "meta" bucket`},
		{"bad compact revision", writeEtcdFile(t, etcdBuckets, []etcdRec{{"meta", []byte("finishedCompactRev"), []byte{0, 0, 0, 4}}}),
			`meta "finishedCompactRev" is not a revision`},
		{"bad consistent index", writeEtcdFile(t, etcdBuckets, []etcdRec{{"meta", []byte("consistent_index"), []byte{1}}}),
			`meta "consistent_index" has 1 bytes`},
		{"bad key record", writeEtcdFile(t, etcdBuckets, []etcdRec{{"key", []byte("k1"), goodKV}}), "key bucket key 6b31"},
		{"bad lease record", writeEtcdFile(t, etcdBuckets, []etcdRec{{"lease", leaseKey(5), leaseValue(6, 10, 0)}}), "has ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenEtcdSnapshot(tt.path)
			if s != nil {
				s.Close()
			}
			require.Error(t, err)
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), "\n")
			if tt.name != "missing file" {
				require.ErrorIs(t, err, ErrBadSnapshot)
			}
		})
	}

	t.Run("locked by a running etcd", func(t *testing.T) {
		path := writeEtcdFile(t, etcdBuckets, nil)
		db, err := bolt.Open(path, 0o600, nil) // holds the exclusive lock, as etcd does
		require.NoError(t, err)
		defer db.Close()
		start := time.Now()
		_, err = OpenEtcdSnapshot(path)
		require.ErrorIs(t, err, ErrBadSnapshot)
		require.ErrorContains(t, err, "is locked (is an etcd member running on it?)")
		require.Less(t, time.Since(start), 5*time.Second)
	})
}
