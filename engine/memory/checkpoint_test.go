package memory

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/metastore/metastore/engine"
)

// writeCheckpointFixture commits a few keys and checkpoints them into a new
// directory, returning the path of the checkpoint file.
func writeCheckpointFixture(t *testing.T) string {
	t.Helper()
	db, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.NewBatch()
	b.Put(engine.Data, []byte("a"), []byte("1"))
	b.Put(engine.Meta, []byte("b"), []byte("22"))
	b.Put(engine.RaftLog, []byte(""), []byte{})
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ck")
	if err := db.Checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, CheckpointFile)
}

func TestOpen_LoadsCheckpoint(t *testing.T) {
	file := writeCheckpointFixture(t)
	db, err := Open(filepath.Dir(file))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		ks        engine.Keyspace
		key, want string
	}{{engine.Data, "a", "1"}, {engine.Meta, "b", "22"}, {engine.RaftLog, "", ""}} {
		v, err := db.Get(c.ks, []byte(c.key))
		if err != nil || string(v) != c.want {
			t.Fatalf("Get(%v, %q) = %q, %v; want %q", c.ks, c.key, v, err, c.want)
		}
	}
	if n, _ := db.DiskSize(); n != 1+1+1+2 {
		t.Fatalf("DiskSize after load = %d, want 5", n)
	}
	if entries, _ := os.ReadDir(filepath.Dir(file)); len(entries) != 1 {
		t.Fatalf("checkpoint dir holds %d entries, want only %s", len(entries), CheckpointFile)
	}
}

func TestOpen_EmptyOrMissingDir(t *testing.T) {
	for _, dir := range []string{"", t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		db, err := Open(dir)
		if err != nil {
			t.Fatalf("Open(%q): %v", dir, err)
		}
		if n, _ := db.DiskSize(); n != 0 {
			t.Fatalf("Open(%q): DiskSize = %d, want 0", dir, n)
		}
		db.Close()
	}
}

func TestOpen_RejectsCorruptCheckpoint(t *testing.T) {
	tests := []struct {
		name   string
		mangle func(b []byte) []byte
	}{
		// Header 16 bytes, keyspace 0's count 8, key length 1: byte 25 is "a".
		{"flipped key byte", func(b []byte) []byte { b[25] ^= 0x03; return b }},
		{"flipped count byte", func(b []byte) []byte { b[len(b)-10] ^= 0x01; return b }},
		{"flipped checksum", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"future version", func(b []byte) []byte { b[8] = 9; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-7] }},
		{"trailing garbage", func(b []byte) []byte { return append(b, 0, 0, 0, 0) }},
		{"too short", func(b []byte) []byte { return b[:10] }},
		{"empty", func(b []byte) []byte { return nil }},
		{"huge key length", func(b []byte) []byte {
			// First record of keyspace 0 starts after the 16-byte header and
			// the 8-byte count: replace its length with a 10-byte varint.
			out := append([]byte{}, b[:24]...)
			out = append(out, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
			return append(out, b[25:]...)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := writeCheckpointFixture(t)
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, tc.mangle(raw), 0o644); err != nil {
				t.Fatal(err)
			}
			db, err := Open(filepath.Dir(file))
			if !errors.Is(err, engine.ErrCorrupt) {
				if db != nil {
					db.Close()
				}
				t.Fatalf("Open of corrupt checkpoint = %v, want engine.ErrCorrupt", err)
			}
			t.Logf("rejected: %v", err)
		})
	}
}
