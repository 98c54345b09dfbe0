package memory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/metastore/metastore/engine"
)

// Persist keeps a state directory (the directory Open loads) up to date
// without rewriting the whole state each time:
//
//	dir/memory.checkpoint        the base: a full checkpoint (Checkpoint's file)
//	dir/memory.delta.<n>         n = 1, 2, ...: what changed since the base
//	                             and the deltas before it
//
// Open loads the base, then applies the deltas in order. Persist(dir) writes
// one delta when dir holds what this DB last persisted there or loaded from
// it, and the deltas so far are smaller than half the base; otherwise it
// writes a new base into dir.tmp and swaps it in for dir (dir becomes
// dir.old for the moment of the swap; Open takes dir.old when dir is
// missing). A base never changes in place, so a delta is only ever read on
// top of the base and deltas it was computed against.
//
// A delta is the difference between two immutable states: the one dir
// holds, which the DB keeps until the next Persist, and the current one. A
// merge walk over both compares items by identity first (items are
// immutable and shared between states), so unchanged keys cost a
// comparison, not a write. The price is memory: the versions overwritten
// since the last Persist stay referenced until the next one.
//
// Delta file format, version 1 (integers little-endian):
//
//	magic    [8]byte  "MSMEMDLT"
//	version  uint32   1
//	nks      uint32   number of keyspaces that follow
//	seq      uint64   n, as in the file name
//	nks times:
//	  count  uint64   number of records
//	  count times: op byte (1 put, 0 delete), uvarint len(key), key,
//	               and for a put uvarint len(value), value
//	               (keys strictly ascending)
//	crc      uint32   CRC-32C of every byte before it
//
// Every file is written under a .tmp name, fsynced, renamed, and its
// directory fsynced. A delta that fails its checks, or a gap in the
// numbering, makes Open fail with engine.ErrCorrupt.
//
// Persist calls are serialised (pmu); commits may run concurrently.
func (db *DB) Persist(dir string) error {
	if db.closed.Load() {
		return engine.ErrClosed
	}
	db.pmu.Lock()
	defer db.pmu.Unlock()
	st := db.cur.Load()
	p := db.persisted
	db.persisted = nil // until this call succeeds: a failure forces a new base
	if p != nil && p.dir == dir && p.deltaBytes < p.baseBytes/2 && p.seq < maxDeltas {
		n, err := writeDelta(dir, p.seq+1, p.st, st)
		if err != nil {
			return err
		}
		p.st, p.seq, p.deltaBytes = st, p.seq+1, p.deltaBytes+n
		db.persisted = p
		return nil
	}
	n, err := writeBaseDir(dir, st)
	if err != nil {
		return err
	}
	db.persisted = &persisted{dir: dir, st: st, baseBytes: n}
	return nil
}

// maxDeltas bounds the delta files on top of one base.
const maxDeltas = 1000

// persisted is what a state directory holds, as far as this DB knows.
type persisted struct {
	dir        string
	st         *state // the state the directory holds
	seq        uint64 // number of its last delta (0: none)
	baseBytes  int64  // size of its base file
	deltaBytes int64  // total size of its deltas
}

const (
	deltaPrefix  = "memory.delta."
	deltaMagic   = "MSMEMDLT"
	deltaVersion = 1
	opRecDelete  = 0
	opRecPut     = 1
)

func deltaName(seq uint64) string { return deltaPrefix + strconv.FormatUint(seq, 10) }

// writeBaseDir writes st as a new base in dir.tmp and swaps it in for dir.
// It returns the base file's size.
func writeBaseDir(dir string, st *state) (int64, error) {
	tmp, old := dir+".tmp", dir+".old"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, fmt.Errorf("memory: persist: %w", err)
	}
	if err := checkpointState(tmp, st); err != nil {
		return 0, err
	}
	fi, err := os.Stat(filepath.Join(tmp, CheckpointFile))
	if err != nil {
		return 0, fmt.Errorf("memory: persist: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return 0, fmt.Errorf("memory: persist: %w", err)
	}
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return 0, fmt.Errorf("memory: persist: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return 0, fmt.Errorf("memory: persist: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return 0, fmt.Errorf("memory: persist: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return 0, fmt.Errorf("memory: persist: %w", err)
	}
	return fi.Size(), nil
}

// writeDelta writes the changes from prev to cur as delta seq in dir and
// returns its size.
func writeDelta(dir string, seq uint64, prev, cur *state) (int64, error) {
	name := filepath.Join(dir, deltaName(seq))
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, fmt.Errorf("memory: persist: %w", err)
	}
	n, err := encodeDelta(f, seq, prev, cur)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("memory: persist: delta %d: %w", seq, err)
	}
	return n, nil
}

