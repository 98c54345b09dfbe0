package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/mvcc"
)

// The state snapshot is a stream of records, engine-neutral so that a
// RocksDB member can catch up a memory member and back, and with data keys
// in mvcc's key format 1 (mvcc.AppendPortableStateKey) so that members of
// different versions can catch each other up:
//
//	magic "MSSNAP1\n"
//	record*: keyspace(1) uvarint(len key) key uvarint(len value) value
//	end:     0xFF uvarint(record count) crc32c(4, big endian, over all records)
//
// The raft transport adds its own chunk checksums; the trailer lets Restore
// refuse a stream that is truncated or damaged anywhere.

const snapMagic = "MSSNAP1\n"

// snapKeyspaces are the keyspaces that make up the state (the raft log is
// not part of it).
var snapKeyspaces = []engine.Keyspace{engine.Data, engine.ChangeLog, engine.Meta}

var errSnapshotFormat = errors.New("server: malformed state snapshot")

const snapEnd = 0xFF

func (ap applier) WriteSnapshot(w io.Writer) error {
	snap := ap.s.eng.NewSnapshot()
	defer snap.Close()
	return writeState(snap, w)
}

// writeState writes the state stream of snap to w.
func writeState(snap engine.Reader, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString(snapMagic); err != nil {
		return err
	}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	out := io.MultiWriter(bw, crc)
	var n uint64
	var hdr, kbuf []byte
	for _, ks := range snapKeyspaces {
		it := snap.NewIterator(ks, engine.IterOptions{})
		for ok := it.First(); ok; ok = it.Next() {
			key, keep, err := mvcc.AppendPortableStateKey(kbuf[:0], ks, it.Key())
			if err != nil {
				it.Close()
				return err
			}
			kbuf = key
			if !keep {
				continue
			}
			hdr = append(hdr[:0], byte(ks))
			hdr = binary.AppendUvarint(hdr, uint64(len(key)))
			if _, err := out.Write(hdr); err != nil {
				it.Close()
				return err
			}
			if _, err := out.Write(key); err != nil {
				it.Close()
				return err
			}
			hdr = binary.AppendUvarint(hdr[:0], uint64(len(it.Value())))
			if _, err := out.Write(hdr); err != nil {
				it.Close()
				return err
			}
			if _, err := out.Write(it.Value()); err != nil {
				it.Close()
				return err
			}
			n++
		}
		err := it.Err()
		it.Close()
		if err != nil {
			return err
		}
	}
	hdr = append(hdr[:0], snapEnd)
	hdr = binary.AppendUvarint(hdr, n)
	hdr = binary.BigEndian.AppendUint32(hdr, crc.Sum32())
	if _, err := bw.Write(hdr); err != nil {
		return err
	}
	return bw.Flush()
}

// Restore replaces the state with a snapshot stream: it clears the state
// keyspaces, writes the records in batches, then reloads the store. Called
// by raft from the apply goroutine, so no Apply runs meanwhile.
func (ap applier) Restore(r io.Reader) error {
	s := ap.s
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapMagic {
		return fmt.Errorf("%w: bad header", errSnapshotFormat)
	}
	if err := clearState(s.eng); err != nil {
		return err
	}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	b := s.eng.NewBatch()
	defer b.Close()
	var n uint64
	for {
		ksb, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("%w: truncated: %v", errSnapshotFormat, err)
		}
		if ksb == snapEnd {
			count, err := binary.ReadUvarint(br)
			if err != nil {
				return fmt.Errorf("%w: trailer: %v", errSnapshotFormat, err)
			}
			var sum [4]byte
			if _, err := io.ReadFull(br, sum[:]); err != nil {
				return fmt.Errorf("%w: trailer: %v", errSnapshotFormat, err)
			}
			if count != n || binary.BigEndian.Uint32(sum[:]) != crc.Sum32() {
				return fmt.Errorf("%w: %d records (trailer says %d) or checksum mismatch", errSnapshotFormat, n, count)
			}
			break
		}
		ks := engine.Keyspace(ksb)
		if ks != engine.Data && ks != engine.ChangeLog && ks != engine.Meta {
			return fmt.Errorf("%w: keyspace %d", errSnapshotFormat, ksb)
		}
		key, err := readChunk(br)
		if err != nil {
			return err
		}
		val, err := readChunk(br)
		if err != nil {
			return err
		}
		var hdr []byte
		hdr = append(hdr, ksb)
		hdr = binary.AppendUvarint(hdr, uint64(len(key)))
		crc.Write(hdr)
		crc.Write(key)
		crc.Write(binary.AppendUvarint(nil, uint64(len(val))))
		crc.Write(val)
		b.Put(ks, key, val)
		n++
		if b.Size() >= 4<<20 {
			if err := b.Commit(false); err != nil {
				return err
			}
			b.Reset()
		}
	}
	if err := b.Commit(true); err != nil {
		return err
	}
	idx, err := readAppliedIndex(s.eng)
	if err != nil {
		return err
	}
	if err := s.store.Reload(); err != nil {
		return err
	}
	if err := s.loadLeases(); err != nil {
		return err
	}
	if err := s.loadOps(); err != nil { // alarm.go
		return err
	}
	if err := s.loadAuth(); err != nil { // auth.go
		return err
	}
	s.applied.Store(idx)
	if s.cfg.Engine == EngineMemory {
		return s.checkpoint(idx)
	}
	return nil
}

const maxSnapRecord = 64 << 20

func readChunk(br *bufio.Reader) ([]byte, error) {
	l, err := binary.ReadUvarint(br)
	if err != nil || l > maxSnapRecord {
		return nil, fmt.Errorf("%w: record length", errSnapshotFormat)
	}
	buf := make([]byte, l)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("%w: truncated record: %v", errSnapshotFormat, err)
	}
	return buf, nil
}

// clearState deletes every key of the state keyspaces.
func clearState(e engine.Engine) error {
	for _, ks := range snapKeyspaces {
		for {
			it := e.NewIterator(ks, engine.IterOptions{})
			b := e.NewBatch()
			n := 0
			for ok := it.First(); ok && n < 10000; ok = it.Next() {
				b.Delete(ks, it.Key())
				n++
			}
			err := it.Err()
			it.Close()
			if err == nil && n > 0 {
				err = b.Commit(false)
			}
			b.Close()
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
	}
	return nil
}
