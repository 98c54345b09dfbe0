package server

import (
	"sync"
	"sync/atomic"
	"time"
)

// idGenerator makes request ids unique across members and restarts: the
// top 16 bits are the low 16 bits of the member id; the rest is a counter
// seeded from the clock in milliseconds (shifted to leave room for 256
// requests per millisecond of downtime), as etcd's idutil does.
type idGenerator struct {
	prefix uint64
	next   atomic.Uint64
}

const idSuffixBits = 48

func newIDGenerator(memberID uint64, now time.Time) *idGenerator {
	g := &idGenerator{prefix: (memberID & 0xFFFF) << idSuffixBits}
	ms := uint64(now.UnixMilli()) & (1<<40 - 1)
	g.next.Store(ms << 8)
	return g
}

func (g *idGenerator) id() uint64 {
	return g.prefix | (g.next.Add(1) & (1<<idSuffixBits - 1))
}

// result is what a waiter receives once its entry is applied.
type result struct {
	resp    any
	err     error
	dropped bool // raft did not take the proposal (err says why)
}

// waiters maps request ids to the channels of the callers waiting for them.
type waiters struct {
	mu struct {
		sync.Mutex
		m map[uint64]chan result
	}
}

func newWaiters() *waiters {
	w := &waiters{}
	w.mu.m = make(map[uint64]chan result)
	return w
}

// register returns the channel on which id's result arrives; the second
// value is how many waiters there are now.
func (w *waiters) register(id uint64) (<-chan result, int) {
	ch := make(chan result, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.m[id] = ch
	return ch, len(w.mu.m)
}

func (w *waiters) cancel(id uint64) {
	w.mu.Lock()
	delete(w.mu.m, id)
	w.mu.Unlock()
}

// trigger hands r to id's waiter, if this member has one.
func (w *waiters) trigger(id uint64, r result) {
	w.mu.Lock()
	ch, ok := w.mu.m[id]
	delete(w.mu.m, id)
	w.mu.Unlock()
	if ok {
		ch <- r
	}
}

func (w *waiters) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.mu.m)
}
