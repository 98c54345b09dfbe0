package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/term"
)

// opFunc runs operation n (0-based, over all clients) on client c and
// returns the index of its kind in the recorder and its error.
type opFunc func(ctx context.Context, c int, n int64) (kind int, err error)

// runOps runs op on Clients goroutines until Total operations were issued
// or Duration passed (or ctx ends), pacing them at Rate when it is set. It
// returns the wall time from the first operation to the last completion.
//
// NB: an operation in flight when Duration passes still completes (within
// RequestTimeout): its deadline derives from ctx, not from the run's.
func (o *Options) runOps(ctx context.Context, rec *recorder, desc string, op opFunc) time.Duration {
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if o.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
	}
	defer cancel()
	prog := startProgress(o.Progress, desc, o.Total, o.Duration, &rec.done)
	defer prog.stop()

	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < o.Clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := rec.probe()
			defer p.flush()
			for {
				n := next.Add(1) - 1
				if !o.wantsCount(n) || runCtx.Err() != nil {
					return
				}
				if o.Rate > 0 && !sleepUntil(runCtx, start.Add(time.Duration(float64(n)/o.Rate*float64(time.Second)))) {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, o.RequestTimeout)
				t0 := time.Now()
				kind, err := op(rctx, c, n)
				p.observe(kind, t0, err)
				rcancel()
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// sleepUntil waits for t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dial opens Conns clients, connection i to endpoint i mod len(Endpoints)
// as etcd's benchmark does, or all to the leader with TargetLeader.
func (o *Options) dial(ctx context.Context) ([]*clientv3.Client, error) {
	eps := o.Endpoints
	if o.TargetLeader {
		leader, err := o.leaderEndpoint(ctx)
		if err != nil {
			return nil, err
		}
		eps = []string{leader}
	}
	conns := make([]*clientv3.Client, 0, o.Conns)
	for i := 0; i < o.Conns; i++ {
		c, err := o.newClient(ctx, eps[i%len(eps)])
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func (o *Options) newClient(ctx context.Context, endpoint string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: o.DialTimeout,
		Context:     ctx,
		Logger:      zap.NewNop(),
		// A benchmark value may exceed the default 2 MiB receive limit in
		// a range; the server's own request limit still applies.
		MaxCallRecvMsgSize: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: connecting to %s: %w", endpoint, err)
	}
	// clientv3 connects lazily in newer versions: prove the endpoint
	// answers so a wrong address fails here, once, not per operation.
	sctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	if _, err := c.Status(sctx, endpoint); err != nil {
		c.Close()
		return nil, fmt.Errorf("bench: connecting to %s: %w", endpoint, err)
	}
	return c, nil
}

// leaderEndpoint asks the endpoints for the leader and returns the
// endpoint of the member that is it.
func (o *Options) leaderEndpoint(ctx context.Context) (string, error) {
	var lastErr error
	for _, ep := range o.Endpoints {
		c, err := o.newClient(ctx, ep)
		if err != nil {
			lastErr = err
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
		st, err := c.Status(sctx, ep)
		cancel()
		c.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if st.Leader != 0 && st.Leader == st.Header.MemberId {
			return ep, nil
		}
	}
	if lastErr != nil {
		return "", fmt.Errorf("bench: finding the leader: %w", lastErr)
	}
	return "", fmt.Errorf("bench: finding the leader: none of %v leads", o.Endpoints)
}

func closeAll(conns []*clientv3.Client) {
	for _, c := range conns {
		c.Close()
	}
}

// ProgressWriter returns f when it is a terminal and nil otherwise: a
// progress bar only helps a person watching, and would litter a log.
func ProgressWriter(f *os.File) io.Writer {
	if f != nil && term.IsTerminal(int(f.Fd())) {
		return f
	}
	return nil
}

// progress redraws a bar from the recorder's completion counter, so the
// operations themselves never touch it.
type progress struct {
	quit chan struct{}
	wg   sync.WaitGroup
}

func startProgress(w io.Writer, desc string, total int64, dur time.Duration, done *atomic.Int64) *progress {
	p := &progress{quit: make(chan struct{})}
	if w == nil {
		return p
	}
	byTime := total == 0
	max := total
	if byTime {
		max = dur.Milliseconds()
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	start := time.Now()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.quit:
				bar.Finish()
				return
			case <-tick.C:
				if byTime {
					bar.Set64(min(time.Since(start).Milliseconds(), max))
				} else {
					bar.Set64(min(done.Load(), max))
				}
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	select {
	case <-p.quit:
		return
	default:
	}
	close(p.quit)
	p.wg.Wait()
}
