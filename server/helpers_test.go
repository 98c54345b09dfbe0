package server

import (
	"net"
	"testing"
)

// soloCluster is an InitialCluster of one member "a" on a free loopback
// peer port, for servers that are opened and never started.
func soloCluster(tb testing.TB) map[string][]string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer lis.Close()
	return map[string][]string{"a": {"http://" + lis.Addr().String()}}
}
