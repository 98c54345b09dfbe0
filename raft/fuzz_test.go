package raft

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// FuzzDecodeConfChange: a committed entry's bytes decode to a conf change
// or an error, never a panic.
func FuzzDecodeConfChange(f *testing.F) {
	valid, _ := proto.Marshal(&raftpb.ConfChangeV2{Context: []byte(`{"member":{"ID":1,"Name":"m1","PeerURLs":["http://127.0.0.1:2380"]}}`)})
	for _, s := range [][]byte{valid, nil, {0x0a, 0xff}, []byte(`{"member":`)} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, v2 bool) {
		typ := raftpb.EntryConfChangeV2
		if !v2 {
			typ = raftpb.EntryConfChange
		}
		e := &raftpb.Entry{Type: &typ, Data: data}
		_, _, _ = DecodeConfChange(e)
	})
}

// FuzzSnapshotStream: a received snapshot file is verified frame by frame
// (length, per-chunk CRC-32C, end frame with total length and CRC): any
// byte string is read to the end or refused with an error, never a panic,
// and a refused stream yields no data past the point of damage.
func FuzzSnapshotStream(f *testing.F) {
	frame := func(b []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
	}
	data := []byte("state bytes")
	chunk := append([]byte{frameChunk}, binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crcTable))...)
	chunk = append(chunk, data...)
	end := []byte{frameEnd}
	end = binary.BigEndian.AppendUint64(end, uint64(len(data)))
	end = binary.BigEndian.AppendUint32(end, crc32.Checksum(data, crcTable))
	var good bytes.Buffer
	good.Write(frame([]byte("not a header")))
	good.Write(frame(chunk))
	good.Write(frame(end))
	f.Add(good.Bytes())
	f.Add([]byte{0, 0, 0, 1, 'x'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		sr := &snapReader{r: bufio.NewReader(bytes.NewReader(b))}
		if _, err := sr.next(); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, sr)
		var v chunkVerifier
		_, _ = v.frame(b)
		_, _, _ = decodeHeaderFrame(b)
	})
}