func encodeDelta(f io.Writer, seq uint64, prev, cur *state) (int64, error) {
	var seqb [8]byte
	binary.LittleEndian.PutUint64(seqb[:], seq)
	c, err := newCkWriter(f, deltaMagic, deltaVersion, seqb[:])
	if err != nil {
		return 0, err
	}
	// Records are gathered per keyspace first: the count comes before them.
	var recs []deltaRec
	for ks := range cur.trees {
		recs = diffTrees(recs[:0], prev.trees[ks], cur.trees[ks])
		if err := c.count(uint64(len(recs))); err != nil {
			return 0, err
		}
		for _, r := range recs {
			op := []byte{opRecDelete}
			if r.put {
				op[0] = opRecPut
			}
			if err := c.raw(op); err != nil {
				return 0, err
			}
			if err := c.field(r.it.key); err != nil {
				return 0, err
			}
			if r.put {
				if err := c.field(r.it.value); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := c.finish(); err != nil {
		return 0, err
	}
	return c.n, nil
}

// deltaRec is one record of a delta: a put of it, or a delete of it.key.
type deltaRec struct {
	it  item
	put bool
}

// diffTrees appends what turns a into b, in key order. A keyspace no
// commit touched keeps its published tree, so it costs nothing.
func diffTrees(recs []deltaRec, a, b *tree) []deltaRec {
	if a == b {
		return recs
	}
	ia, ib := a.Iter(), b.Iter()
	defer ia.Release()
	defer ib.Release()
	okA, okB := ia.First(), ib.First()
	for okA || okB {
		var c int
		switch {
		case !okA:
			c = 1
		case !okB:
			c = -1
		default:
			c = bytes.Compare(ia.Item().key, ib.Item().key)
		}
		switch {
		case c < 0: // only in a: deleted
			recs = append(recs, deltaRec{it: ia.Item()})
			okA = ia.Next()
		case c > 0: // only in b: added
			recs = append(recs, deltaRec{it: ib.Item(), put: true})
			okB = ib.Next()
		default:
			if !sameValue(ia.Item().value, ib.Item().value) {
				recs = append(recs, deltaRec{it: ib.Item(), put: true})
			}
			okA, okB = ia.Next(), ib.Next()
		}
	}
	return recs
}

// sameValue reports whether two values are equal, by identity first: a key
// no commit wrote since keeps its item, and so its value's memory.
func sameValue(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return bytes.Equal(a, b)
}

// loadStateDir loads dir's base and deltas into trees and sizes, after
// taking back dir.old if a swap left dir missing. It returns what dir
// holds, without its state (nil if dir has no base).
func loadStateDir(dir string, trees *[engine.NumKeyspaces]*tree, sizes *[engine.NumKeyspaces]int64) (*persisted, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(dir + ".old"); err == nil {
			if err := os.Rename(dir+".old", dir); err != nil {
				return nil, fmt.Errorf("memory: open: %w", err)
			}
		}
	}
	var err error
	if *trees, *sizes, err = loadCheckpointDir(dir); err != nil {
		return nil, err
	}
	fi, err := os.Stat(filepath.Join(dir, CheckpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		if seq, _, err := loadDeltas(dir, trees, sizes); err != nil || seq > 0 {
			return nil, errors.Join(err, fmt.Errorf("memory: open: %s has deltas but no %s: %w", dir, CheckpointFile, engine.ErrCorrupt))
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("memory: open: %w", err)
	}
	seq, dbytes, err := loadDeltas(dir, trees, sizes)
	if err != nil {
		return nil, err
	}
	return &persisted{dir: dir, seq: seq, baseBytes: fi.Size(), deltaBytes: dbytes}, nil
}

// loadDeltas applies dir's deltas, in order, to trees and sizes, and
// returns the number of the last one and their total size.
func loadDeltas(dir string, trees *[engine.NumKeyspaces]*tree, sizes *[engine.NumKeyspaces]int64) (uint64, int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("memory: open: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), deltaPrefix)
		if !ok || strings.HasSuffix(rest, ".tmp") {
			continue // a .tmp is a delta whose write did not finish: never part of the state
		}
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil || n == 0 {
			return 0, 0, fmt.Errorf("memory: open: unexpected file %s: %w", e.Name(), engine.ErrCorrupt)
		}
		seqs = append(seqs, n)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var total int64
	for i, n := range seqs {
		if n != uint64(i)+1 {
			return 0, 0, fmt.Errorf("memory: open: delta %d is missing (found %d): %w", i+1, n, engine.ErrCorrupt)
		}
		size, err := loadDelta(filepath.Join(dir, deltaName(n)), n, trees, sizes)
		if err != nil {
			return 0, 0, err
		}
		total += size
	}
	return uint64(len(seqs)), total, nil
}

func loadDelta(path string, seq uint64, trees *[engine.NumKeyspaces]*tree, sizes *[engine.NumKeyspaces]int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("memory: open: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("memory: open: %w", err)
	}
	if err := readDelta(f, fi.Size(), seq, trees, sizes); err != nil {
		return 0, fmt.Errorf("delta %d: %w", seq, err)
	}
	return fi.Size(), nil
}

// readDelta checks the whole delta before it changes anything: the records
// are collected, then applied once the checksum matched.
func readDelta(f io.Reader, size int64, seq uint64, trees *[engine.NumKeyspaces]*tree, sizes *[engine.NumKeyspaces]int64) error {
	if size < 24+4 {
		return corruptf("delta too short (%d bytes)", size)
	}
	c := newCkReader(f, size)
	var seqb [8]byte
	nks, err := c.header(deltaMagic, deltaVersion, seqb[:])
	if err != nil {
		return err
	}
	if got := binary.LittleEndian.Uint64(seqb[:]); got != seq {
		return corruptf("delta numbered %d in a file named %d", got, seq)
	}
	var recs [engine.NumKeyspaces][]deltaRec
	for ks := uint32(0); ks < nks; ks++ {
		var cnt [8]byte
		if err := c.full(cnt[:]); err != nil {
			return err
		}
		n := binary.LittleEndian.Uint64(cnt[:])
		var prev []byte
		for j := uint64(0); j < n; j++ {
			var op [1]byte
			if err := c.full(op[:]); err != nil {
				return err
			}
			if op[0] != opRecPut && op[0] != opRecDelete {
				return corruptf("unknown delta record %d", op[0])
			}
			klen, err := c.uvarint()
			if err != nil {
				return err
			}
			if klen > uint64(c.left) {
				return corruptf("key length %d past end of file", klen)
			}
			var vlen uint64
			buf := make([]byte, klen)
			if err := c.full(buf); err != nil {
				return err
			}
			if op[0] == opRecPut {
				if vlen, err = c.uvarint(); err != nil {
					return err
				}
				if vlen > uint64(c.left) {
					return corruptf("value length %d past end of file", vlen)
				}
				// Key and value share one allocation, as in a committed batch.
				buf = append(buf, make([]byte, vlen)...)
				if err := c.full(buf[klen:]); err != nil {
					return err
				}
			}
			key := buf[:klen:klen]
			if j > 0 && bytes.Compare(prev, key) >= 0 {
				return corruptf("keys out of order in keyspace %d", ks)
			}
			prev = key
			recs[ks] = append(recs[ks], deltaRec{it: item{key: key, value: buf[klen:]}, put: op[0] == opRecPut})
		}
	}
	if err := c.trailer(); err != nil {
		return err
	}
	for ks := range recs {
		if len(recs[ks]) > 0 && trees[ks] == nil {
			trees[ks] = newTree()
		}
		for _, r := range recs[ks] {
			prev, had := trees[ks].Delete(item{key: r.it.key})
			if had {
				sizes[ks] -= int64(len(prev.key) + len(prev.value))
			}
			if r.put {
				trees[ks].Set(r.it)
				sizes[ks] += int64(len(r.it.key) + len(r.it.value))
			}
		}
	}
	return nil
}
