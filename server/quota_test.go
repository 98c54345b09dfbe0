package server

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNew_RefusesToOpenOnAFullDisk: with less free space than the minimum
// (capped at openFreeMin) New fails with ErrDiskFull and says how much is
// free, before RocksDB is opened; with room, or with the check off, it
// opens.
func TestNew_RefusesToOpenOnAFullDisk(t *testing.T) {
	initial := soloCluster(t)
	cfg := func(free int64, minFree int64) Config {
		return Config{Name: "a", DataDir: filepath.Join(t.TempDir(), "m"), Engine: EngineRocksDB, DiskFreeMinBytes: minFree,
			InitialCluster: initial,
			freeSpace:      func(string) (int64, error) { return free, nil }}
	}
	open := func(c Config) error {
		s, err := New(c)
		if err == nil {
			s.store.Close()
			s.closeEngines()
		}
		return err
	}

	t.Logf("Step 1: 1 MiB free against the default minimum: refused, naming the free bytes")
	err := open(cfg(1<<20, 0))
	require.ErrorIs(t, err, ErrDiskFull)
	require.Contains(t, err.Error(), "has 1048576 bytes free, 67108864 are needed")

	t.Logf("Step 2: a smaller minimum is what is needed; below it, refused")
	require.ErrorIs(t, open(cfg(1<<20, 2<<20)), ErrDiskFull)
	require.NoError(t, open(cfg(1<<20, 512<<10)))

	t.Logf("Step 3: room enough, the check off, or free space unknown: it opens")
	require.NoError(t, open(cfg(100<<20, 0)))
	require.NoError(t, open(cfg(0, -1)))
	c := cfg(0, 0)
	c.freeSpace = func(string) (int64, error) { return 0, errors.New("statfs failed") }
	require.NoError(t, open(c))
}
