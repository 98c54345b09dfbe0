package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorKind(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"deadline", context.DeadlineExceeded, "timeout"},
		{"wrapped deadline", fmt.Errorf("put: %w", context.DeadlineExceeded), "timeout"},
		{"canceled", context.Canceled, "canceled"},
		{"grpc status", status.Error(codes.Unavailable, "no leader"), "Unavailable"},
		{"grpc deadline status", status.Error(codes.DeadlineExceeded, "slow"), "timeout"},
		{"etcd client error", rpctypes.ErrTooManyRequests, "ResourceExhausted"},
		{"etcd compacted", rpctypes.ErrCompacted, "OutOfRange"},
		{"http status", httpStatusError{code: 503, body: "busy"}, "http-503"},
		{"net timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, "timeout"},
		{"net refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, "conn"},
		{"missed events", errMissedEvent, "missed-event"},
		{"anything else", errors.New("boom"), "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, errorKind(tt.err))
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestRecorder_CountsAndPercentiles(t *testing.T) {
	t.Logf("Step 1: 4 probes record 1..1000 ms (each value once) plus errors")
	rec := newRecorder([]string{"put", "get"}, "put")
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := rec.probe()
			defer p.flush()
			now := time.Now()
			for v := w; v < 1000; v += 4 {
				p.record(0, now, time.Duration(v+1)*time.Millisecond, nil)
			}
			p.record(1, now, time.Millisecond, nil)
			p.record(0, now, 0, status.Error(codes.Unavailable, fmt.Sprintf("down %d", w)))
		}()
	}
	wg.Wait()
	p := rec.probe()
	p.fail(0, 10, errMissedEvent)
	p.flush()

	t.Logf("Step 2: summarise")
	o := DefaultOptions()
	res := rec.result("put", &o, 2*time.Second)

	t.Logf("Step 3: headline counts only the primary kind")
	require.Equal(t, int64(1000), res.Succeeded)
	require.Equal(t, int64(14), res.Failed)
	require.Equal(t, int64(1014), res.Ops)
	require.Equal(t, map[string]int64{"Unavailable": 4, "missed-event": 10}, res.Errors)
	require.Contains(t, res.FirstErrors["Unavailable"], "down ")
	require.InDelta(t, 500, res.Throughput, 1e-9)

	t.Logf("Step 4: percentiles within HDR's 3 significant digits")
	require.InDelta(t, 500, res.Latency.P50, 1)
	require.InDelta(t, 900, res.Latency.P90, 1)
	require.InDelta(t, 990, res.Latency.P99, 1)
	require.InDelta(t, 999, res.Latency.P999, 1)
	require.InDelta(t, 1000, res.Latency.Max, 1)
	require.InDelta(t, 500.5, res.Latency.Mean, 0.5)
	require.Len(t, res.Kinds, 2)
	require.Equal(t, KindResult{Kind: "get", Succeeded: 4, Throughput: 2, Latency: res.Kinds[1].Latency}, res.Kinds[1])
	require.InDelta(t, 1, res.Kinds[1].Latency.P50, 0.01)
	require.Len(t, res.Series, 1, "every sample completed in the first 100 ms window")
	require.Equal(t, int64(1000), res.Series[0].Ops)
}

func TestRecorder_WindowsCoarsenPastTheCap(t *testing.T) {
	rec := newRecorder([]string{"op"})
	p := rec.probe()
	// One sample per 100 ms window for 2.5 x the cap: the width doubles
	// twice (100 ms -> 400 ms) and no sample is lost.
	n := maxWindows * 5 / 2
	for i := 0; i < n; i++ {
		at := rec.start.Add(time.Duration(i)*firstWindow + time.Millisecond)
		p.record(0, at, time.Millisecond, nil)
	}
	p.flush()
	o := DefaultOptions()
	res := rec.result("op", &o, time.Duration(n)*firstWindow)
	require.InDelta(t, 0.4, res.WindowSec, 1e-9)
	var total int64
	for _, pt := range res.Series {
		total += pt.Ops
	}
	require.Equal(t, int64(n), total)
	require.LessOrEqual(t, len(res.Series), maxWindows)
}

func TestRunOps_TotalRateAndDuration(t *testing.T) {
	t.Run("total", func(t *testing.T) {
		o := DefaultOptions()
		o.Clients, o.Total = 8, 1000
		rec := newRecorder([]string{"op"})
		var mu sync.Mutex
		seen := map[int64]int{}
		o.runOps(context.Background(), rec, "op", func(_ context.Context, _ int, n int64) (int, error) {
			mu.Lock()
			seen[n]++
			mu.Unlock()
			return 0, nil
		})
		res := rec.result("op", &o, time.Second)
		require.Equal(t, int64(1000), res.Succeeded)
		require.Len(t, seen, 1000, "each operation number runs exactly once")
		for n, c := range seen {
			require.True(t, n >= 0 && n < 1000 && c == 1, "op %d ran %d times", n, c)
		}
	})
	t.Run("rate", func(t *testing.T) {
		o := DefaultOptions()
		o.Clients, o.Total, o.Rate = 4, 30, 100
		rec := newRecorder([]string{"op"})
		elapsed := o.runOps(context.Background(), rec, "op", func(context.Context, int, int64) (int, error) { return 0, nil })
		rec.close()
		// Op 29 is due 290 ms after the start.
		require.GreaterOrEqual(t, elapsed, 285*time.Millisecond)
		require.Less(t, elapsed, 2*time.Second)
	})
	t.Run("duration", func(t *testing.T) {
		o := DefaultOptions()
		o.Clients, o.Total, o.Duration = 2, 0, 300*time.Millisecond
		rec := newRecorder([]string{"op"})
		elapsed := o.runOps(context.Background(), rec, "op", func(context.Context, int, int64) (int, error) {
			time.Sleep(5 * time.Millisecond)
			return 0, nil
		})
		res := rec.result("op", &o, elapsed)
		require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
		require.Less(t, elapsed, 2*time.Second)
		require.Greater(t, res.Succeeded, int64(20))
	})
}

func TestResult_TextJSONAndPlot(t *testing.T) {
	rec := newRecorder([]string{"put"})
	p := rec.probe()
	for i := 0; i < 500; i++ {
		at := rec.start.Add(time.Duration(i) * time.Millisecond)
		p.record(0, at, time.Duration(1+i%7)*time.Millisecond, nil)
	}
	p.record(0, time.Now(), 0, status.Error(codes.ResourceExhausted, "too many requests"))
	p.flush()
	o := DefaultOptions()
	res := rec.result("put", &o, 500*time.Millisecond)

	var text bytes.Buffer
	require.NoError(t, res.WriteText(&text))
	require.Contains(t, text.String(), "put: 500 ok, 1 failed in 0.50s: 1000.0 ops/s (1 clients, 1 conns, 127.0.0.1:2379)\n")
	require.Contains(t, text.String(), "errors: 1 (ResourceExhausted 1)\n")
	require.Contains(t, text.String(), "first ResourceExhausted: rpc error: code = ResourceExhausted desc = too many requests\n")

	var js bytes.Buffer
	require.NoError(t, res.WriteJSON(&js))
	var back Result
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Equal(t, int64(500), back.Succeeded)
	require.Equal(t, map[string]int64{"ResourceExhausted": 1}, back.Errors)
	require.InDelta(t, 7, back.Latency.Max, 0.01)
	require.Equal(t, 5, len(back.Series))

	path := filepath.Join(t.TempDir(), "put.png")
	require.NoError(t, res.WritePlot(path, "test"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "\x89PNG\r\n\x1a\n"), "not a PNG")
	require.Greater(t, len(b), 10000)

	empty := newRecorder([]string{"put"}).result("put", &o, time.Second)
	require.ErrorContains(t, empty.WritePlot(path, ""), "nothing to plot")
}
