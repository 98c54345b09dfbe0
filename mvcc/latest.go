package mvcc

import (
	"bytes"
	"math"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// DefaultLatestCacheBytes bounds the latest-version cache (latestCache).
const DefaultLatestCacheBytes = 16 << 20

// latestEntryOverhead is what one cached key costs besides its bytes: the
// metadata, the string header and the map's share.
const latestEntryOverhead = 96

// latestMeta is the metadata of a key's newest version; mod == 0 means the
// key has no live version (never written, deleted, or compacted away).
type latestMeta struct {
	mod, create, ver, lease int64
}

// latestCache remembers the newest version's metadata of keys the apply
// path wrote or read, so that a Put (and a txn compare that does not look
// at values) does not open an engine iterator to find the key's previous
// version. With random keys that lookup, a RocksDB iterator seek over the
// memtables and every level, was 15% of the server's CPU under a put load.
//
// Only the apply path uses it, under Store.applyMu: a write updates the
// entry when it is added to the Apply's batch. An Apply that is aborted
// instead of committed, and a Reload of the whole store, empty the cache,
// so it never holds state that is not (or no longer) in the engine. The
// background compactor needs no hook: it never removes a key's newest live
// version, and removing a newest tombstone leaves the key as dead as the
// cache says it is. Readers outside the apply path never use it.
//
// It is bounded by bytes; when full, an arbitrary entry (Go's map iteration
// order) makes room: no recency bookkeeping on the hot path.
type latestCache struct {
	m          map[string]latestMeta
	bytes, max int
}

func newLatestCache(max int) *latestCache {
	return &latestCache{m: make(map[string]latestMeta), max: max}
}

func (c *latestCache) get(key []byte) (latestMeta, bool) {
	m, ok := c.m[string(key)]
	return m, ok
}

func (c *latestCache) set(key []byte, m latestMeta) {
	if c.max <= 0 {
		return
	}
	if _, ok := c.m[string(key)]; ok {
		c.m[string(key)] = m
		return
	}
	cost := len(key) + latestEntryOverhead
	if cost > c.max {
		return
	}
	for c.bytes+cost > c.max {
		for k := range c.m {
			delete(c.m, k)
			c.bytes -= len(k) + latestEntryOverhead
			break
		}
	}
	c.m[string(key)] = m
	c.bytes += cost
}

func (c *latestCache) drop(key []byte) {
	if _, ok := c.m[string(key)]; ok {
		delete(c.m, string(key))
		c.bytes -= len(key) + latestEntryOverhead
	}
}

func (c *latestCache) reset() {
	clear(c.m)
	c.bytes = 0
}

func (m latestMeta) kv(key []byte) *mvccpb.KeyValue {
	if m.mod == 0 {
		return nil
	}
	return &mvccpb.KeyValue{Key: bytes.Clone(key), CreateRevision: m.create, ModRevision: m.mod,
		Version: m.ver, Lease: m.lease}
}

func metaOf(kv *mvccpb.KeyValue) latestMeta {
	if kv == nil {
		return latestMeta{}
	}
	return latestMeta{mod: kv.ModRevision, create: kv.CreateRevision, ver: kv.Version, lease: kv.Lease}
}

// latestKV is latestKV over the Apply's batch at its newest state, answered
// from the cache when the value is not needed.
func (a *Apply) latestKV(key []byte, withValue bool) (*mvccpb.KeyValue, error) {
	c := a.s.latest
	if !withValue {
		if m, ok := c.get(key); ok {
			return m.kv(key), nil
		}
	}
	kv, err := latestKV(a.b, key, math.MaxInt64, withValue)
	if err == nil {
		c.set(key, metaOf(kv))
	}
	return kv, err
}

// noteWrite records in the cache the version written for key at a.w.rev.
// A delete drops the key instead of caching its absence, so that a large
// DeleteRange empties the cache rather than filling it with dead keys.
func (a *Apply) noteWrite(key []byte, v version) {
	if v.tombstone {
		a.s.latest.drop(key)
		return
	}
	a.s.latest.set(key, latestMeta{mod: a.w.rev, create: v.create, ver: v.ver, lease: v.lease})
}
