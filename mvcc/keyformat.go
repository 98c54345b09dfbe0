package mvcc

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/metastore/metastore/engine"
)

// metaKeyFormat records the data keyspace's key format (keys.go). A store
// without it was written in format 1, or is new.
var metaKeyFormat = []byte("mvcc/key_format")

const keyFormat = "2"

// upgradeBatchBytes is the size at which the key format upgrade commits.
const upgradeBatchBytes = 4 << 20

// upgradeKeyFormat rewrites, once, the data keys that key format 1 wrote
// differently (keys with two zeros in a row or a trailing zero), then
// records format 2. It reads a snapshot of the engine and commits as it
// goes; stopped halfway, it finds the rest the next time, since a key
// still in format 1 is one that parses in format 1 and encodes
// differently in format 2. It returns how many keys it rewrote.
func upgradeKeyFormat(eng engine.Engine) (int, error) {
	v, err := eng.Get(engine.Meta, metaKeyFormat)
	switch {
	case err == nil && string(v) == keyFormat:
		return 0, nil
	case err == nil:
		return 0, fmt.Errorf("%w: data key format %q (this build reads format %s: a newer MetaStore wrote it)",
			ErrCorruptRecord, v, keyFormat)
	case !errors.Is(err, engine.ErrNotFound):
		return 0, fmt.Errorf("mvcc: reading the key format: %w", err)
	}
	snap := eng.NewSnapshot()
	defer snap.Close()
	it := snap.NewIterator(engine.Data, engine.IterOptions{})
	defer it.Close()
	b := eng.NewBatch()
	defer b.Close()
	n := 0
	var user, nk []byte
	for ok := it.First(); ok; ok = it.Next() {
		prefix, _, err := splitDataKey(it.Key())
		if err != nil {
			return n, err
		}
		if sameInBothFormats(prefix) {
			continue
		}
		if user, err = appendUnescapedV1(user[:0], prefix); err != nil {
			continue // not format 1: already rewritten
		}
		nk = appendEscaped(nk[:0], user)
		if bytes.Equal(nk, prefix) {
			continue
		}
		nk = append(nk, it.Key()[len(prefix):]...)
		b.Delete(engine.Data, it.Key())
		b.Put(engine.Data, nk, it.Value())
		n++
		if b.Size() >= upgradeBatchBytes {
			if err := b.Commit(false); err != nil {
				return n, err
			}
			b.Reset()
		}
	}
	if err := it.Err(); err != nil {
		return n, err
	}
	b.Put(engine.Meta, metaKeyFormat, []byte(keyFormat))
	return n, b.Commit(true)
}

// AppendPortableStateKey appends to dst the form in which a state key of
// keyspace ks travels in a snapshot stream: data keys in key format 1,
// which members of every version read (a member in format 2 rewrites them
// when it reloads), and the rest as they are. keep is false for a key that
// stays with its member: the key format marker, which describes the
// member's own keys, not the stream's.
func AppendPortableStateKey(dst []byte, ks engine.Keyspace, key []byte) (out []byte, keep bool, err error) {
	switch {
	case ks == engine.Meta && bytes.Equal(key, metaKeyFormat):
		return dst, false, nil
	case ks != engine.Data:
		return append(dst, key...), true, nil
	}
	prefix, _, err := splitDataKey(key)
	if err != nil {
		return dst, false, err
	}
	if dst, err = appendPrefixV1(dst, prefix); err != nil {
		return dst, false, err
	}
	return append(dst, key[len(prefix):]...), true, nil
}
