package rocksdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/engine"
)

// testConfig is DefaultConfig with small buffers, so tests stay light.
func testConfig() Config {
	c := DefaultConfig()
	c.BlockCacheBytes = 8 << 20
	c.WriteBufferBytes = 4 << 20
	c.MaxBackgroundJobs = 2
	return c
}

func openTest(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, testConfig())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func put(t *testing.T, db *DB, ks engine.Keyspace, kv ...string) {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	for i := 0; i+1 < len(kv); i += 2 {
		b.Put(ks, []byte(kv[i]), []byte(kv[i+1]))
	}
	require.NoError(t, b.Commit(false))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"default", func(*Config) {}, ""},
		{"zstd", func(c *Config) { c.Compression = "zstd" }, ""},
		{"none", func(c *Config) { c.Compression = "none" }, ""},
		{"unknown compression", func(c *Config) { c.Compression = "x" }, `rocksdb: unknown compression "x"`},
		{"empty compression", func(c *Config) { c.Compression = "" }, `rocksdb: unknown compression ""`},
		{"tiny cache", func(c *Config) { c.BlockCacheBytes = 1000 }, "block cache of 1000 bytes"},
		{"negative bloom", func(c *Config) { c.BloomBitsPerKey = -1 }, "bloom bits per key -1"},
		{"bloom off", func(c *Config) { c.BloomBitsPerKey = 0 }, ""},
		{"no jobs", func(c *Config) { c.MaxBackgroundJobs = 0 }, "max background jobs 0"},
		{"tiny write buffer", func(c *Config) { c.WriteBufferBytes = 100 }, "write buffer of 100 bytes"},
		{"one write buffer", func(c *Config) { c.MaxWriteBufferNumber = 1 }, "max write buffer number 1"},
		{"huge bytes per sync", func(c *Config) { c.BytesPerSync = 2 << 30 }, "bytes per sync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			_, err = Open(t.TempDir(), c)
			require.ErrorContains(t, err, tt.want, "Open validates the config")
		})
	}
}

// The table options every column family gets, as RocksDB wrote them into
// its OPTIONS file: partitioned index and filters with pinned top levels,
// cached at high priority.
func TestTableOptionsPartitioned(t *testing.T) {
	t.Logf("Step 1: open a database")
	dir := t.TempDir()
	db := openTest(t, dir)
	defer db.Close()

	t.Logf("Step 2: read the OPTIONS file RocksDB wrote")
	files, err := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	b, err := os.ReadFile(files[len(files)-1])
	require.NoError(t, err)
	opts := string(b)

	t.Logf("Step 3: each column family's table has the partitioned settings")
	for _, want := range []string{"index_type=kTwoLevelIndexSearch", "partition_filters=true",
		"pin_top_level_index_and_filter=true", "cache_index_and_filter_blocks_with_high_priority=true",
		"metadata_block_size=4096"} {
		require.Equal(t, int(engine.NumKeyspaces)+1, strings.Count(opts, want), "%s in every column family (and default)", want)
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	require.Equal(t, uint64(64<<20), c.BlockCacheBytes)
	require.Equal(t, 10, c.BloomBitsPerKey)
	require.Equal(t, "lz4", c.Compression)
	require.Equal(t, uint64(1<<20), c.BytesPerSync)
	require.Equal(t, 4, c.MaxBackgroundJobs)
	require.Equal(t, uint64(32<<20), c.WriteBufferBytes)
	require.Equal(t, 4, c.MaxWriteBufferNumber)
	require.Equal(t, uint64(128<<20), c.TotalWriteBufferBytes)
	require.False(t, c.DisableFsync)
}

func TestVersion(t *testing.T) {
	require.Equal(t, "7.8.3", Version())
}

func TestOpen_ColumnFamilyPerKeyspace(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	require.Equal(t, []string{"data", "changelog", "raftlog", "meta", "default"}, db.n.ColumnFamilies())

	t.Logf("Step 1: the same key in every keyspace holds its own value")
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		put(t, db, ks, "k", ks.String())
	}
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		v, err := db.Get(ks, []byte("k"))
		require.NoError(t, err)
		require.Equal(t, ks.String(), string(v))
	}

	t.Logf("Step 2: reopen keeps the data and the column families")
	require.NoError(t, db.Close())
	db2 := openTest(t, dir)
	require.Equal(t, []string{"data", "changelog", "raftlog", "meta", "default"}, db2.n.ColumnFamilies())
	v, err := db2.Get(engine.Meta, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "meta", string(v))
}

