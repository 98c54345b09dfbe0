package memory

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/metastore/metastore/engine"
)

// CheckpointFile is the name of the single file Checkpoint writes into its
// directory and Open loads.
const CheckpointFile = "memory.checkpoint"

// Checkpoint file format, version 1 (all integers little-endian):
//
//	magic    [8]byte  "MSMEMCKP"
//	version  uint32   1
//	nks      uint32   number of keyspaces that follow
//	nks times:
//	  count  uint64   number of pairs
//	  count times: uvarint len(key), key, uvarint len(value), value
//	                  (keys strictly ascending)
//	crc      uint32   CRC-32C (Castagnoli) of every byte before it
//
// A loader rejects unknown versions, more keyspaces than it knows, keys out of
// order, lengths running past the file, trailing bytes and a bad CRC, all as
// engine.ErrCorrupt.
const (
	checkpointMagic   = "MSMEMCKP"
	checkpointVersion = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Checkpoint writes the state current at the call into dir (which must not
// exist; its parent is created if needed) as one checksummed file. The file
// is written under a temporary name, fsynced, renamed into place, and the
// directory fsynced, so dir never holds a partial checkpoint under the final
// name. Writers are not blocked while it runs.
func (db *DB) Checkpoint(dir string) error {
	if db.closed.Load() {
		return engine.ErrClosed
	}
	return checkpointState(dir, db.cur.Load())
}

// checkpointState writes st into dir as Checkpoint does.
func checkpointState(dir string, st *state) error {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("memory: checkpoint: %s: %w", dir, fs.ErrExist)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("memory: checkpoint: %w", err)
	}
	tmp := filepath.Join(dir, CheckpointFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("memory: checkpoint: %w", err)
	}
	err = writeCheckpoint(f, st)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, CheckpointFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("memory: checkpoint: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ckWriter writes a checkpoint or delta file: a buffered writer whose
// bytes are hashed for the CRC trailer, and counted.
type ckWriter struct {
	f       io.Writer
	w       *bufio.Writer
	crc     hash.Hash32
	n       int64
	scratch [binary.MaxVarintLen64]byte
}

// newCkWriter writes the header both formats share (magic, version, the
// number of keyspaces) followed by extra.
func newCkWriter(f io.Writer, magic string, version uint32, extra []byte) (*ckWriter, error) {
	c := &ckWriter{f: f, crc: crc32.New(crcTable)}
	c.w = bufio.NewWriterSize(io.MultiWriter(f, c.crc), 1<<16)
	var hdr [16]byte
	copy(hdr[:8], magic)
	binary.LittleEndian.PutUint32(hdr[8:], version)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(engine.NumKeyspaces))
	if err := c.raw(hdr[:]); err != nil {
		return nil, err
	}
	return c, c.raw(extra)
}

func (c *ckWriter) raw(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return err
}

func (c *ckWriter) count(n uint64) error {
	binary.LittleEndian.PutUint64(c.scratch[:8], n)
	return c.raw(c.scratch[:8])
}

// field writes b as uvarint len(b), b.
func (c *ckWriter) field(b []byte) error {
	n := binary.PutUvarint(c.scratch[:], uint64(len(b)))
	if err := c.raw(c.scratch[:n]); err != nil {
		return err
	}
	return c.raw(b)
}

// finish flushes and appends the CRC trailer.
func (c *ckWriter) finish() error {
	if err := c.w.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], c.crc.Sum32())
	_, err := c.f.Write(sum[:])
	c.n += 4
	return err
}

func writeCheckpoint(f io.Writer, st *state) error {
	c, err := newCkWriter(f, checkpointMagic, checkpointVersion, nil)
	if err != nil {
		return err
	}
	for _, tr := range st.trees {
		if err := c.count(uint64(tr.Len())); err != nil {
			return err
		}
		var werr error
		tr.Scan(func(it item) bool {
			if werr = c.field(it.key); werr == nil {
				werr = c.field(it.value)
			}
			return werr == nil
		})
		if werr != nil {
			return werr
		}
	}
	return c.finish()
}

