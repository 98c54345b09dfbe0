package bench

import (
	"context"
	"errors"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Histogram bounds, in microseconds: 1 µs to 60 s. Latencies past the top
// are clamped to it (and still counted).
const (
	histMinUs   = 1
	histMaxUs   = 60_000_000
	histSigFigs = 3
	// Time windows only feed the latency-over-time series; 2 digits keep
	// each at about 20 KiB. They start 100 ms wide and double (merging
	// pairs) whenever a run outgrows maxWindows, so a short run still
	// shows its shape and a long one stays bounded (~12 MiB).
	windowSigFigs = 2
	firstWindow   = 100 * time.Millisecond
	maxWindows    = 600
	// probeBatch samples are handed to the collector at once.
	probeBatch = 256
)

// sample is one finished operation.
type sample struct {
	at     int64 // completion, ns since the recorder started
	lat    int64 // ns; unused when err != ""
	kind   uint8
	err    string // error kind, "" on success
	errMsg string // set on the first error of a kind seen by a probe
	count  int64  // errors this sample stands for; 0 means 1
}

// recorder collects samples from many probes in one goroutine.
type recorder struct {
	start   time.Time
	kinds   []string
	primary []bool // kinds that make up the headline latency and throughput
	done    atomic.Int64
	ch      chan []sample
	wg      sync.WaitGroup

	// Owned by the collector goroutine until wg is done.
	hists    []*hdrhistogram.Histogram
	ok       []int64
	errs     []map[string]int64
	firstErr map[string]string
	windows  []*hdrhistogram.Histogram // by completion time, primary kinds only
	width    time.Duration             // of each window
	lastAt   int64
}

// newRecorder starts a collector for the named kinds; primary marks the
// kinds whose samples make the headline numbers (all when empty).
func newRecorder(kinds []string, primary ...string) *recorder {
	r := &recorder{
		start:    time.Now(),
		kinds:    kinds,
		primary:  make([]bool, len(kinds)),
		ch:       make(chan []sample, 64),
		ok:       make([]int64, len(kinds)),
		errs:     make([]map[string]int64, len(kinds)),
		firstErr: map[string]string{},
		width:    firstWindow,
	}
	for i, k := range kinds {
		r.hists = append(r.hists, hdrhistogram.New(histMinUs, histMaxUs, histSigFigs))
		r.errs[i] = map[string]int64{}
		r.primary[i] = len(primary) == 0
		for _, p := range primary {
			if p == k {
				r.primary[i] = true
			}
		}
	}
	r.wg.Add(1)
	go r.collect()
	return r
}

func (r *recorder) collect() {
	defer r.wg.Done()
	for batch := range r.ch {
		for _, s := range batch {
			r.add(s)
		}
	}
}

func (r *recorder) add(s sample) {
	if s.at > r.lastAt {
		r.lastAt = s.at
	}
	if s.err != "" {
		r.errs[s.kind][s.err] += max(s.count, 1)
		if _, ok := r.firstErr[s.err]; !ok && s.errMsg != "" {
			r.firstErr[s.err] = s.errMsg
		}
		return
	}
	r.ok[s.kind]++
	us := clampUs(s.lat)
	r.hists[s.kind].RecordValue(us)
	if !r.primary[s.kind] {
		return
	}
	if s.at < 0 {
		s.at = 0
	}
	w := int(s.at / int64(r.width))
	for w >= maxWindows {
		r.coarsen()
		w = int(s.at / int64(r.width))
	}
	for len(r.windows) <= w {
		r.windows = append(r.windows, nil)
	}
	if r.windows[w] == nil {
		r.windows[w] = hdrhistogram.New(histMinUs, histMaxUs, windowSigFigs)
	}
	r.windows[w].RecordValue(us)
}

// coarsen doubles the window width, merging neighbours.
func (r *recorder) coarsen() {
	merged := make([]*hdrhistogram.Histogram, (len(r.windows)+1)/2)
	for i, h := range r.windows {
		if h == nil {
			continue
		}
		if m := merged[i/2]; m == nil {
			merged[i/2] = h
		} else {
			m.Merge(h)
		}
	}
	r.windows = merged
	r.width *= 2
}

func clampUs(ns int64) int64 {
	us := ns / 1000
	if us < histMinUs {
		return histMinUs
	}
	if us > histMaxUs {
		return histMaxUs
	}
	return us
}

// close waits for every batch already sent. Probes must be flushed first.
func (r *recorder) close() {
	close(r.ch)
	r.wg.Wait()
}

// probe buffers one goroutine's samples; it is not safe for concurrent use.
type probe struct {
	r    *recorder
	buf  []sample
	seen map[string]bool
}

func (r *recorder) probe() *probe {
	return &probe{r: r, buf: make([]sample, 0, probeBatch), seen: map[string]bool{}}
}

// observe records an operation of the given kind that started at start and
// ended now with err.
func (p *probe) observe(kind int, start time.Time, err error) {
	now := time.Now()
	p.record(kind, now, now.Sub(start), err)
}

// record records a finished operation with an explicit completion time and
// latency (watch events measure from another goroutine's clock).
func (p *probe) record(kind int, at time.Time, lat time.Duration, err error) {
	s := sample{at: int64(at.Sub(p.r.start)), lat: int64(lat), kind: uint8(kind)}
	if err != nil {
		s.err = errorKind(err)
		if !p.seen[s.err] {
			p.seen[s.err] = true
			s.errMsg = err.Error()
		}
	}
	if p.r.primary[kind] {
		p.r.done.Add(1)
	}
	p.buf = append(p.buf, s)
	if len(p.buf) == cap(p.buf) {
		p.flush()
	}
}

// fail records n failures of one kind at once (events that never came).
func (p *probe) fail(kind int, n int64, err error) {
	if n <= 0 {
		return
	}
	s := sample{at: int64(time.Since(p.r.start)), kind: uint8(kind), err: errorKind(err), count: n}
	if !p.seen[s.err] {
		p.seen[s.err] = true
		s.errMsg = err.Error()
	}
	if p.r.primary[kind] {
		p.r.done.Add(n)
	}
	p.buf = append(p.buf, s)
	if len(p.buf) == cap(p.buf) {
		p.flush()
	}
}

// restartClock makes t time zero of the per-second series.
//
// REQUIRES: no probe of r records concurrently (between phases).
func (r *recorder) restartClock(t time.Time) {
	r.start = t
}

// flush hands the buffered samples to the collector.
func (p *probe) flush() {
	if len(p.buf) == 0 {
		return
	}
	p.r.ch <- p.buf
	p.buf = make([]sample, 0, probeBatch)
}

// errorKind names an error for the per-kind error counts: the gRPC code
// for server errors, "timeout" past the request deadline, "conn" for
// transport failures.
func errorKind(err error) string {
	var hs httpStatusError
	var ne net.Error
	var coded interface{ Code() codes.Code }
	switch {
	case errors.As(err, &hs):
		return hs.kind()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errMissedEvent):
		return "missed-event"
	case errors.As(err, &coded):
		if c := coded.Code(); c == codes.DeadlineExceeded {
			return "timeout"
		} else {
			return c.String()
		}
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		if st.Code() == codes.DeadlineExceeded {
			return "timeout"
		}
		return st.Code().String()
	}
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return "timeout"
		}
		return "conn"
	}
	return "other"
}

// sortedKinds returns the keys of m in a stable order.
func sortedKinds(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
