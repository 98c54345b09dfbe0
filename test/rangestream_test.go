package test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestEtcd_RangeStream: clientv3's GetStream (etcd 3.7's KV.RangeStream)
// returns, over several chunks, exactly what Get returns; limit, revision
// and the compacted error behave as in Get.
func TestEtcd_RangeStream(t *testing.T) {
	t.Parallel()
	m := startMember(t, engineRocksDB)
	cli := newClient(t, m.endpoint())

	t.Logf("Step 1: 30 keys of 100 KiB (3 MiB in all)")
	big := strings.Repeat("v", 100<<10)
	for i := 0; i < 30; i++ {
		_, err := cli.Put(ctxT(t, 5*time.Second), fmt.Sprintf("rs/%02d", i), big+fmt.Sprint(i))
		require.NoError(t, err)
	}

	stream := func(opts ...clientv3.OpOption) (chunks int, resp *clientv3.GetResponse, err error) {
		ch, err := cli.GetStream(ctxT(t, 10*time.Second), "rs/", opts...)
		if err != nil {
			return 0, nil, err
		}
		var kvsChunks int
		merged := &clientv3.GetResponse{}
		for r := range ch {
			if err := r.Err(); err != nil {
				return 0, nil, err
			}
			if len(r.Kvs) > 0 {
				kvsChunks++
			}
			merged.Kvs = append(merged.Kvs, r.Kvs...)
			if r.Header != nil {
				merged.Header, merged.Count, merged.More = r.Header, r.Count, r.More
			}
		}
		return kvsChunks, merged, nil
	}

	for _, tc := range []struct {
		name string
		opts []clientv3.OpOption
	}{
		{"prefix", []clientv3.OpOption{clientv3.WithPrefix()}},
		{"prefix with limit", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(12)}},
		{"prefix at revision 10", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(10)}},
		{"prefix sorted descending", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}},
	} {
		t.Logf("Step 2: %s: the stream equals Get", tc.name)
		want, err := cli.Get(ctxT(t, 10*time.Second), "rs/", tc.opts...)
		require.NoError(t, err)
		chunks, got, err := stream(tc.opts...)
		require.NoError(t, err, tc.name)
		require.Equal(t, len(want.Kvs), len(got.Kvs), tc.name)
		for i := range want.Kvs {
			require.Equal(t, string(want.Kvs[i].Key), string(got.Kvs[i].Key), tc.name)
			require.Equal(t, string(want.Kvs[i].Value), string(got.Kvs[i].Value), tc.name)
			require.Equal(t, want.Kvs[i].ModRevision, got.Kvs[i].ModRevision, tc.name)
		}
		require.Equal(t, want.Count, got.Count, tc.name)
		require.Equal(t, want.More, got.More, tc.name)
		require.Equal(t, want.Header.Revision, got.Header.Revision, tc.name)
		require.NotZero(t, got.Header.ClusterId, tc.name)
		if len(want.Kvs) >= 20 {
			require.Greater(t, chunks, 1, "%s: 2+ MiB arrive in several chunks", tc.name)
		}
	}

	t.Logf("Step 3: a compacted revision fails with ErrCompacted, as Get does")
	_, err := cli.Compact(ctxT(t, 5*time.Second), 20)
	require.NoError(t, err)
	_, _, err = stream(clientv3.WithPrefix(), clientv3.WithRev(10))
	require.True(t, errors.Is(err, rpctypes.ErrCompacted), "got %v", err)
}