func TestOpen_CreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	db := openTest(t, dir)
	require.Equal(t, dir, db.Dir())
	_, err := os.Stat(filepath.Join(dir, "CURRENT"))
	require.NoError(t, err)
}

func requireOneLineNamingDir(t *testing.T, err error, dir string) {
	t.Helper()
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), "rocksdb: open "+dir+": ")
}

func TestOpen_LockedInProcess(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)

	_, err := Open(dir, testConfig())
	require.ErrorIs(t, err, engine.ErrLocked)
	requireOneLineNamingDir(t, err, dir)
	t.Logf("error: %v", err)

	t.Logf("Step 2: after Close the directory opens again")
	require.NoError(t, db.Close())
	db2, err := Open(dir, testConfig())
	require.NoError(t, err)
	require.NoError(t, db2.Close())
}

// holdEnv makes the test binary, re-executed by TestOpen_LockedByOtherProcess,
// open the directory it names, report "open", and wait for stdin to close.
const holdEnv = "METASTORE_ROCKSDB_TEST_HOLD_DIR"

func TestHelperHoldOpen(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("helper process for TestOpen_LockedByOtherProcess")
	}
	db, err := Open(dir, testConfig())
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("open")
	io.Copy(io.Discard, os.Stdin)
	db.Close()
	os.Exit(0)
}

func TestOpen_LockedByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	t.Logf("Step 1: starting a child process that holds %s open", dir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldOpen$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "open\n", line)

	t.Logf("Step 2: opening it here fails with ErrLocked")
	_, err = Open(dir, testConfig())
	require.ErrorIs(t, err, engine.ErrLocked)
	requireOneLineNamingDir(t, err, dir)
	t.Logf("error: %v", err)

	t.Logf("Step 3: once the child exits, it opens")
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait())
	db, err := Open(dir, testConfig())
	require.NoError(t, err)
	require.NoError(t, db.Close())
}

func TestOpen_Corrupt(t *testing.T) {
	manifest := func(dir string) string {
		cur, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
		if err != nil {
			panic(err)
		}
		return filepath.Join(dir, strings.TrimSpace(string(cur)))
	}
	tests := []struct {
		name    string
		corrupt func(dir string) error
	}{
		{"CURRENT without newline", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "CURRENT"), []byte("garbage"), 0o600)
		}},
		{"CURRENT naming a missing MANIFEST", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "CURRENT"), []byte("MANIFEST-999999\n"), 0o600)
		}},
		{"CURRENT binary junk", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "CURRENT"), bytes.Repeat([]byte{0xde, 0xad, 0x00, '\n'}, 64), 0o600)
		}},
		{"MANIFEST junk", func(dir string) error {
			return os.WriteFile(manifest(dir), bytes.Repeat([]byte("junk"), 1000), 0o600)
		}},
		{"MANIFEST empty", func(dir string) error {
			return os.WriteFile(manifest(dir), nil, 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := Open(dir, testConfig())
			require.NoError(t, err)
			put(t, db, engine.Data, "k", "v")
			require.NoError(t, db.Close())

			require.NoError(t, tt.corrupt(dir))
			_, err = Open(dir, testConfig())
			require.ErrorIs(t, err, engine.ErrCorrupt)
			require.False(t, errors.Is(err, engine.ErrLocked))
			requireOneLineNamingDir(t, err, dir)
			t.Logf("error: %v", err)
		})
	}
}

func TestOpen_NotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o600))
	_, err := Open(f, testConfig())
	require.Error(t, err)
	require.False(t, errors.Is(err, engine.ErrCorrupt) || errors.Is(err, engine.ErrLocked))
	require.Contains(t, err.Error(), f)
}

