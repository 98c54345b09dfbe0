package server

import (
	"bytes"
	"path/filepath"
	"testing"
)

// FuzzRestoreSnapshot: a state snapshot stream (what a member restores from
// a raft snapshot or `snapshot restore`) that is damaged anywhere is refused
// with an error by its header, record and trailer checks — never a panic,
// never applied as if whole.
func FuzzRestoreSnapshot(f *testing.F) {
	dir := f.TempDir()
	s, err := New(Config{Name: "a", DataDir: filepath.Join(dir, "m"), Engine: EngineMemory,
		InitialCluster: soloCluster(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.store.Close(); s.closeEngines() })
	var good bytes.Buffer
	if err := (applier{s}).WriteSnapshot(&good); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte(snapMagic))
	f.Add(append([]byte(snapMagic), 0, 3, 'k', 'e', 'y', 1, 'v', 0xff, 1, 0, 0, 0, 0))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := applier{s}.Restore(bytes.NewReader(b))
		if err == nil && !bytes.HasPrefix(b, []byte(snapMagic)) {
			t.Fatalf("a stream without the header was accepted")
		}
	})
}
