package mvcc

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Data keyspace layout (key format 2)
//
// Every version of a user key is stored under
//
//	enc(userKey) bigEndian(^revision)
//
// enc keeps the byte order of user keys, and a decoder finds where an
// encoded key ends, so no encoded key is a prefix of another's and every
// version of a key sorts together, between the keys around it. Storing the
// one's complement of the revision puts the newest version of a key first,
// so the latest version is a single seek, and a read at revision R is a
// seek to enc(key) bigEndian(^R). No key index is kept in memory.
//
// enc writes bytes other than 0x00 as they are. A run of k zero bytes is
// written as 0x00 and a code byte:
//
//	the run is followed by a non-zero byte:
//	  k <= 238: 0x100-k (0xFF for one zero, down to 0x12)
//	  k >= 239: 0x11, then bigEndian(^uint32(k))
//	the run ends the key:
//	  k <= 14:  0x01+k (0x02 to 0x0F)
//	  k >= 15:  0x10, then bigEndian(uint32(k))
//
// and a key that does not end in a zero ends with 0x00 0x01. Why this keeps
// the order: where two keys first differ, a zero sorts below any other
// byte and the end of a key below anything; so a run that ends the key
// sorts below every run that does not, shorter runs at the end sort first,
// and a longer run followed by more of the key sorts first.
//
// Key format 1 wrote every zero byte as 0x00 0xFF, so a key of mostly zeros
// (a fixed-width binary key holding a small number) took twice its size.
// The two formats write a key the same way unless it holds two zeros in a
// row or ends in a zero; Open rewrites such keys once (upgradeKeyFormat),
// and snapshot streams and hashes still use format 1, which every
// MetaStore version reads (AppendPortableStateKey, hashVersions).
//
// A key is written at most once per main revision (etcd forbids duplicate
// puts in a txn, and a txn reads its own writes), so the sub revision is not
// part of the data key; it orders events in the change log.
//
// Change log keyspace layout: bigEndian(main) bigEndian(sub) -> kind userKey.

const (
	escByte      = 0x00
	codeEnd      = 0x01 // the key ends, without a zero
	codeTailMax  = 0x0F // 0x02-0x0F: the key ends with 1-14 zeros
	codeTailLong = 0x10 // the key ends with bigEndian(uint32(k)) zeros
	codeRunLong  = 0x11 // bigEndian(^uint32(k)) zeros, then a non-zero byte
	codeRunMin   = 0x12 // 0x12-0xFF: 238-1 zeros, then a non-zero byte
	maxShortTail = codeTailMax - codeEnd
	maxShortRun  = 0x100 - codeRunMin
	revLen       = 8

	v1Escape = 0xFF // key format 1: 0x00 in a user key is written 0x00 0xFF
)

// appendEscaped appends enc(key) to dst.
func appendEscaped(dst, key []byte) []byte {
	for len(key) > 0 {
		i := bytes.IndexByte(key, escByte)
		if i < 0 {
			dst = append(dst, key...)
			break
		}
		dst = append(dst, key[:i]...)
		j := i + 1
		for j < len(key) && key[j] == escByte {
			j++
		}
		k := j - i
		key = key[j:]
		if len(key) == 0 {
			if k <= maxShortTail {
				return append(dst, escByte, byte(codeEnd+k))
			}
			return binary.BigEndian.AppendUint32(append(dst, escByte, codeTailLong), uint32(k))
		}
		if k <= maxShortRun {
			dst = append(dst, escByte, byte(0x100-k))
		} else {
			dst = binary.BigEndian.AppendUint32(append(dst, escByte, codeRunLong), ^uint32(k))
		}
	}
	return append(dst, escByte, codeEnd)
}

// dataKey returns the data keyspace key of (key, rev).
func dataKey(dst, key []byte, rev int64) []byte {
	dst = appendEscaped(dst, key)
	return binary.BigEndian.AppendUint64(dst, ^uint64(rev))
}

// splitDataKey returns the encoded user key (prefix) and the revision of a
// data keyspace key.
func splitDataKey(k []byte) (prefix []byte, rev int64, err error) {
	if len(k) < revLen+2 {
		return nil, 0, fmt.Errorf("%w: data key of %d bytes", ErrCorruptRecord, len(k))
	}
	n := len(k) - revLen
	return k[:n], int64(^binary.BigEndian.Uint64(k[n:])), nil
}

