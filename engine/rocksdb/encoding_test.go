package rocksdb

import (
	"bytes"
	"testing"

	"github.com/linxGnu/grocksdb"
	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/engine"
)

// TestWriteBatchMatchesRocksDBEncoding checks native.WriteBatch against
// RocksDB itself: the same operations built through the C API (grocksdb's
// WriteBatch, which calls rocksdb_writebatch_*_cf) must give the same bytes.
func TestWriteBatchMatchesRocksDBEncoding(t *testing.T) {
	db := openTest(t, t.TempDir())
	b := db.NewBatch().(*batch)
	defer b.Close()

	gdb, cfs, closeG := openGrocksdb(t, t.TempDir())
	defer closeG()
	_ = gdb
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		require.Equal(t, db.cfIDs[ks], cfs[ks].ID(), "column family ids of %s", ks)
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()

	big := bytes.Repeat([]byte{0x00, 0xff}, 70000) // multi-byte varint lengths
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		b.Put(ks, []byte("key\x00"), []byte("value"))
		wb.PutCF(cfs[ks], []byte("key\x00"), []byte("value"))
		b.Put(ks, nil, nil)
		wb.PutCF(cfs[ks], nil, nil)
		b.Put(ks, big[:200], big)
		wb.PutCF(cfs[ks], big[:200], big)
		b.Delete(ks, []byte("gone"))
		wb.DeleteCF(cfs[ks], []byte("gone"))
		b.DeleteRange(ks, []byte("a"), []byte("b"))
		wb.DeleteRangeCF(cfs[ks], []byte("a"), []byte("b"))
	}
	require.Equal(t, wb.Count(), b.Count())
	require.True(t, bytes.Equal(wb.Data(), b.wb.Data()), "encodings differ")
}
