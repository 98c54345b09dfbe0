package raft

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/metastore/metastore/engine"
)

// A crash after the snapshot's batch (log replaced, restore marker written)
// but before the Applier restored: Start must redo the restore from the
// saved file before raft starts, then delete marker and file.
func TestStart_RedoesInterruptedSnapshotRestore(t *testing.T) {
	const snapIdx, snapTerm = 40, 2
	url := "http://127.0.0.1:1"
	id := MemberID([]string{url}, "tok", nil)

	t.Logf("Step 1: building a source state (20 keys, applied %d) and its snapshot file...", snapIdx)
	src := newKVApplier(t, mustMemory(t))
	b := src.eng.NewBatch()
	want := map[string]string{}
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("s%02d", i)
		b.Put(engine.Data, []byte(k), []byte("v"))
		want[k] = "v"
	}
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], snapIdx)
	b.Put(engine.Meta, keyApplied, idx[:])
	require.NoError(t, b.Commit(true))
	b.Close()

	cs := &raftpb.ConfState{Voters: []uint64{id}}
	md := &raftpb.SnapshotMetadata{Index: new(uint64(snapIdx)), Term: new(uint64(snapTerm)), ConfState: cs}
	msg := &raftpb.Message{Type: raftpb.MsgSnap.Enum(), To: new(id), From: new(uint64(99)), Snapshot: &raftpb.Snapshot{Metadata: md}}
	rec := &confRecord{Index: snapIdx, ConfState: mustMarshal(cs), Members: []*Member{{ID: id, Name: "m1", PeerURLs: []string{url}}}, ClusterID: 7}
	dataDir := t.TempDir()
	sf, err := createSnapFile(filepath.Join(dataDir, "snap"), snapTerm, snapIdx)
	require.NoError(t, err)
	h, err := encodeHeaderFrame(msg, rec)
	require.NoError(t, err)
	require.NoError(t, sf.writeFrame(h))
	cw := newChunkWriter(sf.writeFrame)
	require.NoError(t, src.WriteSnapshot(cw))
	require.NoError(t, cw.Close())
	path, err := sf.finish()
	require.NoError(t, err)

	t.Logf("Step 2: writing the log state a crash right after installSnapshot's batch leaves...")
	eng := mustMemory(t)
	lb := eng.NewBatch()
	lb.Put(engine.RaftLog, keySnapshot, mustMarshal(md))
	lb.Put(engine.RaftLog, keyHardState, mustMarshal(&raftpb.HardState{Term: new(uint64(snapTerm)), Commit: new(uint64(snapIdx))}))
	hist, _ := json.Marshal(confHistory{rec})
	lb.Put(engine.RaftLog, keyConf, hist)
	mk, _ := json.Marshal(&restoreMarker{Path: path, Index: snapIdx})
	lb.Put(engine.RaftLog, keyRestore, mk)
	require.NoError(t, lb.Commit(true))
	lb.Close()

	t.Logf("Step 3: starting the member; it must restore before raft runs...")
	applier := newKVApplier(t, eng)
	require.Zero(t, applier.AppliedIndex())
	tr := NewTransport(testLogger(t))
	t.Cleanup(tr.Close)
	n, err := Start(Config{Name: "m1", InitialCluster: map[string][]string{"m1": {url}}, ClusterToken: "tok",
		HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		LogEngine: eng, DataDir: dataDir, Logger: testLogger(t)}, applier, tr)
	require.NoError(t, err)
	t.Cleanup(n.Stop)
	require.Equal(t, int64(1), applier.restores.Load())
	require.Equal(t, uint64(snapIdx), applier.AppliedIndex())
	require.Equal(t, want, applier.dump(t))
	_, err = eng.Get(engine.RaftLog, keyRestore)
	require.ErrorIs(t, err, engine.ErrNotFound, "marker cleared")
	_, err = os.Stat(path)
	require.True(t, os.IsNotExist(err), "snapshot file removed")
	require.Equal(t, uint64(7), n.ClusterID())
	require.Equal(t, "m1", n.Members()[0].Name)

	t.Logf("Step 4: the member continues from the snapshot: elects itself and applies new writes...")
	require.Eventually(t, func() bool { return n.Leader() == id }, 5*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, n.Propose(ctx, []byte("new=1")))
	require.Eventually(t, func() bool { return applier.dump(t)["new"] == "1" }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, uint64(snapIdx+2), applier.AppliedIndex(), "empty entry of the new term + the write")
}