// unescape decodes the user key of an encoded key.
func unescape(prefix []byte) ([]byte, error) {
	return appendUnescaped(make([]byte, 0, len(prefix)), prefix)
}

// appendUnescaped appends the user key of prefix, which must be exactly
// one encoded key in the form enc writes, to out.
func appendUnescaped(out, prefix []byte) ([]byte, error) {
	for len(prefix) > 0 {
		i := bytes.IndexByte(prefix, escByte)
		if i < 0 {
			break
		}
		out = append(out, prefix[:i]...)
		if i+1 >= len(prefix) {
			return nil, fmt.Errorf("%w: truncated key escape", ErrCorruptRecord)
		}
		code := prefix[i+1]
		prefix = prefix[i+2:]
		var k uint32
		tail := false
		switch {
		case code == codeEnd:
			if len(prefix) != 0 {
				return nil, fmt.Errorf("%w: terminator inside key", ErrCorruptRecord)
			}
			return out, nil
		case code > codeEnd && code <= codeTailMax:
			k, tail = uint32(code-codeEnd), true
		case code == codeTailLong || code == codeRunLong:
			if len(prefix) < 4 {
				return nil, fmt.Errorf("%w: truncated zero run", ErrCorruptRecord)
			}
			k, tail = binary.BigEndian.Uint32(prefix), code == codeTailLong
			prefix = prefix[4:]
			if !tail {
				k = ^k
			}
			if (tail && k <= maxShortTail) || (!tail && k <= maxShortRun) {
				return nil, fmt.Errorf("%w: zero run of %d in the long form", ErrCorruptRecord, k)
			}
		case code >= codeRunMin:
			k = uint32(0x100 - int(code))
		default:
			return nil, fmt.Errorf("%w: bad key escape 0x%02x", ErrCorruptRecord, code)
		}
		out = append(out, make([]byte, k)...)
		if tail {
			if len(prefix) != 0 {
				return nil, fmt.Errorf("%w: terminator inside key", ErrCorruptRecord)
			}
			return out, nil
		}
		if len(prefix) == 0 || prefix[0] == escByte {
			return nil, fmt.Errorf("%w: zero run not followed by a non-zero byte", ErrCorruptRecord)
		}
	}
	return nil, fmt.Errorf("%w: key without terminator", ErrCorruptRecord)
}

// skipKey returns the smallest data key past every version of the user key
// whose encoded form is prefix: the largest version key has the revision
// bytes all 0xFF, and nothing but versions of this key starts with prefix.
func skipKey(dst, prefix []byte) []byte {
	dst = append(dst, prefix...)
	dst = binary.BigEndian.AppendUint64(dst, ^uint64(0))
	return append(dst, 0)
}

// appendEscapedV1 appends key in key format 1 to dst: every 0x00 written
// 0x00 0xFF, then 0x00 0x01.
func appendEscapedV1(dst, key []byte) []byte {
	for _, c := range key {
		if c == escByte {
			dst = append(dst, escByte, v1Escape)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, escByte, codeEnd)
}

// appendUnescapedV1 appends the user key of prefix, one key in key format
// 1, to out.
func appendUnescapedV1(out, prefix []byte) ([]byte, error) {
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
		case v1Escape:
			out = append(out, escByte)
			i++
		case codeEnd:
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

// sameInBothFormats reports whether prefix (an encoded key) has no zero
// byte but its terminator's: most keys, written the same in both formats.
func sameInBothFormats(prefix []byte) bool {
	return len(prefix) >= 2 && bytes.IndexByte(prefix, escByte) == len(prefix)-2 && prefix[len(prefix)-1] == codeEnd
}

// appendPrefixV1 appends the key format 1 form of prefix (an encoded key)
// to dst.
func appendPrefixV1(dst, prefix []byte) ([]byte, error) {
	if sameInBothFormats(prefix) {
		return append(dst, prefix...), nil
	}
	key, err := unescape(prefix)
	if err != nil {
		return nil, err
	}
	return appendEscapedV1(dst, key), nil
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
