package mvcc

import (
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// DefaultReadCacheBytes bounds the read cache (readCache).
const DefaultReadCacheBytes = 64 << 20

// readCacheMaxValue is the largest value the read cache keeps.
const readCacheMaxValue = 64 << 10

// readCacheEntryOverhead is what one cached key costs besides its bytes.
const readCacheEntryOverhead = 128

// readCacheBarrier is how many keys one Apply may write before the cache
// stops marking them one by one and closes as a whole until the Apply has
// committed (a large DeleteRange would otherwise mark every key it
// deletes).
const readCacheBarrier = 10000

// readCache keeps the newest live version of keys that one-key ranges at
// the current revision read, or that they found no live version, so that
// the next such range is answered without an engine iterator. On RocksDB
// the iterator (open, seek, close) was a quarter of a one-key range's CPU
// on a member with some history; a read of a key that does not exist costs
// the same seek (clients poll for keys that are not there yet: locks,
// leader keys, config).
//
// The invariant: an entry for key k with revision m (the ModRevision of a
// live version, or for an absent key the revision at which the engine
// showed no live version) serves a read at revision R only if m <= R and
// no write of k at a revision in (m, R] is visible at R. It holds because:
//   - every key an Apply writes is marked in the cache (cached entry
//     replaced by a marker) before the Apply publishes its revision
//     (Apply.Commit: markWritten before currentRev.Store), and the marker
//     is dropped after (settleWritten): the next read fills the key again.
//     A marker is never served and never evicted.
//   - a reader loads R before it looks the key up, so any write published
//     at or before R has marked the key by then.
//   - a reader fills a miss with what it read from the engine at R only if,
//     when it fills, the key is still absent, R is still the current
//     revision and nothing marked, settled or cleared the cache since its
//     lookup (gen): so a fill never brings back a version a write has
//     since replaced.
//   - Reload (the engine replaced wholesale) clears the cache.
//
// Cached values are shared by the responses built from them: they are
// never modified, and neither are the Value bytes of a RangeResponse.
// Bounded by bytes; when full, an arbitrary entry that is not a marker
// makes room.
type readCache struct {
	mu      sync.Mutex
	m       map[string]*cachedKV
	gen     uint64 // changes with every mark, settle, clear and barrier
	barrier bool   // a large Apply is committing: no hits, no fills
	bytes   int
	max     int
}

// cachedKV is a key's newest live version; or, absent, the fact that the
// key had no live version at revision mod; or a marker (pending) while a
// write of the key commits.
type cachedKV struct {
	pending, absent         bool
	mod, create, ver, lease int64
	value                   []byte
}

// writeMarker marks a key whose write is committing.
var writeMarker = &cachedKV{pending: true}

func newReadCache(max int) *readCache {
	return &readCache{m: make(map[string]*cachedKV), max: max}
}

// on reports whether the cache is in use (Config.ReadCacheBytes > 0).
func (c *readCache) on() bool { return c.max > 0 }

func (c *readCache) cost(key string, e *cachedKV) int {
	return len(key) + len(e.value) + readCacheEntryOverhead
}

// lookup returns the entry that may answer a read at rev, and the
// generation to fill with on a miss.
func (c *readCache) lookup(key []byte, rev int64) (*cachedKV, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.barrier {
		return nil, c.gen
	}
	e := c.m[string(key)]
	if e == nil || e.pending || e.mod > rev {
		return nil, c.gen
	}
	return e, c.gen
}

// fill caches kv, read from the engine at rev, if nothing changed since
// the lookup that returned gen and rev is still current().
func (c *readCache) fill(kv *mvccpb.KeyValue, gen uint64, rev int64, current func() int64) {
	if len(kv.Value) > readCacheMaxValue {
		return
	}
	c.fillEntry(kv.Key, &cachedKV{mod: kv.ModRevision, create: kv.CreateRevision, ver: kv.Version,
		lease: kv.Lease, value: kv.Value}, gen, rev, current)
}

// fillAbsent caches that key had no live version at rev, under fill's
// conditions.
func (c *readCache) fillAbsent(key []byte, gen uint64, rev int64, current func() int64) {
	c.fillEntry(key, &cachedKV{absent: true, mod: rev}, gen, rev, current)
}

func (c *readCache) fillEntry(key []byte, e *cachedKV, gen uint64, rev int64, current func() int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.barrier || c.gen != gen || current() != rev {
		return
	}
	if _, ok := c.m[string(key)]; ok {
		return
	}
	c.insertLocked(string(key), e)
}

// insertLocked adds e under key, evicting entries that are not markers
// until it fits.
func (c *readCache) insertLocked(key string, e *cachedKV) {
	cost := c.cost(key, e)
	if cost > c.max {
		return
	}
	for k, old := range c.m {
		if c.bytes+cost <= c.max {
			break
		}
		if !old.pending {
			c.removeLocked(k, old)
		}
	}
	if c.bytes+cost > c.max {
		return // only markers left
	}
	c.m[key] = e
	c.bytes += cost
}

func (c *readCache) removeLocked(key string, e *cachedKV) {
	delete(c.m, key)
	c.bytes -= c.cost(key, e)
}

// markWritten replaces the entries of keys by markers, or, past
// readCacheBarrier keys, closes the cache; the Apply calls it before it
// publishes its revision. settleWritten, called after, undoes it: the
// markers go (the next read fills the key again), and after a barrier the
// whole cache does.
func (c *readCache) markWritten(keys [][]byte, overflow bool)   { c.written(keys, overflow, false) }
func (c *readCache) settleWritten(keys [][]byte, overflow bool) { c.written(keys, overflow, true) }

func (c *readCache) written(keys [][]byte, overflow, settle bool) {
	if !c.on() || (len(keys) == 0 && !overflow) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if overflow {
		if settle {
			c.clearLocked()
		}
		c.barrier = !settle
		return
	}
	for _, k := range keys {
		old, ok := c.m[string(k)]
		switch {
		case settle:
			if ok && old.pending {
				delete(c.m, string(k))
			}
		case ok && !old.pending: // a key written twice is marked already
			c.removeLocked(string(k), old)
			fallthrough
		default:
			c.m[string(k)] = writeMarker // not counted: dropped when settled
		}
	}
}

func (c *readCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.clearLocked()
}

func (c *readCache) clearLocked() {
	clear(c.m)
	c.bytes = 0
}

// rangeResponse answers a plain one-key range from e.
func (e *cachedKV) rangeResponse(req *pb.RangeRequest, rev int64) *pb.RangeResponse {
	if e.absent {
		return &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rev}}
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rev}, Count: 1}
	if req.CountOnly {
		return resp
	}
	kv := &mvccpb.KeyValue{Key: append([]byte(nil), req.Key...), CreateRevision: e.create, ModRevision: e.mod,
		Version: e.ver, Lease: e.lease}
	switch {
	case !req.KeysOnly:
		kv.Value = e.value
	case fastKeysOnly(req):
		kv.Lease = 0
	}
	resp.Kvs = []*mvccpb.KeyValue{kv}
	return resp
}

// cacheable reports whether req is a one-key range the read cache may
// answer: at the current revision, without filters on revisions.
func cacheable(req *pb.RangeRequest, cur int64) bool {
	return len(req.RangeEnd) == 0 && (req.Revision <= 0 || req.Revision == cur) &&
		req.MinModRevision == 0 && req.MaxModRevision == 0 &&
		req.MinCreateRevision == 0 && req.MaxCreateRevision == 0
}
