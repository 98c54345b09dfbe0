package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// errMissedEvent counts events a watcher was owed but never received.
var errMissedEvent = errors.New("bench: watcher did not receive every event")

// Watch measures fan-out: Streams x WatchersPerStream watchers spread over
// WatchedKeys keys, then Total puts cycling over those keys; the headline
// is events delivered per second over all watchers.
func Watch(ctx context.Context, o Options) (*Result, error) {
	return watchBench(ctx, o, "watch")
}

// WatchLatency measures event delay: the watchers (usually on one key) see
// Total puts paced at Rate; the headline is the delay from each Put's
// return to each watcher's receipt of its event.
func WatchLatency(ctx context.Context, o Options) (*Result, error) {
	return watchBench(ctx, o, "watch-latency")
}

const (
	kindCreate = iota
	kindPut
	kindEvent
)

// watcher is one watch and what it is owed.
type watcher struct {
	ch       clientv3.WatchChan
	expected int64
	received atomic.Int64
}

func watchBench(ctx context.Context, o Options, workload string) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	switch {
	case o.Total <= 0:
		return nil, fmt.Errorf("%w: %s needs --total (the number of puts)", ErrBadOption, workload)
	case o.ValSize < 8:
		return nil, fmt.Errorf("%w: %s needs --val-size of at least 8 (the put's sequence number)", ErrBadOption, workload)
	case o.Streams < 1 || o.WatchersPerStream < 1 || o.WatchedKeys < 1:
		return nil, fmt.Errorf("%w: --streams, --watchers-per-stream and --watched-key-total must be at least 1", ErrBadOption)
	case int64(o.WatchedKeys) > o.KeySpaceSize && o.KeySpaceSize > 1:
		return nil, fmt.Errorf("%w: --watched-key-total %d exceeds --key-space-size %d", ErrBadOption, o.WatchedKeys, o.KeySpaceSize)
	}
	if d := len(fmt.Sprint(o.WatchedKeys - 1)); d > o.KeySize {
		return nil, fmt.Errorf("%w: --watched-key-total %d needs keys of %d digits, more than --key-size %d", ErrBadOption, o.WatchedKeys, d, o.KeySize)
	}
	conns, err := o.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)

	keys := make([]string, o.WatchedKeys)
	for i := range keys {
		keys[i] = o.keyFor(int64(i))
	}
	// Puts cycle over the keys: put n goes to keys[n % len(keys)].
	putsOn := make([]int64, len(keys))
	for i := range putsOn {
		putsOn[i] = o.Total / int64(len(keys))
		if int64(i) < o.Total%int64(len(keys)) {
			putsOn[i]++
		}
	}

	rec := newRecorder([]string{"create", "put", "event"}, "event")
	wctx, stopWatches := context.WithCancel(ctx)
	defer stopWatches()

	// Step 1: create the watchers, each stream on its own goroutine, and
	// wait for each one's created notification.
	watchers, err := createWatchers(wctx, &o, rec, conns, keys, putsOn)
	if err != nil {
		rec.close()
		return nil, err
	}

	// Step 2: start a receiver per watcher.
	putStart := time.Now()
	rec.restartClock(putStart)
	var lastEvent atomic.Int64 // ns since putStart
	putEnd := make([]atomic.Int64, o.Total)
	var expected int64
	for _, w := range watchers {
		expected += w.expected
	}
	var recv sync.WaitGroup
	for _, w := range watchers {
		recv.Add(1)
		go func() {
			defer recv.Done()
			receive(w, rec.probe(), putStart, putEnd, &lastEvent)
		}()
	}
	popts := o
	popts.Progress = nil
	prog := startProgress(o.Progress, workload, expected, 0, &rec.done)

	// Step 3: the puts, stamped with their sequence number.
	pad := strings.Repeat("v", o.ValSize-8)
	putDur := popts.runOps(ctx, rec, workload, func(ctx context.Context, c int, n int64) (int, error) {
		var seq [8]byte
		binary.BigEndian.PutUint64(seq[:], uint64(n))
		_, err := conns[c%len(conns)].Put(ctx, keys[n%int64(len(keys))], string(seq[:])+pad)
		if err == nil {
			putEnd[n].Store(int64(time.Since(putStart)) | 1) // never 0: 0 means "not yet"
		}
		return kindPut, err
	})

	// Step 4: wait for every event, at most RequestTimeout after the last
	// put, then count what never came.
	done := make(chan struct{})
	go func() { recv.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(o.RequestTimeout):
	case <-ctx.Done():
	}
	stopWatches()
	<-done
	prog.stop()
	p := rec.probe()
	var received int64
	for _, w := range watchers {
		got := w.received.Load()
		received += got
		p.fail(kindEvent, w.expected-got, errMissedEvent)
	}
	p.flush()

	elapsed := time.Duration(lastEvent.Load())
	if received < expected || elapsed <= 0 {
		elapsed = time.Since(putStart)
	}
	res := rec.result(workload, &o, elapsed)
	res.Unit = "events"
	res.Extra = map[string]float64{
		"watchers":        float64(len(watchers)),
		"events_expected": float64(expected),
		"events_received": float64(received),
		"puts_per_sec":    float64(o.Total) / putDur.Seconds(),
	}
	return res, nil
}

