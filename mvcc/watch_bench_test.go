package mvcc

import (
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

func benchEvent(rev int64) Result {
	return Result{Rev: rev, Events: []*mvccpb.Event{{Type: mvccpb.Event_PUT,
		Kv: &mvccpb.KeyValue{Key: []byte("p/key"), Value: []byte("v"), CreateRevision: rev, ModRevision: rev, Version: 1}}}}
}

// BenchmarkWatchHub_Notify is the commit hook's cost: what the apply
// goroutine pays per commit, however many watchers there are.
func BenchmarkWatchHub_Notify(b *testing.B) {
	s := openStore(&testing.T{}, engineCases[0], Config{})
	h := NewWatchHub(s, WatchConfig{})
	defer h.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Notify(benchEvent(int64(i + 2)))
	}
}

// BenchmarkWatchHub_FanOut hands one single-event commit to n synced
// watchers on one prefix over 4 streams whose senders keep draining.
func BenchmarkWatchHub_FanOut(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := openStore(&testing.T{}, engineCases[0], Config{})
			h := NewWatchHub(s, WatchConfig{})
			defer h.Close()
			stop := make(chan struct{})
			defer close(stop)
			for i := range 4 {
				ws := h.NewStream()
				for range n / 4 {
					if _, err := ws.Watch(WatchRequest{Key: []byte("p/"), End: []byte("p0")}); err != nil {
						b.Fatal(err)
					}
				}
				_ = i
				go func() {
					var buf []WatchResponse
					for {
						select {
						case <-stop:
							return
						case <-ws.Ready():
							buf = ws.Take(buf[:0])
						}
					}
				}()
			}
			b.ReportAllocs()
			rev := h.Rev()
			for b.Loop() {
				rev++
				it := hubItem{res: benchEvent(rev)}
				h.mu.Lock()
				h.processLocked(&it)
				h.mu.Unlock()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/watcher")
		})
	}
}
