package server

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// startBenchServer starts a one-member server on a loopback peer port.
func startBenchServer(tb testing.TB, engine string) *Server {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	peer := "http://" + lis.Addr().String()
	s, err := New(Config{Name: "b", DataDir: tb.TempDir(), Engine: engine,
		InitialCluster: map[string][]string{"b": {peer}}, ClusterToken: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(lis); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitLeader(ctx); err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkServerPut measures Put through the sequencer (propose, raft with
// fsync, apply) without a front end, at several concurrencies.
func BenchmarkServerPut(b *testing.B) {
	for _, engine := range []string{EngineRocksDB, EngineMemory} {
		for _, clients := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("%s/clients=%d", engine, clients), func(b *testing.B) {
				s := startBenchServer(b, engine)
				val := make([]byte, 256)
				var wg sync.WaitGroup
				per := b.N/clients + 1
				b.ResetTimer()
				for c := 0; c < clients; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < per; i++ {
							key := []byte(fmt.Sprintf("k%03d-%07d", c, i))
							if _, err := s.Put(context.Background(), &pb.PutRequest{Key: key, Value: val}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}