// createWatchers opens Streams watch streams (each its own clientv3
// Watcher, so its own gRPC stream) with WatchersPerStream watchers each.
func createWatchers(ctx context.Context, o *Options, rec *recorder, conns []*clientv3.Client, keys []string, putsOn []int64) ([]*watcher, error) {
	watchers := make([]*watcher, o.Streams*o.WatchersPerStream)
	errc := make(chan error, o.Streams)
	var wg sync.WaitGroup
	for s := 0; s < o.Streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := rec.probe()
			defer p.flush()
			wc := clientv3.NewWatcher(conns[s%len(conns)])
			go func() { <-ctx.Done(); wc.Close() }()
			for j := 0; j < o.WatchersPerStream; j++ {
				i := s*o.WatchersPerStream + j
				k := i % len(keys)
				t0 := time.Now()
				ch := wc.Watch(ctx, keys[k], clientv3.WithCreatedNotify())
				err := awaitCreated(ctx, ch, o.RequestTimeout)
				p.observe(kindCreate, t0, err)
				if err != nil {
					errc <- fmt.Errorf("bench: creating watcher %d on %q: %w", i, keys[k], err)
					return
				}
				watchers[i] = &watcher{ch: ch, expected: putsOn[k]}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return watchers, nil
}

// awaitCreated waits for the created notification of a new watch.
func awaitCreated(ctx context.Context, ch clientv3.WatchChan, timeout time.Duration) error {
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case resp, ok := <-ch:
		switch {
		case !ok:
			return errors.New("watch channel closed before it was created")
		case resp.Err() != nil:
			return resp.Err()
		case !resp.Created:
			return fmt.Errorf("first watch response was not the created notification (%d events)", len(resp.Events))
		}
		return nil
	case <-tm.C:
		return context.DeadlineExceeded
	case <-ctx.Done():
		return ctx.Err()
	}
}

// receive counts w's events until it has all it is owed or its channel
// closes, recording each event's delay after its put returned.
func receive(w *watcher, p *probe, putStart time.Time, putEnd []atomic.Int64, lastEvent *atomic.Int64) {
	defer p.flush()
	for w.received.Load() < w.expected {
		resp, ok := <-w.ch
		if !ok {
			return
		}
		if err := resp.Err(); err != nil {
			p.observe(kindEvent, time.Now(), err)
			return
		}
		now := time.Now()
		since := int64(now.Sub(putStart))
		for _, ev := range resp.Events {
			var delay time.Duration
			if v := ev.Kv.Value; len(v) >= 8 {
				seq := binary.BigEndian.Uint64(v[:8])
				if seq < uint64(len(putEnd)) {
					if end := putEnd[seq].Load(); end != 0 && since > end {
						delay = time.Duration(since - end)
					}
				}
			}
			p.record(kindEvent, now, delay, nil)
			w.received.Add(1)
		}
		for {
			last := lastEvent.Load()
			if since <= last || lastEvent.CompareAndSwap(last, since) {
				break
			}
		}
	}
}
