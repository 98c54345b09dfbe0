package raft

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Snapshot stream format. A snapshot travels (over gRPC, one frame per
// message) and rests (in DataDir/snap, each frame prefixed with its 4-byte
// big-endian length) as a sequence of frames:
//
//	header: 'H' | uvarint len(msg) | MsgSnap (proto) | confRecord (JSON)
//	chunk:  'C' | crc32c(data) (4 bytes BE) | data       (at most snapChunkSize)
//	end:    'E' | total length (8 bytes BE) | crc32c over all data (4 bytes BE)
//
// Every chunk is verified on receipt and again when the file is read for
// restore, so neither a corrupted transfer nor a corrupted file is ever
// handed to the Applier.
const (
	frameHeader   = 'H'
	frameChunk    = 'C'
	frameEnd      = 'E'
	snapChunkSize = 1 << 20
	maxFrameSize  = snapChunkSize + 64<<10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func encodeHeaderFrame(m *raftpb.Message, rec *confRecord) ([]byte, error) {
	mb, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	rb, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	f := []byte{frameHeader}
	f = binary.AppendUvarint(f, uint64(len(mb)))
	f = append(f, mb...)
	return append(f, rb...), nil
}

func decodeHeaderFrame(f []byte) (*raftpb.Message, *confRecord, error) {
	if len(f) == 0 || f[0] != frameHeader {
		return nil, nil, fmt.Errorf("%w: stream does not start with a header", ErrSnapshotCorrupt)
	}
	n, k := binary.Uvarint(f[1:])
	if k <= 0 || uint64(len(f)-1-k) < n {
		return nil, nil, fmt.Errorf("%w: bad header length", ErrSnapshotCorrupt)
	}
	body := f[1+k:]
	m := &raftpb.Message{}
	if err := proto.Unmarshal(body[:n], m); err != nil {
		return nil, nil, fmt.Errorf("%w: header message: %v", ErrSnapshotCorrupt, err)
	}
	rec := &confRecord{}
	if err := json.Unmarshal(body[n:], rec); err != nil {
		return nil, nil, fmt.Errorf("%w: header membership: %v", ErrSnapshotCorrupt, err)
	}
	return m, rec, nil
}

// chunkWriter turns the Applier's state stream into chunk frames passed to
// emit, and finally the end frame (Close).
type chunkWriter struct {
	emit  func(frame []byte) error
	buf   []byte
	total uint64
	crc   uint32
}

func newChunkWriter(emit func([]byte) error) *chunkWriter {
	return &chunkWriter{emit: emit, buf: make([]byte, 5, 5+snapChunkSize)}
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), snapChunkSize-(len(w.buf)-5))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf)-5 == snapChunkSize {
			if err := w.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	data := w.buf[5:]
	if len(data) == 0 {
		return nil
	}
	w.buf[0] = frameChunk
	binary.BigEndian.PutUint32(w.buf[1:5], crc32.Checksum(data, crcTable))
	w.crc = crc32.Update(w.crc, crcTable, data)
	w.total += uint64(len(data))
	if err := w.emit(w.buf); err != nil {
		return err
	}
	// NB: a fresh buffer per chunk: gRPC may still hold the sent one.
	w.buf = make([]byte, 5, 5+snapChunkSize)
	return nil
}

// Close flushes the last chunk and emits the end frame.
func (w *chunkWriter) Close() error {
	if err := w.flush(); err != nil {
		return err
	}
	end := make([]byte, 13)
	end[0] = frameEnd
	binary.BigEndian.PutUint64(end[1:9], w.total)
	binary.BigEndian.PutUint32(end[9:13], w.crc)
	return w.emit(end)
}

// chunkVerifier checks chunk and end frames in order.
type chunkVerifier struct {
	chunks int
	total  uint64
	crc    uint32
	done   bool
}

// chunk verifies one chunk or end frame and returns the chunk's data (nil
// for the end frame).
func (v *chunkVerifier) frame(f []byte) ([]byte, error) {
	if v.done {
		return nil, fmt.Errorf("%w: data after the end frame", ErrSnapshotCorrupt)
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrSnapshotCorrupt)
	}
	switch f[0] {
	case frameChunk:
		if len(f) < 5 {
			return nil, fmt.Errorf("%w: short chunk frame", ErrSnapshotCorrupt)
		}
		data := f[5:]
		if got, want := crc32.Checksum(data, crcTable), binary.BigEndian.Uint32(f[1:5]); got != want {
			return nil, fmt.Errorf("%w: chunk %d checksum mismatch (crc32c %08x, frame says %08x)",
				ErrSnapshotCorrupt, v.chunks, got, want)
		}
		v.chunks++
		v.total += uint64(len(data))
		v.crc = crc32.Update(v.crc, crcTable, data)
		return data, nil
	case frameEnd:
		if len(f) != 13 {
			return nil, fmt.Errorf("%w: bad end frame", ErrSnapshotCorrupt)
		}
		if total := binary.BigEndian.Uint64(f[1:9]); total != v.total {
			return nil, fmt.Errorf("%w: length %d, end frame says %d", ErrSnapshotCorrupt, v.total, total)
		}
		if crc := binary.BigEndian.Uint32(f[9:13]); crc != v.crc {
			return nil, fmt.Errorf("%w: whole-stream checksum mismatch (crc32c %08x, end frame says %08x)",
				ErrSnapshotCorrupt, v.crc, crc)
		}
		v.done = true
		return nil, nil
	}
	return nil, fmt.Errorf("%w: unknown frame type %q", ErrSnapshotCorrupt, f[0])
}

