package lease

import (
	"container/heap"
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Proposer sends the primary's decisions through consensus; the server
// implements it with raft proposals. Both calls wait until the proposal
// applied (or ctx ends).
type Proposer interface {
	ProposeRevoke(ctx context.Context, id int64) error
	ProposeCheckpoint(ctx context.Context, cps []Checkpoint) error
}

// IsPrimary reports whether the lessor is primary (it runs on the leader
// and has been promoted).
func (l *Lessor) IsPrimary() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.primary
}

// Promote makes the lessor primary: every lease gets the deadline
// now + extend + (its checkpointed remaining TTL, or its TTL). The server
// calls it once the new leader has applied everything of earlier terms,
// with extend = the election timeout (etcd's rule): the clients had no
// leader to send keep-alives to during the election.
//
// With at least RevokeRate leases, deadlines are spread so that no second
// holds more than 3/4 of RevokeRate expiries: a leader change after a long
// outage must not turn every lease into one revoke storm.
func (l *Lessor) Promote(extend time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.mu.primary {
		l.mu.primary = true
		l.mu.demoted = make(chan struct{})
	}
	l.clearDeadlinesLocked()
	now := l.cfg.Now()
	for _, ls := range l.mu.leases {
		l.refreshLocked(ls, now, extend, ls.baseTTL())
		l.scheduleCheckpointLocked(ls, now, ls.baseTTL())
	}
	if len(l.mu.leases) >= l.cfg.RevokeRate {
		l.spreadLocked()
	}
}

// spreadLocked delays deadlines so that each one-second window holds at
// most 3/4 of RevokeRate of them.
// REQUIRES: l.mu held.
func (l *Lessor) spreadLocked() {
	leases := make([]*lease, 0, len(l.mu.leases))
	for _, ls := range l.mu.leases {
		leases = append(leases, ls)
	}
	slices.SortFunc(leases, func(a, b *lease) int { return a.expiry.Compare(b.expiry) })
	target := max(3*l.cfg.RevokeRate/4, 1)
	var start time.Time
	n := 0
	for _, ls := range leases {
		if n == 0 || !ls.expiry.Before(start.Add(time.Second)) {
			start, n = ls.expiry, 1
			continue
		}
		n++
		if n > target {
			start, n = start.Add(time.Second), 1
		}
		if ls.expiry.Before(start) {
			ls.expiry, ls.due = start, start
			heap.Fix(&l.mu.due, ls.hidx)
		}
	}
}

// Demote makes the lessor a follower's: no deadlines, no expiry, no
// checkpoints. Renew callers waiting on an expiring lease get ErrNotPrimary.
func (l *Lessor) Demote() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.mu.primary {
		return
	}
	l.mu.primary = false
	close(l.mu.demoted)
	l.mu.demoted = nil
	l.clearDeadlinesLocked()
}

// REQUIRES: l.mu held.
func (l *Lessor) clearDeadlinesLocked() {
	for _, ls := range l.mu.leases {
		ls.expiry, ls.due, ls.hidx, ls.cpAt = time.Time{}, time.Time{}, -1, time.Time{}
	}
	l.mu.due = nil
	l.mu.cps = nil
}

