package lease

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/metastore/metastore/engine"
)

// NoLease is the lease id of a key without a lease.
const NoLease int64 = 0

// MaxTTL is the longest TTL a lease may be granted, in seconds (etcd's).
const MaxTTL int64 = 9_000_000_000

// Defaults follow etcd's where etcd has the setting.
const (
	DefaultCheckpointInterval = 5 * time.Minute
	DefaultRevokeRate         = 1000 // expired leases revoked per second
	DefaultRetryInterval      = 3 * time.Second
	DefaultTick               = 100 * time.Millisecond
	// MaxCheckpointBatch is the most checkpoints proposed in one entry.
	MaxCheckpointBatch = 1000
)

var (
	ErrNotFound    = errors.New("lease: lease not found")
	ErrExists      = errors.New("lease: lease already exists")
	ErrTTLTooLarge = errors.New("lease: too large lease TTL")
	// ErrNotPrimary: the operation needs the primary (leader) lessor.
	ErrNotPrimary = errors.New("lease: not the primary lessor")
)

// Config tunes a Lessor. Zero fields take the defaults above.
type Config struct {
	// MinTTL (seconds): shorter grants are raised to it. etcd uses
	// ceil(1.5 * election timeout), so a lease outlives a leader election.
	MinTTL int64
	// CheckpointInterval between checkpoints of a lease's remaining TTL;
	// negative disables checkpointing.
	CheckpointInterval time.Duration
	// RevokeRate bounds the expired leases revoked per second.
	RevokeRate int
	// RetryInterval: an expired lease whose revoke did not apply is handed
	// out again after it.
	RetryInterval time.Duration
	// Tick is how often the loop looks for expired leases and checkpoints.
	Tick time.Duration
	// Now is the clock (tests set it).
	Now    func() time.Time
	Logger *zap.Logger
}

