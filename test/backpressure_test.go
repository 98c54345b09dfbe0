package test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestBackpressure_TooManyRequests: with room for a single waiting proposal,
// a burst of concurrent puts gets etcd's "too many requests" for the excess
// at once, every other put succeeds, and nothing is half-applied: exactly
// the acknowledged puts are in the store.
func TestBackpressure_TooManyRequests(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: one member that lets one proposal wait at a time")
	m := startMember(t, engineRocksDB, memberOpts{extraFlags: []string{"--max-pending-proposals", "1"}})
	cli := newClient(t, m.endpoint())

	t.Logf("Step 2: 200 concurrent puts")
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = cli.Put(ctxT(t, 10*time.Second), fmt.Sprintf("k%03d", i), "v")
		}()
	}
	wg.Wait()

	t.Logf("Step 3: every put either succeeded or got ErrTooManyRequests; the store holds exactly the successes")
	ok, busy := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, rpctypes.ErrTooManyRequests):
			busy++
		default:
			t.Fatalf("put %d: unexpected error %v", i, err)
		}
	}
	t.Logf("%d puts succeeded, %d were refused with too many requests", ok, busy)
	require.Greater(t, busy, 0, "a burst of 200 against a bound of 1 must be refused in part")
	require.Greater(t, ok, 0)
	resp, err := cli.Get(ctxT(t, 5*time.Second), "k", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Equal(t, int64(ok), resp.Count)
	for _, kv := range resp.Kvs {
		var i int
		fmt.Sscanf(string(kv.Key), "k%03d", &i)
		require.NoError(t, errs[i], "key %s is stored, so its put must have succeeded", kv.Key)
	}
}