func TestClose_FreesOpenIteratorsAndSnapshots(t *testing.T) {
	db, err := Open(t.TempDir(), testConfig())
	require.NoError(t, err)
	put(t, db, engine.Data, "a", "1", "b", "2")
	b := db.NewBatch()
	b.Put(engine.Data, []byte("c"), []byte("3"))
	it := db.NewIterator(engine.Data, engine.IterOptions{})
	require.True(t, it.First())
	snap := db.NewSnapshot()
	sit := snap.NewIterator(engine.Data, engine.IterOptions{})

	t.Logf("Step 1: Close with an iterator, a snapshot and a batch still open")
	require.NoError(t, db.Close())
	require.NoError(t, db.Close(), "Close is idempotent")

	t.Logf("Step 2: every later call reports ErrClosed, nothing crashes")
	require.False(t, it.Next() && it.Next() && it.Next())
	require.False(t, it.First())
	require.ErrorIs(t, it.Err(), engine.ErrClosed)
	require.False(t, sit.First())
	require.ErrorIs(t, sit.Err(), engine.ErrClosed)
	_, err = snap.Get(engine.Data, []byte("a"))
	require.ErrorIs(t, err, engine.ErrClosed)
	require.ErrorIs(t, b.Commit(false), engine.ErrClosed)
	_, err = db.Get(engine.Data, []byte("a"))
	require.ErrorIs(t, err, engine.ErrClosed)
	_, err = db.ApproximateSize(engine.Data, nil, nil)
	require.ErrorIs(t, err, engine.ErrClosed)
	_, err = db.DiskSize()
	require.ErrorIs(t, err, engine.ErrClosed)
	require.ErrorIs(t, db.Checkpoint(filepath.Join(t.TempDir(), "cp")), engine.ErrClosed)
	require.ErrorIs(t, db.Compact(engine.Data, nil, nil), engine.ErrClosed)
	require.ErrorIs(t, db.Flush(), engine.ErrClosed)
	late := db.NewIterator(engine.Data, engine.IterOptions{})
	require.False(t, late.First())
	require.ErrorIs(t, late.Err(), engine.ErrClosed)
	_, err = db.NewSnapshot().Get(engine.Data, []byte("a"))
	require.ErrorIs(t, err, engine.ErrClosed)

	require.NoError(t, it.Close())
	require.NoError(t, sit.Close())
	require.NoError(t, snap.Close())
	require.NoError(t, b.Close())
	require.NoError(t, late.Close())
}

func TestBadKeyspace(t *testing.T) {
	db := openTest(t, t.TempDir())
	bad := engine.NumKeyspaces
	_, err := db.Get(bad, []byte("k"))
	require.ErrorIs(t, err, engine.ErrBadKeyspace)
	_, err = db.ApproximateSize(bad, nil, nil)
	require.ErrorIs(t, err, engine.ErrBadKeyspace)
	require.ErrorIs(t, db.Compact(bad, nil, nil), engine.ErrBadKeyspace)
	_, err = db.Property(bad, "rocksdb.estimate-num-keys")
	require.ErrorIs(t, err, engine.ErrBadKeyspace)
	it := db.NewIterator(bad, engine.IterOptions{})
	require.False(t, it.First())
	require.ErrorIs(t, it.Err(), engine.ErrBadKeyspace)
	require.NoError(t, it.Close())
}

func TestCheckpoint_Reopens(t *testing.T) {
	db := openTest(t, t.TempDir())
	put(t, db, engine.Data, "a", "1", "b", "2")
	put(t, db, engine.RaftLog, "r", "entry")

	cp := filepath.Join(t.TempDir(), "cp")
	t.Logf("Step 1: checkpoint into %s", cp)
	require.NoError(t, db.Checkpoint(cp))
	require.Error(t, db.Checkpoint(cp), "an existing directory is refused")

	t.Logf("Step 2: writes after the checkpoint stay out of it")
	put(t, db, engine.Data, "c", "3")

	t.Logf("Step 3: the copy opens while the source is still open, with exactly the data at checkpoint time")
	cdb := openTest(t, cp)
	var keys []string
	it := cdb.NewIterator(engine.Data, engine.IterOptions{})
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, string(it.Key())+"="+string(it.Value()))
	}
	require.NoError(t, it.Err())
	require.NoError(t, it.Close())
	require.Equal(t, []string{"a=1", "b=2"}, keys)
	v, err := cdb.Get(engine.RaftLog, []byte("r"))
	require.NoError(t, err)
	require.Equal(t, "entry", string(v))
}