func (c Config) withDefaults() Config {
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.RevokeRate <= 0 {
		c.RevokeRate = DefaultRevokeRate
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.Tick <= 0 {
		c.Tick = DefaultTick
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Writer takes the records the replicated side writes: the apply batch.
type Writer interface {
	Put(ks engine.Keyspace, key, value []byte)
	Delete(ks engine.Keyspace, key []byte)
}

// DeleteFunc deletes keys in one revision; Revoke calls it with the keys of
// the lease, sorted. The server passes mvcc's Apply.DeleteKeys.
type DeleteFunc func(keys [][]byte) error

// Checkpoint records a lease's remaining TTL (seconds); 0 clears it.
type Checkpoint struct {
	ID           int64
	RemainingTTL int64
}

// Status is what TimeToLive reports.
type Status struct {
	ID         int64
	GrantedTTL int64
	// TTL is the remaining time in whole seconds, rounded down (etcd's).
	TTL int64
	// Keys are the attached keys, sorted (only when asked for).
	Keys [][]byte
}

// lease is one lease. All fields are guarded by Lessor.mu.
type lease struct {
	id  int64
	ttl int64
	// remaining is the checkpointed remaining TTL in seconds (0: none).
	remaining int64
	// expiry is the deadline on the primary; zero elsewhere (never).
	expiry time.Time
	// due is when the expiry loop looks at the lease next: expiry, or a
	// retry time once it was handed out for revoking.
	due  time.Time
	hidx int // index in the due heap, -1 when not in it
	// cpAt is when the next checkpoint is due (zero: none scheduled).
	cpAt    time.Time
	keys    map[string]struct{}
	revoked chan struct{} // closed when the lease is revoked
}

// baseTTL is what a deadline is computed from: the checkpointed remaining
// TTL when there is one, else the granted TTL.
func (l *lease) baseTTL() int64 {
	if l.remaining > 0 {
		return l.remaining
	}
	return l.ttl
}

// Lessor owns the leases. It is safe for concurrent use; the replicated
// side must be called from one goroutine in log order.
type Lessor struct {
	cfg Config
	lg  *zap.Logger

	// mu guards the lease set and the primary state. It is a leaf lock:
	// nothing is called out of the package while it is held.
	mu struct {
		sync.RWMutex
		leases  map[int64]*lease
		primary bool
		// demoted is closed when the lessor stops being primary.
		demoted chan struct{}
		due     dueHeap
		cps     cpHeap
	}

	proposer Proposer
	stopc    chan struct{}
	wg       sync.WaitGroup
	started  bool
}

// New returns an empty, non-primary Lessor. Load fills it.
func New(cfg Config) *Lessor {
	cfg = cfg.withDefaults()
	l := &Lessor{cfg: cfg, lg: cfg.Logger, stopc: make(chan struct{})}
	l.mu.leases = make(map[int64]*lease)
	return l
}

// Grant creates lease id with ttl seconds (raised to MinTTL) and writes its
// record to w. It returns the granted TTL.
func (l *Lessor) Grant(w Writer, id, ttl int64) (int64, error) {
	if id == NoLease {
		return 0, ErrNotFound
	}
	if ttl > MaxTTL {
		return 0, ErrTTLTooLarge
	}
	ttl = max(ttl, l.cfg.MinTTL)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.mu.leases[id]; ok {
		return 0, ErrExists
	}
	ls := &lease{id: id, ttl: ttl, hidx: -1, keys: make(map[string]struct{}), revoked: make(chan struct{})}
	l.mu.leases[id] = ls
	if l.mu.primary {
		now := l.cfg.Now()
		l.refreshLocked(ls, now, 0, ttl)
		l.scheduleCheckpointLocked(ls, now, ttl)
	}
	w.Put(engine.Meta, recordKey(id), encodeRecord(ls))
	return ttl, nil
}

// Revoke deletes the keys of lease id through del (one revision), removes
// the lease and deletes its record through w. An unknown id is ErrNotFound.
// If del fails the lease stays.
func (l *Lessor) Revoke(w Writer, id int64, del DeleteFunc) error {
	l.mu.RLock()
	ls := l.mu.leases[id]
	var keys [][]byte
	if ls != nil {
		keys = sortedKeys(ls)
	}
	l.mu.RUnlock()
	if ls == nil {
		return ErrNotFound
	}
	// NB: del runs without l.mu: mvcc calls Detach for each key it deletes.
	if len(keys) > 0 && del != nil {
		if err := del(keys); err != nil {
			return err
		}
	}
	l.mu.Lock()
	delete(l.mu.leases, id)
	l.mu.due.remove(ls)
	close(ls.revoked)
	l.mu.Unlock()
	w.Delete(engine.Meta, recordKey(id))
	return nil
}

// Checkpoint records the remaining TTLs of cps (unknown leases are
// skipped) and persists them through w.
func (l *Lessor) Checkpoint(w Writer, cps []Checkpoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, cp := range cps {
		ls := l.mu.leases[cp.ID]
		if ls == nil {
			continue
		}
		ls.remaining = max(cp.RemainingTTL, 0)
		w.Put(engine.Meta, recordKey(ls.id), encodeRecord(ls))
	}
}

// Exists reports whether lease id exists (mvcc.LeaseIndex).
func (l *Lessor) Exists(id int64) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.mu.leases[id]
	return ok
}

// Attach adds key to lease id's keys (mvcc.LeaseIndex). An unknown lease
// is ignored: mvcc checks Exists before it writes.
func (l *Lessor) Attach(id int64, key []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls := l.mu.leases[id]; ls != nil {
		ls.keys[string(key)] = struct{}{}
	}
}

// Detach removes key from lease id's keys (mvcc.LeaseIndex).
func (l *Lessor) Detach(id int64, key []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls := l.mu.leases[id]; ls != nil {
		delete(ls.keys, string(key))
	}
}

// Leases returns the ids of every lease, sorted.
func (l *Lessor) Leases() []int64 {
	l.mu.RLock()
	ids := make([]int64, 0, len(l.mu.leases))
	for id := range l.mu.leases {
		ids = append(ids, id)
	}
	l.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

// Keys returns the keys attached to lease id, sorted.
func (l *Lessor) Keys(id int64) ([][]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ls := l.mu.leases[id]
	if ls == nil {
		return nil, ErrNotFound
	}
	return sortedKeys(ls), nil
}

// TimeToLive reports lease id's granted and remaining TTL (and its keys
// when withKeys is set). Only the primary knows deadlines: elsewhere it
// fails with ErrNotPrimary.
func (l *Lessor) TimeToLive(id int64, withKeys bool) (Status, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ls := l.mu.leases[id]
	if ls == nil {
		return Status{}, ErrNotFound
	}
	if !l.mu.primary {
		return Status{}, ErrNotPrimary
	}
	st := Status{ID: id, GrantedTTL: ls.ttl, TTL: max(int64(ls.expiry.Sub(l.cfg.Now()).Seconds()), 0)}
	if withKeys {
		st.Keys = sortedKeys(ls)
	}
	return st, nil
}

// REQUIRES: l.mu held (read or write).
func sortedKeys(ls *lease) [][]byte {
	keys := make([][]byte, 0, len(ls.keys))
	for k := range ls.keys {
		keys = append(keys, []byte(k))
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys
}
