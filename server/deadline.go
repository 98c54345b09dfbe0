package server

import (
	"sync"
	"time"
)

// deadlines hands out channels that close once a delay has passed, shared
// by every request whose deadline falls in the same tick: a request waiting
// for its apply costs a map lookup instead of a timer and a context of its
// own (context.WithTimeout and its cancel were 2-4% of the member's CPU per
// put). A channel closes between delay and delay+tick after after() was
// called.
type deadlines struct {
	tick  time.Duration
	start time.Time // monotonic origin of tick numbers
	mu    struct {
		sync.Mutex
		pending map[int64]chan struct{} // by the tick number that closes it
	}
}

func newDeadlines(tick time.Duration) *deadlines {
	d := &deadlines{tick: tick, start: time.Now()}
	d.mu.pending = make(map[int64]chan struct{})
	return d
}

// after returns a channel that closes at the first tick at or past
// now+delay.
func (d *deadlines) after(delay time.Duration) <-chan struct{} {
	n := int64((time.Since(d.start) + delay + d.tick - 1) / d.tick)
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, ok := d.mu.pending[n]
	if !ok {
		ch = make(chan struct{})
		d.mu.pending[n] = ch
	}
	return ch
}

// expire closes every channel whose tick has come, as of now.
func (d *deadlines) expire(now time.Time) {
	n := int64(now.Sub(d.start) / d.tick)
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, ch := range d.mu.pending {
		if k <= n {
			close(ch)
			delete(d.mu.pending, k)
		}
	}
}

// run expires channels every tick until stop is closed.
func (d *deadlines) run(stop <-chan struct{}) {
	t := time.NewTicker(d.tick)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			d.expire(now)
		case <-stop:
			return
		}
	}
}

// deadlineTick is the precision of request timeouts: a fiftieth of the
// timeout, at least 10 ms.
func deadlineTick(timeout time.Duration) time.Duration {
	return max(timeout/50, 10*time.Millisecond)
}
