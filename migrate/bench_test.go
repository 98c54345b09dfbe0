package migrate

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/engine/rocksdb"
)

// BenchmarkImport imports an etcd file of 100k versions (10k keys with 10
// versions each, 100-byte values) into RocksDB; it reports versions/s.
//
//	go test -run - -bench Import -benchtime 3x ./migrate/
func BenchmarkImport(b *testing.B) {
	const keys, versions = 10000, 10
	path := filepath.Join(b.TempDir(), "etcd.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	require.NoError(b, err)
	val := make([]byte, 100)
	rev := int64(1)
	require.NoError(b, db.Update(func(tx *bolt.Tx) error {
		for _, name := range etcdBuckets {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		kb := tx.Bucket([]byte("key"))
		for v := int64(1); v <= versions; v++ {
			for k := 0; k < keys; k++ {
				rev++
				kv, err := proto.Marshal(&mvccpb.KeyValue{Key: []byte(fmt.Sprintf("/registry/pods/ns/pod-%06d", k)),
					CreateRevision: 2 + int64(k), ModRevision: rev, Version: v, Value: val})
				if err != nil {
					return err
				}
				if err := kb.Put(revKey(rev, 0, false), kv); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	require.NoError(b, db.Close())
	snap, err := OpenEtcdSnapshot(path)
	require.NoError(b, err)
	defer snap.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e, err := rocksdb.Open(filepath.Join(b.TempDir(), fmt.Sprint(i)), rocksdb.DefaultConfig())
		require.NoError(b, err)
		b.StartTimer()
		st, err := snap.Import(e)
		require.NoError(b, err)
		require.Equal(b, int64(keys*versions), st.Versions)
		b.StopTimer()
		e.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(keys*versions*b.N)/b.Elapsed().Seconds(), "versions/s")
}
