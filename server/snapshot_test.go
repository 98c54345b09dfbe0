package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/engine"
)

// streamRecords parses a state snapshot stream into "keyspace:key" strings
// (keys quoted).
func streamRecords(t *testing.T, b []byte) []string {
	t.Helper()
	require.True(t, bytes.HasPrefix(b, []byte(snapMagic)))
	br := bufio.NewReader(bytes.NewReader(b[len(snapMagic):]))
	var out []string
	for {
		ks, err := br.ReadByte()
		require.NoError(t, err)
		if ks == snapEnd {
			return out
		}
		key, err := readChunk(br)
		require.NoError(t, err)
		_, err = readChunk(br)
		require.NoError(t, err)
		out = append(out, fmt.Sprintf("%d:%q", ks, key))
	}
}

func engineDump(t *testing.T, e engine.Engine, ks engine.Keyspace) []string {
	t.Helper()
	it := e.NewIterator(ks, engine.IterOptions{})
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, fmt.Sprintf("%q=%q", it.Key(), it.Value()))
	}
	require.NoError(t, it.Err())
	return out
}

// TestSnapshot_DataKeysTravelInFormat1: the state stream carries data keys
// in mvcc's key format 1, which members of every version read, and not the
// member's key format marker; a member restoring it ends with the keys and
// the marker it writes itself, on either engine.
func TestSnapshot_DataKeysTravelInFormat1(t *testing.T) {
	t.Logf("Step 1: a memory member with a key holding a zero run...")
	dir := t.TempDir()
	src, err := New(Config{Name: "a", DataDir: filepath.Join(dir, "a"), Engine: EngineMemory,
		InitialCluster: soloCluster(t)})
	require.NoError(t, err)
	t.Cleanup(func() { src.store.Close(); src.closeEngines() })
	a := src.store.NewApply()
	for _, k := range []string{"a\x00\x00b", "c"} {
		_, err := a.Put(&pb.PutRequest{Key: []byte(k), Value: []byte("v")})
		require.NoError(t, err)
	}
	_, err = a.Commit(false)
	require.NoError(t, err)

	t.Logf("Step 2: writing its state snapshot...")
	var stream bytes.Buffer
	require.NoError(t, applier{src}.WriteSnapshot(&stream))

	t.Logf("Step 3: verifying the stream's data keys and meta keys...")
	recs := streamRecords(t, stream.Bytes())
	rev := func(r int64) string { return string(binary.BigEndian.AppendUint64(nil, ^uint64(r))) }
	cur := src.store.Rev()
	require.Contains(t, recs, fmt.Sprintf("%d:%q", engine.Data, "a\x00\xFF\x00\xFFb\x00\x01"+rev(cur-1)))
	require.Contains(t, recs, fmt.Sprintf("%d:%q", engine.Data, "c\x00\x01"+rev(cur)))
	for _, r := range recs {
		require.NotContains(t, r, "key_format", "the marker stays with its member")
	}

	t.Logf("Step 4: restoring it into a RocksDB member...")
	dst, err := New(Config{Name: "b", DataDir: filepath.Join(dir, "b"), Engine: EngineRocksDB,
		InitialCluster: soloCluster(t)})
	require.NoError(t, err)
	t.Cleanup(func() { dst.store.Close(); dst.closeEngines() })
	require.NoError(t, applier{dst}.Restore(bytes.NewReader(stream.Bytes())))

	t.Logf("Step 5: verifying its keys are the source's, and its reads...")
	require.Equal(t, engineDump(t, src.eng, engine.Data), engineDump(t, dst.eng, engine.Data))
	require.Equal(t, engineDump(t, src.eng, engine.Meta), engineDump(t, dst.eng, engine.Meta))
	resp, err := dst.store.Range(&pb.RangeRequest{Key: []byte("a\x00\x00b")})
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, "v", string(resp.Kvs[0].Value))
	var again bytes.Buffer
	require.NoError(t, applier{dst}.WriteSnapshot(&again))
	require.Equal(t, recs, streamRecords(t, again.Bytes()), "the same stream back")
}
