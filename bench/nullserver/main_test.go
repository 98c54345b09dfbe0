package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestNullServer_AnswersTheBenchmarkCalls: the calls etcd's benchmark tool
// and etcdctl check perf make are answered, each write with a new revision,
// and nothing is stored.
func TestNullServer_AnswersTheBenchmarkCalls(t *testing.T) {
	t.Logf("Step 1: starting the null server on a free port...")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := newServer()
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{lis.Addr().String()}, DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Logf("Step 2: Put twice, a txn put, a prefix Get, a prefix delete and Status...")
	p1, err := cli.Put(ctx, "k", "v")
	require.NoError(t, err)
	p2, err := cli.Put(ctx, "k", "v")
	require.NoError(t, err)
	txn, err := cli.Txn(ctx).Then(clientv3.OpPut("t", "v"), clientv3.OpGet("t")).Commit()
	require.NoError(t, err)
	get, err := cli.Get(ctx, "k", clientv3.WithPrefix())
	require.NoError(t, err)
	del, err := cli.Delete(ctx, "k", clientv3.WithPrefix())
	require.NoError(t, err)
	st, err := cli.Status(ctx, lis.Addr().String())
	require.NoError(t, err)

	t.Logf("Step 3: verifying revisions advance per write and nothing is stored...")
	require.Equal(t, p1.Header.Revision+1, p2.Header.Revision)
	require.True(t, txn.Succeeded)
	require.Len(t, txn.Responses, 2)
	require.Equal(t, p2.Header.Revision+1, txn.Header.Revision)
	require.Empty(t, get.Kvs)
	require.Zero(t, del.Deleted)
	require.NotZero(t, st.Leader)
}
