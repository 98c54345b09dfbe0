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

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	expected int64
	received atomic.Int64
}

// watchStream is one gRPC Watch stream and its watchers; watcher i has the
// client-chosen watch ID i+1.
type watchStream struct {
	stream   pb.Watch_WatchClient
	watchers []*watcher
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
	streams, err := createWatchers(wctx, &o, rec, conns, keys, putsOn)
	if err != nil {
		rec.close()
		return nil, err
	}
	var watchers []*watcher
	for _, st := range streams {
		watchers = append(watchers, st.watchers...)
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
	for _, st := range streams {
		recv.Add(1)
		go func() {
			defer recv.Done()
			receive(st, rec.probe(), putStart, putEnd, &lastEvent)
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

// createWatchers opens Streams gRPC Watch streams with WatchersPerStream
// watchers each. The watches are made on the raw stream, not through
// clientv3's Watcher: its two goroutines and channel hops per response
// cost the client more than the server's whole fan-out, so at 1,000
// watchers the client, not the server, would set the pace. Each stream
// sends its creates at once and then reads the created responses.
func createWatchers(ctx context.Context, o *Options, rec *recorder, conns []*clientv3.Client, keys []string, putsOn []int64) ([]*watchStream, error) {
	streams := make([]*watchStream, o.Streams)
	errc := make(chan error, o.Streams)
	var wg sync.WaitGroup
	for s := 0; s < o.Streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := openWatchStream(ctx, o, rec, conns[s%len(conns)], s, keys, putsOn)
			if err != nil {
				errc <- err
				return
			}
			streams[s] = st
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return streams, nil
}

// openWatchStream opens stream s and creates its watchers: watcher j
// (ID j+1) watches keys[(s*WatchersPerStream+j) % len(keys)].
func openWatchStream(ctx context.Context, o *Options, rec *recorder, c *clientv3.Client, s int, keys []string, putsOn []int64) (*watchStream, error) {
	p := rec.probe()
	defer p.flush()
	stream, err := pb.NewWatchClient(c.ActiveConnection()).Watch(ctx, grpc.ForceCodecV2(newWatchCodec()))
	if err != nil {
		return nil, fmt.Errorf("bench: opening watch stream %d: %w", s, err)
	}
	st := &watchStream{stream: stream, watchers: make([]*watcher, o.WatchersPerStream)}
	sent := make([]time.Time, o.WatchersPerStream)
	for j := range st.watchers {
		k := (s*o.WatchersPerStream + j) % len(keys)
		st.watchers[j] = &watcher{expected: putsOn[k]}
		sent[j] = time.Now()
		req := &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
			Key: []byte(keys[k]), WatchId: int64(j + 1)}}}
		if err := stream.Send(req); err != nil {
			return nil, fmt.Errorf("bench: creating watcher %d on stream %d: %w", j, s, err)
		}
	}
	for created := 0; created < o.WatchersPerStream; {
		resp, err := recvBounded(ctx, stream, o.RequestTimeout)
		if err != nil {
			return nil, fmt.Errorf("bench: creating watchers on stream %d: %w", s, err)
		}
		j := int(resp.WatchId - 1)
		switch {
		case resp.Canceled:
			return nil, fmt.Errorf("bench: creating watcher %d on stream %d: canceled: %s", j, s, resp.CancelReason)
		case !resp.Created || j < 0 || j >= len(sent):
			return nil, fmt.Errorf("bench: stream %d: expected created notifications, got a response for watch %d with %d events", s, resp.WatchId, len(resp.Events))
		}
		p.observe(kindCreate, sent[j], nil)
		created++
	}
	return st, nil
}

// recvBounded is stream.Recv failing with DeadlineExceeded after timeout.
func recvBounded(ctx context.Context, stream pb.Watch_WatchClient, timeout time.Duration) (*pb.WatchResponse, error) {
	type result struct {
		resp *pb.WatchResponse
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		resp, err := stream.Recv()
		ch <- result{resp, err}
	}()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-tm.C:
		return nil, context.DeadlineExceeded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// receive reads st until each of its watchers has all it is owed or the
// stream fails, recording each event's delay after its put returned.
func receive(st *watchStream, p *probe, putStart time.Time, putEnd []atomic.Int64, lastEvent *atomic.Int64) {
	defer p.flush()
	var owed int64
	for _, w := range st.watchers {
		owed += w.expected
	}
	var f watchFrame // watch_frame.go: only what is used here is decoded
	for owed > 0 {
		if err := st.stream.RecvMsg(&f); err != nil {
			if !errors.Is(err, context.Canceled) && status.Code(err) != codes.Canceled {
				p.observe(kindEvent, time.Now(), err)
			}
			return
		}
		j := int(f.watchID - 1)
		if j < 0 || j >= len(st.watchers) {
			continue // not ours (a progress notification)
		}
		w := st.watchers[j]
		if f.canceled {
			p.observe(kindEvent, time.Now(), fmt.Errorf("bench: watch canceled: %s", f.cancelReason))
			owed -= w.expected - w.received.Load()
			continue
		}
		now := time.Now()
		since := int64(now.Sub(putStart))
		for _, seq := range f.seqs {
			var delay time.Duration
			if seq >= 0 && seq < int64(len(putEnd)) {
				if end := putEnd[seq].Load(); end != 0 && since > end {
					delay = time.Duration(since - end)
				}
			}
			p.record(kindEvent, now, delay, nil)
		}
		w.received.Add(int64(len(f.seqs)))
		owed -= int64(len(f.seqs))
		for {
			last := lastEvent.Load()
			if since <= last || lastEvent.CompareAndSwap(last, since) {
				break
			}
		}
	}
}