// Renew (a keep-alive) restarts lease id's full TTL on the primary and
// returns the TTL. It does not go through raft. A lease past its deadline
// is being revoked: Renew waits for that and returns ErrNotFound (or
// ErrNotPrimary if the lessor is demoted first). If the lease has a
// checkpoint, Renew first clears it through the Proposer, so that a new
// leader starts this lease from its full TTL.
func (l *Lessor) Renew(ctx context.Context, id int64) (int64, error) {
	l.mu.RLock()
	if !l.mu.primary {
		l.mu.RUnlock()
		return -1, ErrNotPrimary
	}
	demoted := l.mu.demoted
	ls := l.mu.leases[id]
	if ls == nil {
		l.mu.RUnlock()
		return -1, ErrNotFound
	}
	expired := !l.cfg.Now().Before(ls.expiry)
	clearCP := ls.remaining > 0
	revoked := ls.revoked
	l.mu.RUnlock()

	if expired {
		select {
		case <-revoked:
			return -1, ErrNotFound
		case <-demoted:
			return -1, ErrNotPrimary
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-l.stopc:
			return -1, ErrNotPrimary
		}
	}
	if clearCP && l.proposer != nil {
		if err := l.proposer.ProposeCheckpoint(ctx, []Checkpoint{{ID: id}}); err != nil {
			// The lease is renewed anyway; only a leader change before the
			// next checkpoint would start it from the stale remaining TTL.
			l.lg.Warn("clearing a lease checkpoint failed", zap.Int64("lease", id), zap.Error(err))
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.mu.primary || l.mu.demoted != demoted {
		return -1, ErrNotPrimary
	}
	if l.mu.leases[id] != ls {
		return -1, ErrNotFound
	}
	now := l.cfg.Now()
	l.refreshLocked(ls, now, 0, ls.ttl)
	l.scheduleCheckpointLocked(ls, now, ls.ttl)
	return ls.ttl, nil
}

// refreshLocked sets the deadline to now + extend + secs.
// REQUIRES: l.mu held, primary.
func (l *Lessor) refreshLocked(ls *lease, now time.Time, extend time.Duration, secs int64) {
	ls.expiry = now.Add(extend + time.Duration(secs)*time.Second)
	ls.due = ls.expiry
	if ls.hidx < 0 {
		heap.Push(&l.mu.due, ls)
	} else {
		heap.Fix(&l.mu.due, ls.hidx)
	}
}

// scheduleCheckpointLocked schedules the lease's next checkpoint, unless
// one is scheduled or its remaining TTL (secs) is within one interval.
// REQUIRES: l.mu held, primary.
func (l *Lessor) scheduleCheckpointLocked(ls *lease, now time.Time, secs int64) {
	iv := l.cfg.CheckpointInterval
	if iv < 0 || !ls.cpAt.IsZero() || time.Duration(secs)*time.Second <= iv {
		return
	}
	ls.cpAt = now.Add(iv)
	heap.Push(&l.mu.cps, cpEntry{id: ls.id, at: ls.cpAt})
}

// expired hands out up to limit leases whose deadline has passed, oldest
// first, and looks at each again after RetryInterval (in case its revoke
// is lost).
func (l *Lessor) expired(now time.Time, limit int) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []int64
	for len(ids) < limit && len(l.mu.due) > 0 {
		ls := l.mu.due[0]
		if ls.due.After(now) {
			break
		}
		ids = append(ids, ls.id)
		ls.due = now.Add(l.cfg.RetryInterval)
		heap.Fix(&l.mu.due, 0)
	}
	return ids
}

// dueCheckpoints returns up to limit checkpoints that are due: the
// remaining TTL (rounded up) of each lease whose checkpoint time has come
// and which is not full (just granted or renewed). Each lease's next
// checkpoint is scheduled as it is taken, whether or not its proposal
// applies.
func (l *Lessor) dueCheckpoints(now time.Time, limit int) []Checkpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	var cps []Checkpoint
	for len(cps) < limit && len(l.mu.cps) > 0 {
		e := l.mu.cps[0]
		if e.at.After(now) {
			break
		}
		heap.Pop(&l.mu.cps)
		ls := l.mu.leases[e.id]
		if ls == nil || !ls.cpAt.Equal(e.at) || !l.mu.primary {
			continue // revoked, or a stale entry
		}
		ls.cpAt = time.Time{}
		if !now.Before(ls.expiry) {
			continue // expired: the revoke is on its way
		}
		rem := int64(math.Ceil(ls.expiry.Sub(now).Seconds()))
		l.scheduleCheckpointLocked(ls, now, rem)
		if rem < ls.ttl && rem != ls.remaining {
			cps = append(cps, Checkpoint{ID: ls.id, RemainingTTL: rem})
		}
	}
	return cps
}

