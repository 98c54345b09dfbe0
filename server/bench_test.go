package server

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// startMembers starts the first `start` of names as members of one cluster
// made of all of them, on loopback ports; the others never start (their
// ports are released). cfg gives every member its settings; Name, DataDir
// and InitialCluster are filled in. Members stop when the test ends.
func startMembers(tb testing.TB, names []string, start int, cfg Config) []*Server {
	tb.Helper()
	initial := map[string][]string{}
	var liss []net.Listener
	for i, name := range names {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(tb, err)
		initial[name] = []string{"http://" + lis.Addr().String()}
		if i >= start {
			require.NoError(tb, lis.Close())
			continue
		}
		liss = append(liss, lis)
	}
	var servers []*Server
	for i, lis := range liss {
		c := cfg
		c.Name, c.DataDir, c.InitialCluster = names[i], tb.TempDir(), initial
		s, err := New(c)
		require.NoError(tb, err)
		require.NoError(tb, s.Start(lis))
		tb.Cleanup(s.Stop)
		servers = append(servers, s)
	}
	return servers
}

// startBenchServer starts a one-member server on a loopback peer port.
func startBenchServer(tb testing.TB, engine string) *Server {
	tb.Helper()
	s := startMembers(tb, []string{"b"}, 1, Config{Engine: engine, ClusterToken: "bench"})[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(tb, s.WaitLeader(ctx))
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
