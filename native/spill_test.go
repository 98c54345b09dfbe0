package native

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A batch larger than spillBytes moves to C memory while it is built
// (spill.cc): its encoding is byte for byte the one it would have had in
// Go memory, it writes atomically like any batch, it is checked the same
// way, and the Go heap does not grow with it.

// spillOps adds n puts with 1 KiB values (key "k<i>") and a delete of every
// tenth key to b, and to want, the encoding written by hand.
func spillOps(b *WriteBatch, want *[]byte, cf uint32, n int) {
	val := bytes.Repeat([]byte{'v'}, 1024)
	for i := 0; i < n; i++ {
		key := fmt.Appendf(nil, "k%07d", i)
		b.Put(cf, key, val)
		*want = append(*want, tagCFPut)
		*want = binary.AppendUvarint(*want, uint64(cf))
		*want = binary.AppendUvarint(*want, uint64(len(key)))
		*want = append(*want, key...)
		*want = binary.AppendUvarint(*want, uint64(len(val)))
		*want = append(*want, val...)
		if i%10 == 0 {
			b.Delete(cf, key)
			*want = append(*want, tagCFDelete)
			*want = binary.AppendUvarint(*want, uint64(cf))
			*want = binary.AppendUvarint(*want, uint64(len(key)))
			*want = append(*want, key...)
		}
	}
}

func TestWriteBatchSpillsToC(t *testing.T) {
	t.Logf("Step 1: prepare a database and a batch of 20,000 puts (about 20 MiB) and 2,000 deletes")
	db := openTest(t, "one")
	cf := db.ColumnFamilyID(0)
	var b WriteBatch
	defer b.Release()
	want := make([]byte, batchHeaderBytes)
	const n = 20000
	spillOps(&b, &want, cf, n)
	binary.LittleEndian.PutUint32(want[batchCountOffset:], n+n/10)

	t.Logf("Step 2: verify it spilled, its encoding is the hand-written one, and Size and Count agree")
	if !b.Spilled() {
		t.Fatalf("a %d-byte batch did not spill", b.Size())
	}
	if got := b.Data(); !bytes.Equal(got, want) {
		t.Fatalf("spilled encoding differs: %d bytes, want %d", len(got), len(want))
	}
	if b.Size() != len(want) || b.Count() != n+n/10 {
		t.Fatalf("size %d count %d, want %d and %d", b.Size(), b.Count(), len(want), n+n/10)
	}

	t.Logf("Step 3: write it; every put is there but the deleted keys; a second write is refused")
	if err := db.Write(&b, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 997 {
		key := fmt.Appendf(nil, "k%07d", i)
		_, found, err := db.Get(0, nil, key, nil)
		if err != nil || found != (i%10 != 0) {
			t.Fatalf("%s: found=%v err=%v", key, found, err)
		}
	}
	var ne *Error
	if err := db.Write(&b, true); !errors.As(err, &ne) || ne.Code != CodeInvalidArgument {
		t.Fatalf("second write of a spilled batch: %v", err)
	}

	t.Logf("Step 4: a spilled batch with a wrong count is refused whole, as a small one is")
	b.Reset()
	var ignored []byte
	spillOps(&b, &ignored, cf, 3000)
	b.Put(cf, []byte("after"), []byte("x"))
	b.count++
	if err := db.Write(&b, false); !errors.As(err, &ne) || ne.Code != CodeInvalidArgument {
		t.Fatalf("miscounted spilled batch: err = %v", err)
	}
	if _, found, _ := db.Get(0, nil, []byte("after"), nil); found {
		t.Fatal("the miscounted batch was applied")
	}
}

func TestWriteBatchSpillKeepsTheGoHeapSmall(t *testing.T) {
	t.Logf("Step 1: prepare; measure the Go heap")
	var b WriteBatch
	defer b.Release()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	t.Logf("Step 2: build a 64 MiB batch of 1 KiB values")
	val := bytes.Repeat([]byte{'v'}, 1024)
	key := make([]byte, 8)
	for i := 0; i < 64<<10; i++ {
		binary.BigEndian.PutUint64(key, uint64(i))
		b.Put(0, key, val)
	}

	t.Logf("Step 3: verify the Go heap holds a few spill buffers, not the batch (nor the copies of a growing slice)")
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Fatalf("building a %d MiB batch allocated %d MiB in the Go heap", b.Size()>>20, grown>>20)
	}
	t.Logf("batch %d MiB, Go allocations %d KiB", b.Size()>>20, (after.TotalAlloc-before.TotalAlloc)>>10)
}

// mmapProbeEnv marks the process TestOpenFixesTheMmapThreshold starts.
const mmapProbeEnv = "METASTORE_TEST_MMAP_PROBE"

// TestOpenFixesTheMmapThreshold: once a DB is open, C blocks of
// mmapThreshold bytes or more get mappings of their own even after a larger
// mapped block was freed, which otherwise raises glibc's threshold past them
// and leaves them in arenas that keep freed memory (a large batch's chunks,
// flushed memtables).
func TestOpenFixesTheMmapThreshold(t *testing.T) {
	if mmapThresholdFromEnv() {
		t.Skip("the environment sets glibc's mmap threshold, which Open then leaves alone")
	}

	if os.Getenv(mmapProbeEnv) != "1" {
		// Blocks other tests freed stay in glibc's arenas and would serve the
		// probe whatever the threshold: it runs in a process of its own.
		t.Logf("Step 0: rerun this test alone in a fresh process")
		cmd := exec.Command(os.Args[0], "-test.run=^TestOpenFixesTheMmapThreshold$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), mmapProbeEnv+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("the fresh process:\n%s", out)
		if err != nil {
			t.Fatalf("the fresh process failed: %v", err)
		}
		return
	}

	t.Logf("Step 1: open a DB")
	openTest(t, "default")

	t.Logf("Step 2: three times, free a 16 MiB block, then allocate %d bytes", mmapThreshold+4096)
	// The first 16 MiB block may come from an arena's free space; once one
	// was mapped and freed, glibc's own threshold would be 16 MiB.
	var mapped []bool
	for i := 0; i < 3; i++ {
		mapped = append(mapped, mappedAfterFree(16<<20, mmapThreshold+4096))
	}

	t.Logf("Step 3: each block was mapped on its own")
	if !mapped[0] || !mapped[1] || !mapped[2] {
		t.Fatalf("a %d-byte block came from an arena: mapped %v", mmapThreshold+4096, mapped)
	}

	t.Logf("Step 4: a smaller block still comes from an arena")
	if mappedAfterFree(0, 64<<10) {
		t.Fatalf("a 64 KiB block got a mapping of its own")
	}
}

// TestOpenSetsArenaBlocksBelowTheMmapThreshold: the memtables' arena
// blocks are smaller than the mmap threshold, so glibc serves them from
// its arenas (RocksDB records the option it applied in the OPTIONS file).
func TestOpenSetsArenaBlocksBelowTheMmapThreshold(t *testing.T) {
	t.Logf("Step 1: opening a database...")
	dir := t.TempDir()
	db, err := Open(dir, testOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	t.Logf("Step 2: reading the options RocksDB applied...")
	files, err := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no OPTIONS file in %s: %v", dir, err)
	}
	b, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("Step 3: verifying the arena block size...")
	want := fmt.Sprintf("arena_block_size=%d", arenaBlockBytes)
	if arenaBlockBytes >= mmapThreshold || !strings.Contains(string(b), want) {
		t.Fatalf("OPTIONS lacks %q below the mmap threshold %d", want, mmapThreshold)
	}
}
