package mvcc

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metastore/metastore/engine"
)

// Defaults follow etcd's.
const (
	DefaultMaxRequestBytes      = 1572864 // 1.5 MiB, etcd's --max-request-bytes
	DefaultMaxTxnOps            = 128     // etcd's --max-txn-ops
	DefaultCompactionBatchLimit = 1000    // changes examined per compaction batch
	DefaultMaxApplyEvents       = 10000   // events one Apply keeps for the watch hub
	// DefaultCompactionSleepInterval is the pause between compaction
	// batches (etcd's --compaction-sleep-interval), so that compaction
	// yields the disk and CPU to writes instead of running back to back.
	DefaultCompactionSleepInterval = 10 * time.Millisecond
)

// LeaseIndex is what the store needs from the lease manager: whether a lease
// exists, and which keys are attached to it. lease/ implements it and
// server/ wires it in; mvcc never imports lease/.
type LeaseIndex interface {
	Exists(id int64) bool
	Attach(id int64, key []byte)
	Detach(id int64, key []byte)
}

// Config tunes a Store. Zero fields take the defaults above.
type Config struct {
	MaxRequestBytes      int
	MaxTxnOps            int
	CompactionBatchLimit int
	// CompactionSleepInterval is the pause between compaction batches
	// (0: the default; negative: no pause).
	CompactionSleepInterval time.Duration
	// Leases may be nil: then every Put with a lease fails with ErrLeaseNotFound.
	Leases LeaseIndex
	// LatestCacheBytes bounds the apply path's cache of each key's newest
	// version metadata (latest.go); 0: DefaultLatestCacheBytes; negative:
	// no cache.
	LatestCacheBytes int
	// ReadCacheBytes bounds the cache of keys' newest versions that
	// one-key ranges at the current revision read (readcache.go); 0:
	// DefaultReadCacheBytes; negative: no cache.
	ReadCacheBytes int
	// MaxApplyEvents bounds the events one Apply keeps in memory for the
	// watch hub (0: DefaultMaxApplyEvents). Past it the Apply keeps none
	// and its Result says so: watchers then read those revisions back from
	// the change log, as after any gap. A DeleteRange of a million keys
	// would otherwise hold a million events (and their previous versions)
	// until the fan-out had passed them on.
	MaxApplyEvents int
}

func (c Config) withDefaults() Config {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.LatestCacheBytes == 0 {
		c.LatestCacheBytes = DefaultLatestCacheBytes
	}
	if c.ReadCacheBytes == 0 {
		c.ReadCacheBytes = DefaultReadCacheBytes
	}
	if c.MaxApplyEvents <= 0 {
		c.MaxApplyEvents = DefaultMaxApplyEvents
	}
	if c.CompactionBatchLimit <= 0 {
		c.CompactionBatchLimit = DefaultCompactionBatchLimit
	}
	if c.CompactionSleepInterval == 0 {
		c.CompactionSleepInterval = DefaultCompactionSleepInterval
	}
	return c
}

// Store is an MVCC keyspace over an engine. Reads are safe for concurrent
// use; writes go through one Apply at a time.
type Store struct {
	eng engine.Engine
	cfg Config

	// currentRev is the newest committed main revision. Readers load it
	// once per request; it is published only after the batch holding that
	// revision has committed.
	currentRev atomic.Int64
	// compactRev is the newest scheduled compaction revision: reads below
	// it fail. It is raised before any version at or below it is deleted.
	// It is noCompaction (-1, etcd's value) until the first compaction, so
	// that Compact(0) is accepted once, as etcd does.
	compactRev atomic.Int64
	// finishedRev is the newest compaction whose physical deletion is done
	// (noCompaction until the first).
	finishedRev atomic.Int64

	// applyMu serialises Apply batches (the server has one apply goroutine;
	// this guards against misuse). Lock order: applyMu, then compactor.mu.
	applyMu sync.Mutex

	compactor *compactor
	closed    atomic.Bool

	// onCommit, when set, is called after every committed Apply that wrote
	// something, from the apply goroutine, with the revision published. It
	// must not block (the watch hub queues and returns).
	onCommit func(Result)

	// prevWatchers counts the watchers that asked for prev_kv (the hub
	// keeps it). With none, writes leave the previous value out of their
	// events' PrevKv, and the hub reads it back if such a watcher turns up
	// before the fan-out (Result.lazyPrev).
	prevWatchers atomic.Int64

	// latest caches the newest version's metadata of keys for the apply
	// path only (latest.go); guarded by applyMu.
	latest *latestCache
	// reads caches keys' newest live versions for one-key ranges
	// (readcache.go).
	reads *readCache
}