// loadCheckpointDir loads dir/CheckpointFile; a missing file yields nil trees.
func loadCheckpointDir(dir string) ([engine.NumKeyspaces]*tree, [engine.NumKeyspaces]int64, error) {
	var trees [engine.NumKeyspaces]*tree
	var sizes [engine.NumKeyspaces]int64
	f, err := os.Open(filepath.Join(dir, CheckpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return trees, sizes, nil
	}
	if err != nil {
		return trees, sizes, fmt.Errorf("memory: open checkpoint: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return trees, sizes, fmt.Errorf("memory: open checkpoint: %w", err)
	}
	trees, sizes, err = readCheckpoint(f, fi.Size())
	if err != nil {
		return [engine.NumKeyspaces]*tree{}, [engine.NumKeyspaces]int64{}, err
	}
	return trees, sizes, nil
}

// ckReader reads the checkpoint body while hashing it and bounding every
// length by the bytes left, so a corrupt length cannot force a huge
// allocation.
type ckReader struct {
	r    *bufio.Reader
	crc  hash.Hash32
	left int64 // body bytes not yet read (excludes the CRC trailer)
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("memory: checkpoint: %s: %w", fmt.Sprintf(format, args...), engine.ErrCorrupt)
}

func (c *ckReader) full(b []byte) error {
	if int64(len(b)) > c.left {
		return corruptf("truncated")
	}
	if _, err := io.ReadFull(c.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return corruptf("truncated")
		}
		return fmt.Errorf("memory: checkpoint: %w", err)
	}
	c.left -= int64(len(b))
	c.crc.Write(b)
	return nil
}

func (c *ckReader) uvarint() (uint64, error) {
	var buf [binary.MaxVarintLen64]byte
	for i := range buf {
		if err := c.full(buf[i : i+1]); err != nil {
			return 0, err
		}
		if buf[i] < 0x80 {
			v, n := binary.Uvarint(buf[:i+1])
			if n <= 0 {
				break
			}
			return v, nil
		}
	}
	return 0, corruptf("bad varint")
}

func newCkReader(f io.Reader, size int64) *ckReader {
	return &ckReader{r: bufio.NewReaderSize(f, 1<<16), crc: crc32.New(crcTable), left: size - 4}
}

// header reads and checks the header newCkWriter wrote, with len(extra)
// bytes of extra, and returns the number of keyspaces.
func (c *ckReader) header(magic string, version uint32, extra []byte) (uint32, error) {
	var hdr [16]byte
	if err := c.full(hdr[:]); err != nil {
		return 0, err
	}
	if string(hdr[:8]) != magic {
		return 0, corruptf("bad magic %q", hdr[:8])
	}
	if v := binary.LittleEndian.Uint32(hdr[8:]); v != version {
		return 0, corruptf("unsupported version %d", v)
	}
	nks := binary.LittleEndian.Uint32(hdr[12:])
	if nks > uint32(engine.NumKeyspaces) {
		return 0, corruptf("%d keyspaces, this build knows %d", nks, engine.NumKeyspaces)
	}
	return nks, c.full(extra)
}

// trailer checks that the body ended where the CRC starts, and the CRC.
func (c *ckReader) trailer() error {
	if c.left != 0 {
		return corruptf("%d trailing bytes", c.left)
	}
	var sum [4]byte
	if _, err := io.ReadFull(c.r, sum[:]); err != nil {
		return corruptf("missing checksum")
	}
	if got, want := c.crc.Sum32(), binary.LittleEndian.Uint32(sum[:]); got != want {
		return corruptf("checksum mismatch: computed %08x, stored %08x", got, want)
	}
	return nil
}

func readCheckpoint(f io.Reader, size int64) ([engine.NumKeyspaces]*tree, [engine.NumKeyspaces]int64, error) {
	var trees [engine.NumKeyspaces]*tree
	var sizes [engine.NumKeyspaces]int64
	if size < 16+4 {
		return trees, sizes, corruptf("file too short (%d bytes)", size)
	}
	c := newCkReader(f, size)
	nks, err := c.header(checkpointMagic, checkpointVersion, nil)
	if err != nil {
		return trees, sizes, err
	}
	for ks := uint32(0); ks < nks; ks++ {
		tr := newTree()
		var cnt [8]byte
		if err := c.full(cnt[:]); err != nil {
			return trees, sizes, err
		}
		n := binary.LittleEndian.Uint64(cnt[:])
		var prev, kscratch []byte
		for j := uint64(0); j < n; j++ {
			klen, err := c.uvarint()
			if err != nil {
				return trees, sizes, err
			}
			if klen > uint64(c.left) {
				return trees, sizes, corruptf("key length %d past end of file", klen)
			}
			if uint64(cap(kscratch)) < klen {
				kscratch = make([]byte, klen)
			}
			key := kscratch[:klen]
			if err := c.full(key); err != nil {
				return trees, sizes, err
			}
			vlen, err := c.uvarint()
			if err != nil {
				return trees, sizes, err
			}
			if vlen > uint64(c.left) {
				return trees, sizes, corruptf("value length %d past end of file", vlen)
			}
			// Key and value share one allocation, as in a committed batch.
			buf := make([]byte, klen+vlen)
			copy(buf, key)
			if err := c.full(buf[klen:]); err != nil {
				return trees, sizes, err
			}
			if j > 0 && bytes.Compare(prev, key) >= 0 {
				return trees, sizes, corruptf("keys out of order in keyspace %d", ks)
			}
			it := item{key: buf[:klen:klen], value: buf[klen:]}
			tr.Load(it)
			prev = it.key
			sizes[ks] += int64(len(buf))
		}
		trees[ks] = tr
	}
	if err := c.trailer(); err != nil {
		return trees, sizes, err
	}
	return trees, sizes, nil
}
