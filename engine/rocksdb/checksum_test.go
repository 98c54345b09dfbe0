package rocksdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metastore/metastore/engine"
)

// TestCorruptLogEntryIsDetected: the raft log lives in the RaftLog keyspace;
// a damaged byte in a flushed table file must surface as an error when the
// entry is read, never as a silently different entry. RocksDB's block
// checksums (CRC-32C, checked on every read) do this.
func TestCorruptLogEntryIsDetected(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	t.Logf("Step 1: writing 200 log entries and flushing them to a table file")
	b := db.NewBatch()
	val := bytes.Repeat([]byte("entry-payload-"), 64)
	for i := 0; i < 200; i++ {
		b.Put(engine.RaftLog, []byte(fmt.Sprintf("e%08d", i)), val)
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	t.Logf("Step 2: flipping bytes in the middle of every table file")
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table file after flush")
	}
	for _, p := range ssts {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(data) / 4; i < len(data)/4+64 && i < len(data); i++ {
			data[i] ^= 0xFF
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Logf("Step 3: reading every entry: the damage is reported, no entry comes back changed")
	db2, err := Open(dir, testConfig())
	if err != nil {
		if errors.Is(err, engine.ErrCorrupt) {
			return // refused at open: detected
		}
		t.Fatalf("open: %v", err)
	}
	defer db2.Close()
	detected := false
	for i := 0; i < 200; i++ {
		got, err := db2.Get(engine.RaftLog, []byte(fmt.Sprintf("e%08d", i)))
		if err != nil {
			if !errors.Is(err, engine.ErrNotFound) {
				detected = true
				if !strings.Contains(strings.ToLower(err.Error()), "corrupt") && !strings.Contains(strings.ToLower(err.Error()), "checksum") {
					t.Fatalf("entry %d: error does not say corruption: %v", i, err)
				}
				continue
			}
		}
		if err == nil && !bytes.Equal(got, val) {
			t.Fatalf("entry %d came back changed without an error", i)
		}
	}
	it := db2.NewIterator(engine.RaftLog, engine.IterOptions{})
	for ok := it.First(); ok; ok = it.Next() {
		if !bytes.Equal(it.Value(), val) {
			t.Fatalf("iteration returned a changed entry %q", it.Key())
		}
	}
	if it.Err() != nil {
		detected = true
	}
	it.Close()
	if !detected {
		t.Fatal("64 damaged bytes in the table file went unnoticed")
	}
}
