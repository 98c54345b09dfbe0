package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestCheckpoint_BackgroundThenRestart: the memory engine's periodic
// checkpoint runs beside the apply loop; each one that lands advances the
// durable index, which never passes the applied one; a restart from the
// directory finds a state whose own applied index is at least the durable
// index, with every key the checkpoint covered.
func TestCheckpoint_BackgroundThenRestart(t *testing.T) {
	t.Logf("Step 1: a memory-engine member that checkpoints every 10 entries")
	h := newApplyHarness(t)
	h.s.checkpointEvery = 10
	dir := h.s.cfg.DataDir

	t.Logf("Step 2: apply 200 puts, one entry per batch, while checkpoints run")
	for i := 0; i < 200; i++ {
		h.ok(put(fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i), 0))
		require.LessOrEqual(t, h.s.durable.Load(), h.s.applied.Load(), "durable passed applied at entry %d", i+1)
	}
	require.Equal(t, uint64(200), h.s.applied.Load())

	t.Logf("Step 3: wait for the last background checkpoint; the durable index moved past the first ones")
	require.Eventually(t, func() bool { return !h.s.checkpointing.Load() }, 10*time.Second, 5*time.Millisecond)
	h.s.checkpoints.Wait()
	durable := h.s.durable.Load()
	require.GreaterOrEqual(t, durable, uint64(10), "no background checkpoint landed")
	require.LessOrEqual(t, durable, uint64(200))

	t.Logf("Step 4: reopen the directory (no final checkpoint): the state is at %d or later and holds those keys", durable)
	h.s.store.Close()
	h.s.closeEngines()
	s2, err := New(Config{Name: "a", DataDir: dir, Engine: EngineMemory,
		InitialCluster: soloCluster(t)})
	require.NoError(t, err)
	defer func() { s2.store.Close(); s2.closeEngines() }()
	applied := s2.applied.Load()
	require.GreaterOrEqual(t, applied, durable)
	require.LessOrEqual(t, applied, uint64(200))
	for i := 0; i < int(applied); i++ {
		resp, err := s2.store.Range(&pb.RangeRequest{Key: []byte(fmt.Sprintf("k%03d", i))})
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1, "key %d of %d applied", i, applied)
		require.Equal(t, fmt.Sprintf("v%d", i), string(resp.Kvs[0].Value))
	}
	t.Logf("reopened at applied index %d (durable was %d)", applied, durable)
}