// Start starts the expiry and checkpoint loop, which acts only while the
// lessor is primary. Call it once, before Renew is used.
func (l *Lessor) Start(p Proposer) {
	l.proposer = p
	l.started = true
	ctx, cancel := context.WithCancel(context.Background())
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		<-l.stopc
		cancel()
	}()
	l.wg.Add(1)
	go l.run(ctx)
}

// Stop stops the loop and waits for the proposals it started.
func (l *Lessor) Stop() {
	if !l.started {
		return
	}
	l.started = false
	close(l.stopc)
	l.wg.Wait()
}

func (l *Lessor) run(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.Tick)
	defer t.Stop()
	lim := newLimiter(l.cfg.RevokeRate, l.cfg.Tick, l.cfg.Now())
	var cpBusy bool
	cpDone := make(chan struct{}, 1)
	for {
		select {
		case <-l.stopc:
			return
		case <-cpDone:
			cpBusy = false
			continue
		case <-t.C:
		}
		now := l.cfg.Now()
		for _, id := range l.takeExpired(now, lim) {
			l.wg.Add(1)
			go l.revoke(ctx, id)
		}
		// One checkpoint batch in flight at a time.
		if !cpBusy {
			if cps := l.dueCheckpoints(now, MaxCheckpointBatch); len(cps) > 0 {
				cpBusy = true
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					cctx, cancel := context.WithTimeout(ctx, l.cfg.RetryInterval)
					defer cancel()
					if err := l.proposer.ProposeCheckpoint(cctx, cps); err != nil {
						l.lg.Debug("lease checkpoint proposal failed", zap.Int("leases", len(cps)), zap.Error(err))
					}
					cpDone <- struct{}{}
				}()
			}
		}
	}
}

// takeExpired hands out the expired leases the rate limit allows now.
func (l *Lessor) takeExpired(now time.Time, lim *limiter) []int64 {
	n := lim.available(now)
	if n == 0 {
		return nil
	}
	ids := l.expired(now, n)
	lim.take(len(ids))
	return ids
}

func (l *Lessor) revoke(ctx context.Context, id int64) {
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RetryInterval)
	defer cancel()
	if err := l.proposer.ProposeRevoke(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		l.lg.Debug("revoking an expired lease failed; will retry", zap.Int64("lease", id), zap.Error(err))
	}
}

// limiter is a token bucket: rate tokens per second, holding at most one
// tick's worth (at least one token), so revokes are spread over time.
type limiter struct {
	rate, burst, tokens float64
	last                time.Time
}

func newLimiter(rate int, tick time.Duration, now time.Time) *limiter {
	burst := max(float64(rate)*tick.Seconds(), 1)
	return &limiter{rate: float64(rate), burst: burst, tokens: burst, last: now}
}

// available refills the bucket up to now and returns the whole tokens.
func (lm *limiter) available(now time.Time) int {
	if d := now.Sub(lm.last); d > 0 {
		lm.tokens = min(lm.tokens+lm.rate*d.Seconds(), lm.burst)
		lm.last = now
	}
	return int(lm.tokens)
}

func (lm *limiter) take(n int) { lm.tokens -= float64(n) }

// dueHeap orders leases by due time.
type dueHeap []*lease

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *dueHeap) Push(x any) {
	ls := x.(*lease)
	ls.hidx = len(*h)
	*h = append(*h, ls)
}
func (h *dueHeap) Pop() any {
	old := *h
	ls := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	ls.hidx = -1
	return ls
}

func (h *dueHeap) remove(ls *lease) {
	if ls.hidx >= 0 {
		heap.Remove(h, ls.hidx)
	}
}

// cpHeap orders scheduled checkpoints by time. Entries are lazy: one whose
// time no longer matches its lease's cpAt is dropped when it comes up.
type cpEntry struct {
	id int64
	at time.Time
}

type cpHeap []cpEntry

func (h cpHeap) Len() int           { return len(h) }
func (h cpHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h cpHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cpHeap) Push(x any)        { *h = append(*h, x.(cpEntry)) }
func (h *cpHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