// SetCommitHook registers fn to be called after each committed Apply that
// wrote events (see Store.onCommit). Set it before the first Apply.
func (s *Store) SetCommitHook(fn func(Result)) { s.onCommit = fn }

// Open loads (or initialises) the keyspace kept in eng and starts the
// background compactor, resuming an unfinished compaction.
func Open(eng engine.Engine, cfg Config) (*Store, error) {
	s := &Store{eng: eng, cfg: cfg.withDefaults()}
	s.latest = newLatestCache(s.cfg.LatestCacheBytes)
	s.reads = newReadCache(s.cfg.ReadCacheBytes)
	if _, err := upgradeKeyFormat(eng); err != nil {
		return nil, err
	}
	rev, err := readMetaInt(eng, metaCurrentRev, 1)
	if err != nil {
		return nil, err
	}
	scheduled, err := readMetaInt(eng, metaScheduledRev, noCompaction)
	if err != nil {
		return nil, err
	}
	finished, err := readMetaInt(eng, metaFinishedRev, noCompaction)
	if err != nil {
		return nil, err
	}
	if scheduled > rev || finished > scheduled {
		return nil, fmt.Errorf("%w: revisions current=%d compact scheduled=%d finished=%d",
			ErrCorruptRecord, rev, scheduled, finished)
	}
	s.currentRev.Store(rev)
	s.compactRev.Store(scheduled)
	s.finishedRev.Store(finished)
	s.compactor = newCompactor(s)
	if scheduled > finished {
		s.compactor.schedule(scheduled)
	}
	return s, nil
}

func readMetaInt(r engine.Reader, key []byte, def int64) (int64, error) {
	b, err := r.Get(engine.Meta, key)
	if errors.Is(err, engine.ErrNotFound) {
		return def, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mvcc: reading %s: %w", key, err)
	}
	v, err := decodeInt64(b)
	if err != nil {
		return 0, fmt.Errorf("mvcc: reading %s: %w", key, err)
	}
	return v, nil
}

// Rev returns the current (newest committed) revision.
func (s *Store) Rev() int64 { return s.currentRev.Load() }

// noCompaction is the compaction revision of a store never compacted, as
// etcd reports it (HashKV's compact_revision -1).
const noCompaction = -1

// CompactRev returns the compaction revision: reads below it fail with
// ErrCompacted. It is -1 until the first compaction.
func (s *Store) CompactRev() int64 { return s.compactRev.Load() }

// Config returns the store's effective configuration.
func (s *Store) Config() Config { return s.cfg }

// Engine returns the engine the store keeps its keyspace in.
func (s *Store) Engine() engine.Engine { return s.eng }

// WaitCompaction blocks until physical compaction up to rev has finished
// (or the store closes).
func (s *Store) WaitCompaction(rev int64) { s.compactor.wait(rev) }

// Close stops the compactor. It does not close the engine.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.compactor.stop()
	return nil
}

// Reload re-reads the revisions from the engine after its contents were
// replaced wholesale (a raft snapshot restore, whose data keys come in key
// format 1: see AppendPortableStateKey). No Apply may be open.
func (s *Store) Reload() error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if _, err := upgradeKeyFormat(s.eng); err != nil {
		return err
	}
	rev, err := readMetaInt(s.eng, metaCurrentRev, 1)
	if err != nil {
		return err
	}
	scheduled, err := readMetaInt(s.eng, metaScheduledRev, noCompaction)
	if err != nil {
		return err
	}
	finished, err := readMetaInt(s.eng, metaFinishedRev, noCompaction)
	if err != nil {
		return err
	}
	s.latest.reset()
	s.reads.clear()
	s.currentRev.Store(rev)
	s.reads.clear() // reads between the two saw the old revision
	s.compactRev.Store(scheduled)
	s.finishedRev.Store(finished)
	if scheduled > finished {
		s.compactor.schedule(scheduled)
	}
	return nil
}