// snapFile writes received frames to DataDir/snap/<term>-<index>.snap.tmp
// and renames it into place once the end frame verified.
type snapFile struct {
	f   *os.File
	w   *bufio.Writer
	tmp string
}

func createSnapFile(dir string, term, index uint64) (*snapFile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft: snapshot dir: %w", err)
	}
	tmp := filepath.Join(dir, fmt.Sprintf("%016x-%016x.snap.tmp", term, index))
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("raft: create snapshot file: %w", err)
	}
	return &snapFile{f: f, w: bufio.NewWriterSize(f, 256<<10), tmp: tmp}, nil
}

func (s *snapFile) writeFrame(frame []byte) error {
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(frame)))
	if _, err := s.w.Write(l[:]); err != nil {
		return err
	}
	_, err := s.w.Write(frame)
	return err
}

// finish syncs the file and renames it to its final name, which it returns.
func (s *snapFile) finish() (string, error) {
	if err := s.w.Flush(); err != nil {
		s.abort()
		return "", err
	}
	if err := s.f.Sync(); err != nil {
		s.abort()
		return "", err
	}
	if err := s.f.Close(); err != nil {
		os.Remove(s.tmp)
		return "", err
	}
	final := s.tmp[:len(s.tmp)-len(".tmp")]
	if err := os.Rename(s.tmp, final); err != nil {
		os.Remove(s.tmp)
		return "", err
	}
	if d, err := os.Open(filepath.Dir(final)); err == nil {
		d.Sync()
		d.Close()
	}
	return final, nil
}

func (s *snapFile) abort() {
	s.f.Close()
	os.Remove(s.tmp)
}

// snapReader reads the state back out of a saved snapshot file, verifying
// every chunk; Read returns ErrSnapshotCorrupt on any mismatch and io.EOF
// only after the end frame verified.
type snapReader struct {
	r    *bufio.Reader
	v    chunkVerifier
	cur  []byte
	body []byte
}

func openSnapReader(f io.Reader) (*snapReader, *raftpb.Message, *confRecord, error) {
	sr := &snapReader{r: bufio.NewReaderSize(f, 256<<10)}
	h, err := sr.next()
	if err != nil {
		return nil, nil, nil, err
	}
	m, rec, err := decodeHeaderFrame(h)
	if err != nil {
		return nil, nil, nil, err
	}
	return sr, m, rec, nil
}

func (sr *snapReader) next() ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(sr.r, l[:]); err != nil {
		return nil, fmt.Errorf("%w: truncated file: %v", ErrSnapshotCorrupt, err)
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > maxFrameSize {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrSnapshotCorrupt, n)
	}
	if cap(sr.body) < int(n) {
		sr.body = make([]byte, n)
	}
	sr.body = sr.body[:n]
	if _, err := io.ReadFull(sr.r, sr.body); err != nil {
		return nil, fmt.Errorf("%w: truncated file: %v", ErrSnapshotCorrupt, err)
	}
	return sr.body, nil
}

func (sr *snapReader) Read(p []byte) (int, error) {
	for len(sr.cur) == 0 {
		if sr.v.done {
			return 0, io.EOF
		}
		f, err := sr.next()
		if err != nil {
			return 0, err
		}
		data, err := sr.v.frame(f)
		if err != nil {
			return 0, err
		}
		sr.cur = data
	}
	n := copy(p, sr.cur)
	sr.cur = sr.cur[n:]
	return n, nil
}

// restoreMarker is stored (in the same batch as the snapshot metadata)
// while a received snapshot has not yet been restored into the Applier. If
// the process dies mid-restore, Start sees the marker and the saved file and
// redoes the restore before raft starts.
type restoreMarker struct {
	Path  string `json:"path"`
	Index uint64 `json:"index"` // raft index of the snapshot
}

var errSnapshotIncomplete = errors.New("raft: snapshot stream ended before its end frame")