func TestApproximateSizeAndDiskSize(t *testing.T) {
	db := openTest(t, t.TempDir())
	before, err := db.DiskSize()
	require.NoError(t, err)

	t.Logf("Step 1: ~1 MiB of incompressible values, still in the memtable")
	b := db.NewBatch()
	val := make([]byte, 1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1024; i++ {
		for j := range val {
			val[j] = byte(rng.Uint32())
		}
		b.Put(engine.Data, []byte(fmt.Sprintf("key-%05d", i)), val)
	}
	require.NoError(t, b.Commit(true))
	b.Close()
	mem, err := db.ApproximateSize(engine.Data, nil, nil)
	require.NoError(t, err)
	t.Logf("memtable estimate: %d", mem)
	require.GreaterOrEqual(t, mem, uint64(256<<10))
	none, err := db.ApproximateSize(engine.Meta, nil, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(0), none)

	t.Logf("Step 2: after a flush the SST files count")
	require.NoError(t, db.Flush())
	all, err := db.ApproximateSize(engine.Data, nil, nil)
	require.NoError(t, err)
	half, err := db.ApproximateSize(engine.Data, []byte("key-00512"), nil)
	require.NoError(t, err)
	t.Logf("sst estimate: all %d, upper half %d", all, half)
	require.GreaterOrEqual(t, all, uint64(768<<10))
	require.Less(t, half, all)
	empty, err := db.ApproximateSize(engine.Data, []byte("z"), []byte("a"))
	require.NoError(t, err)
	require.Equal(t, uint64(0), empty)

	after, err := db.DiskSize()
	require.NoError(t, err)
	t.Logf("disk size: %d -> %d", before, after)
	require.GreaterOrEqual(t, after, before+(768<<10))
}

func TestCompact_ReclaimsDeletedRange(t *testing.T) {
	db := openTest(t, t.TempDir())
	b := db.NewBatch()
	val := bytes.Repeat([]byte{0x5a}, 512)
	for i := 0; i < 2000; i++ {
		b.Put(engine.ChangeLog, []byte(fmt.Sprintf("%08d", i)), val)
	}
	require.NoError(t, b.Commit(false))
	require.NoError(t, db.Flush())
	full, err := db.Property(engine.ChangeLog, "rocksdb.estimate-live-data-size")
	require.NoError(t, err)

	b.Reset()
	b.DeleteRange(engine.ChangeLog, []byte("00000000"), []byte("00001900"))
	require.NoError(t, b.Commit(false))
	b.Close()
	require.NoError(t, db.Compact(engine.ChangeLog, nil, nil))
	left, err := db.Property(engine.ChangeLog, "rocksdb.estimate-live-data-size")
	require.NoError(t, err)
	keys, err := db.Property(engine.ChangeLog, "rocksdb.estimate-num-keys")
	require.NoError(t, err)
	t.Logf("live data %d -> %d bytes, %d keys", full, left, keys)
	require.Less(t, left, full/4)
	require.Equal(t, uint64(100), keys)
}

func TestClose_DuringCompact(t *testing.T) {
	db, err := Open(t.TempDir(), testConfig())
	require.NoError(t, err)
	val := bytes.Repeat([]byte("v"), 1000)
	for round := 0; round < 4; round++ {
		b := db.NewBatch()
		for i := 0; i < 1000; i++ {
			b.Put(engine.Data, []byte(fmt.Sprintf("%d-%06d", round, i)), val)
		}
		require.NoError(t, b.Commit(false))
		require.NoError(t, b.Close())
		require.NoError(t, db.Flush())
	}

	t.Logf("Step 1: Close while a full compaction may be running")
	done := make(chan error, 1)
	go func() { done <- db.Compact(engine.Data, nil, nil) }()
	require.NoError(t, db.Close())
	err = <-done
	if err != nil {
		require.ErrorIs(t, err, engine.ErrClosed, "Compact either ran (nil) or found the engine closed")
	}
}
