package mvcc

import (
	"encoding/binary"
	"fmt"
)

// Data keyspace layout
//
// Every version of a user key is stored under
//
//	escape(userKey) 0x00 0x01 bigEndian(^revision)
//
// escape() doubles each 0x00 byte as 0x00 0xFF, so the encoding keeps the
// byte order of user keys and no encoded key is a prefix of another's
// versions: the terminator 0x00 0x01 sorts below any escaped byte that could
// follow. Storing the one's complement of the revision puts the newest
// version of a key first, so the latest version is a single seek, and a read
// at revision R is a seek to escape(key) 0x00 0x01 bigEndian(^R). No key
// index is kept in memory.
//
// A key is written at most once per main revision (etcd forbids duplicate
// puts in a txn, and a txn reads its own writes), so the sub revision is not
// part of the data key; it orders events in the change log.
//
// Change log keyspace layout: bigEndian(main) bigEndian(sub) -> kind userKey.

const (
	escByte   = 0x00
	escEscape = 0xFF // 0x00 in a user key is written 0x00 0xFF
	escTerm   = 0x01 // end of the user key
	escSkip   = 0x02 // past every version of a user key: escape(k) 0x00 0x02
	revLen    = 8
)

// appendEscaped appends escape(key) and the terminator to dst.
func appendEscaped(dst, key []byte) []byte {
	for _, c := range key {
		if c == escByte {
			dst = append(dst, escByte, escEscape)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, escByte, escTerm)
}

// appendEscapedBound appends escape(key) without a terminator: it sorts
// before every version of key and of every larger key, and after every
// version of every smaller key. Used as an iteration bound.
func appendEscapedBound(dst, key []byte) []byte {
	for _, c := range key {
		if c == escByte {
			dst = append(dst, escByte, escEscape)
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// dataKey returns the data keyspace key of (key, rev).
func dataKey(dst, key []byte, rev int64) []byte {
	dst = appendEscaped(dst, key)
	return binary.BigEndian.AppendUint64(dst, ^uint64(rev))
}

// splitDataKey returns the encoded user-key prefix (escape(key) plus
// terminator) and the revision of a data keyspace key.
func splitDataKey(k []byte) (prefix []byte, rev int64, err error) {
	if len(k) < revLen+2 {
		return nil, 0, fmt.Errorf("%w: data key of %d bytes", ErrCorruptRecord, len(k))
	}
	n := len(k) - revLen
	return k[:n], int64(^binary.BigEndian.Uint64(k[n:])), nil
}

// unescape decodes the user key from an encoded prefix (escape(key) plus
// terminator).
func unescape(prefix []byte) ([]byte, error) {
	return appendUnescaped(make([]byte, 0, len(prefix)-2), prefix)
}

// appendUnescaped appends the user key of prefix to out.
func appendUnescaped(out, prefix []byte) ([]byte, error) {
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if c != escByte {
			out = append(out, c)
			continue
		}
		if i+1 >= len(prefix) {
			return nil, fmt.Errorf("%w: truncated key escape", ErrCorruptRecord)
		}
		switch prefix[i+1] {
		case escEscape:
			out = append(out, escByte)
			i++
		case escTerm:
			if i+2 != len(prefix) {
				return nil, fmt.Errorf("%w: terminator inside key", ErrCorruptRecord)
			}
			return out, nil
		default:
			return nil, fmt.Errorf("%w: bad key escape 0x%02x", ErrCorruptRecord, prefix[i+1])
		}
	}
	return nil, fmt.Errorf("%w: key without terminator", ErrCorruptRecord)
}

// skipKey returns the smallest encoded key past every version of the user
// key whose encoded prefix is given.
func skipKey(dst, prefix []byte) []byte {
	dst = append(dst, prefix...)
	dst[len(dst)-1] = escSkip
	return dst
}

// Version values
//
//	flags(1) uvarint(createRev) uvarint(version) varint(lease) value...
//
// A tombstone (delete) is the single byte flagTombstone.

const flagTombstone = 1

type version struct {
	tombstone bool
	create    int64
	ver       int64
	lease     int64
	value     []byte
}

func appendVersion(dst []byte, v version) []byte {
	if v.tombstone {
		return append(dst, flagTombstone)
	}
	dst = append(dst, 0)
	dst = binary.AppendUvarint(dst, uint64(v.create))
	dst = binary.AppendUvarint(dst, uint64(v.ver))
	dst = binary.AppendVarint(dst, v.lease)
	return append(dst, v.value...)
}

// decodeVersion decodes a version value. value aliases b.
func decodeVersion(b []byte) (version, error) {
	if len(b) == 0 {
		return version{}, fmt.Errorf("%w: empty version", ErrCorruptRecord)
	}
	if b[0] == flagTombstone {
		return version{tombstone: true}, nil
	}
	if b[0] != 0 {
		return version{}, fmt.Errorf("%w: version flags 0x%02x", ErrCorruptRecord, b[0])
	}
	b = b[1:]
	create, n := binary.Uvarint(b)
	if n <= 0 {
		return version{}, fmt.Errorf("%w: create revision", ErrCorruptRecord)
	}
	b = b[n:]
	ver, n := binary.Uvarint(b)
	if n <= 0 {
		return version{}, fmt.Errorf("%w: version", ErrCorruptRecord)
	}
	b = b[n:]
	lease, n := binary.Varint(b)
	if n <= 0 {
		return version{}, fmt.Errorf("%w: lease", ErrCorruptRecord)
	}
	return version{create: int64(create), ver: int64(ver), lease: lease, value: b[n:]}, nil
}

func isTombstone(b []byte) bool { return len(b) == 1 && b[0] == flagTombstone }

// Change log records.

const (
	kindPut    = 0
	kindDelete = 1
)

func changeKey(dst []byte, main, sub int64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(main))
	return binary.BigEndian.AppendUint64(dst, uint64(sub))
}

func splitChangeKey(k []byte) (main, sub int64, err error) {
	if len(k) != 16 {
		return 0, 0, fmt.Errorf("%w: change key of %d bytes", ErrCorruptRecord, len(k))
	}
	return int64(binary.BigEndian.Uint64(k)), int64(binary.BigEndian.Uint64(k[8:])), nil
}

func changeValue(dst []byte, kind byte, key []byte) []byte {
	dst = append(dst, kind)
	return append(dst, key...)
}

// Meta keyspace keys owned by mvcc.
var (
	metaCurrentRev   = []byte("mvcc/current_rev")
	metaScheduledRev = []byte("mvcc/compact_scheduled_rev")
	metaFinishedRev  = []byte("mvcc/compact_finished_rev")
)

func encodeInt64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decodeInt64(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: int64 of %d bytes", ErrCorruptRecord, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
