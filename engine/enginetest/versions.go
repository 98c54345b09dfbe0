package enginetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/metastore/metastore/engine"
)

// versionCases cover IndexedBatch.SeekVersion over the engine: the lookup of
// one mvcc key's newest version that the apply path makes for every put.
var versionCases = []suiteCase{
	{"IndexedBatchSeekVersion", testSeekVersion},
}

// versionKey is a Data key as mvcc lays it out: a key with a terminator (no
// key's prefix is a prefix of another's), then the inverted revision.
func versionKey(i int, rev uint64) string {
	return string(binary.BigEndian.AppendUint64([]byte(fmt.Sprintf("vk%03d\x00\x01", i)), ^rev))
}

// wantVersion is SeekVersion's answer computed from the model: the smallest
// key at or after target among those of target's length and prefix.
func (m model) wantVersion(target string) string {
	prefix := target[:len(target)-8]
	best := ""
	for k := range m {
		if len(k) == len(target) && strings.HasPrefix(k, prefix) && k >= target && (best == "" || k < best) {
			best = k
		}
	}
	if best == "" {
		return "-"
	}
	return fmt.Sprintf("%x=%s", best, m[best])
}

// checkVersions compares SeekVersion with the model for keys 0..59 (the
// base holds 0..39) at several revisions.
func checkVersions(t *testing.T, b *engine.IndexedBatch, m model, what string) {
	t.Helper()
	for i := 0; i < 60; i++ {
		for _, rev := range []uint64{0, 3, 50, 120, 1 << 40} {
			target := versionKey(i, rev)
			got := "-"
			k, v, ok, err := b.SeekVersion([]byte(target))
			if err != nil {
				t.Fatalf("%s: key %d rev %d: %v", what, i, rev, err)
			}
			if ok {
				got = fmt.Sprintf("%x=%s", k, v)
			}
			if want := m.wantVersion(target); got != want {
				t.Fatalf("%s: key %d rev %d: got %s, want %s", what, i, rev, got, want)
			}
		}
	}
}

func testSeekVersion(t *testing.T, h *harness) {
	e, _ := h.open(t)
	rng := rand.New(rand.NewSource(11))

	t.Logf("Step 1: 40 keys with 1-4 versions each in the base, and neighbours in other keyspaces")
	m := model{}
	for i := 0; i < 40; i++ {
		for v := 0; v < 1+rng.Intn(4); v++ {
			m[versionKey(i, uint64(1+rng.Intn(100)))] = fmt.Sprintf("base%d-%d", i, v)
		}
	}
	putAll(t, e, engine.Data, m)
	putAll(t, e, engine.Meta, model{versionKey(45, 1): "meta"})
	b := engine.NewIndexedBatch(e)
	defer b.Close()
	checkVersions(t, b, m, "base only")

	t.Logf("Step 2: pending puts and version deletes between lookups; the batch keeps answering with them")
	for round := 0; round < 3; round++ {
		for j := 0; j < 10; j++ {
			i := rng.Intn(60)
			k := versionKey(i, uint64(101+round*10+j))
			b.Put(engine.Data, []byte(k), []byte(fmt.Sprintf("new%d", round)))
			m[k] = fmt.Sprintf("new%d", round)
		}
		for k := range m {
			if rng.Intn(10) == 0 {
				b.Delete(engine.Data, []byte(k))
				delete(m, k)
			}
		}
		checkVersions(t, b, m, fmt.Sprintf("pending writes, round %d", round))
	}

	t.Logf("Step 3: a pending DeleteRange over keys 10-19")
	lo, hi := versionKey(10, 1<<62)[:len(versionKey(10, 0))-8], versionKey(20, 0)[:len(versionKey(20, 0))-8]
	b.DeleteRange(engine.Data, []byte(lo), []byte(hi))
	m.deleteRange(lo, hi)
	checkVersions(t, b, m, "pending DeleteRange")

	t.Logf("Step 4: commit, then new base writes from elsewhere; after Reset the batch sees them")
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	checkVersions(t, b, m, "after commit, before reset")
	b.Reset()
	more := model{}
	for i := 40; i < 50; i++ {
		more[versionKey(i, uint64(200+i))] = "later"
	}
	putAll(t, e, engine.Data, more)
	for k, v := range more {
		m[k] = v
	}
	checkVersions(t, b, m, "after reset")

	t.Logf("Step 5: a short key is refused and a closed batch reports ErrClosed")
	if _, _, _, err := b.SeekVersion([]byte("short")); err == nil {
		t.Fatal("a key shorter than the version suffix was accepted")
	}
	b.Close()
	if _, _, _, err := b.SeekVersion([]byte(versionKey(1, 1))); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("closed batch: err %v, want ErrClosed", err)
	}
}
