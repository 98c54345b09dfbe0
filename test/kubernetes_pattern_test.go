package test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestKubernetes_StoragePattern drives MetaStore the way the Kubernetes API
// server's etcd3 storage does: create by a txn on mod_revision 0, consistent
// paginated lists at one revision with continuation keys, count-only
// ranges, RangeStream lists, optimistic updates by a txn on mod_revision,
// a watch from a resource version with prev_kv and progress notifications,
// and compaction driven by the client through its compact_rev_key txn.
func TestKubernetes_StoragePattern(t *testing.T) {
	t.Parallel()
	m := startMember(t, engineRocksDB, memberOpts{extraFlags: []string{"--watch-progress-notify-interval", "300ms"}})
	cli := newClient(t, m.endpoint())
	const prefix = "/registry/pods/default/"
	key := func(i int) string { return fmt.Sprintf("%spod-%02d", prefix, i) }

	t.Logf("Step 1: creating 25 objects with create-if-absent txns (mod_revision == 0)")
	create := func(k, v string) (*clientv3.TxnResponse, error) {
		return cli.Txn(ctxT(t, 5*time.Second)).
			If(clientv3.Compare(clientv3.ModRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, v)).Else(clientv3.OpGet(k)).Commit()
	}
	for i := 0; i < 25; i++ {
		resp, err := create(key(i), "spec-v1")
		require.NoError(t, err)
		require.True(t, resp.Succeeded)
		require.Equal(t, int64(i+2), resp.Header.Revision)
	}
	again, err := create(key(0), "other")
	require.NoError(t, err)
	require.False(t, again.Succeeded, "a second create of the same object fails")
	require.Equal(t, "spec-v1", string(again.Responses[0].GetResponseRange().Kvs[0].Value))

	t.Logf("Step 2: a paginated list (limit 10) at one revision, with a write between pages")
	end := clientv3.GetPrefixRangeEnd(prefix)
	first, err := cli.Get(ctxT(t, 5*time.Second), prefix, clientv3.WithRange(end), clientv3.WithLimit(10))
	require.NoError(t, err)
	listRev := first.Header.Revision
	require.Equal(t, int64(26), listRev)
	require.True(t, first.More)
	require.Equal(t, int64(25), first.Count)
	_, err = create(key(99), "created-during-list") // must not appear in the list at listRev
	require.NoError(t, err)
	var listed []string
	for _, kv := range first.Kvs {
		listed = append(listed, string(kv.Key))
	}
	next := string(first.Kvs[len(first.Kvs)-1].Key) + "\x00" // Kubernetes' continue key
	for {
		page, err := cli.Get(ctxT(t, 5*time.Second), next, clientv3.WithRange(end), clientv3.WithLimit(10), clientv3.WithRev(listRev))
		require.NoError(t, err)
		for _, kv := range page.Kvs {
			listed = append(listed, string(kv.Key))
		}
		if !page.More {
			break
		}
		next = string(page.Kvs[len(page.Kvs)-1].Key) + "\x00"
	}
	require.Len(t, listed, 25)
	for i := 0; i < 25; i++ {
		require.Equal(t, key(i), listed[i])
	}

	t.Logf("Step 3: count-only now, and a RangeStream list at the list revision")
	cnt, err := cli.Get(ctxT(t, 5*time.Second), prefix, clientv3.WithRange(end), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Equal(t, int64(26), cnt.Count)
	require.Empty(t, cnt.Kvs)
	ch, err := cli.GetStream(ctxT(t, 5*time.Second), prefix, clientv3.WithRange(end), clientv3.WithRev(listRev))
	require.NoError(t, err)
	streamed := 0
	for r := range ch {
		require.NoError(t, r.Err())
		streamed += len(r.Kvs)
	}
	require.Equal(t, 25, streamed)

	t.Logf("Step 4: a watch from the list's resource version, with prev_kv and progress notifications")
	wctx := ctxT(t, 20*time.Second)
	wch := cli.Watch(wctx, prefix, clientv3.WithRange(end), clientv3.WithRev(listRev+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())

	t.Logf("Step 5: optimistic update by mod_revision: the fresh one wins, the stale one gets the current object")
	cur, err := cli.Get(ctxT(t, 5*time.Second), key(3))
	require.NoError(t, err)
	mr := cur.Kvs[0].ModRevision
	update := func(mod int64, v string) *clientv3.TxnResponse {
		resp, err := cli.Txn(ctxT(t, 5*time.Second)).
			If(clientv3.Compare(clientv3.ModRevision(key(3)), "=", mod)).
			Then(clientv3.OpPut(key(3), v)).Else(clientv3.OpGet(key(3))).Commit()
		require.NoError(t, err)
		return resp
	}
	ok := update(mr, "spec-v2")
	require.True(t, ok.Succeeded)
	updateRev := ok.Header.Revision
	stale := update(mr, "spec-v3")
	require.False(t, stale.Succeeded)
	got := stale.Responses[0].GetResponseRange().Kvs[0]
	require.Equal(t, "spec-v2", string(got.Value))
	require.Equal(t, updateRev, got.ModRevision)

	t.Logf("Step 6: the watch sees the create made during the list and the update with its previous value, then a progress notification")
	var events []*clientv3.Event
	sawProgress := false
	deadline := time.After(15 * time.Second)
	for len(events) < 2 || !sawProgress {
		select {
		case wr, open := <-wch:
			require.True(t, open, "watch closed: %v", wr.Err())
			require.NoError(t, wr.Err())
			if wr.IsProgressNotify() {
				if len(events) == 2 {
					require.GreaterOrEqual(t, wr.Header.Revision, updateRev)
					sawProgress = true
				}
				continue
			}
			events = append(events, wr.Events...)
		case <-deadline:
			t.Fatalf("watch: got %d events, progress %v", len(events), sawProgress)
		}
	}
	require.Len(t, events, 2)
	require.Equal(t, mvccpb.PUT, events[0].Type)
	require.Equal(t, key(99), string(events[0].Kv.Key))
	require.Nil(t, events[0].PrevKv)
	require.Equal(t, key(3), string(events[1].Kv.Key))
	require.Equal(t, "spec-v2", string(events[1].Kv.Value))
	require.Equal(t, "spec-v1", string(events[1].PrevKv.Value))

	t.Logf("Step 7: compaction driven by the client through compact_rev_key, then the old list revision is compacted")
	const compactKey = "compact_rev_key"
	cr, err := cli.Txn(ctxT(t, 5*time.Second)).
		If(clientv3.Compare(clientv3.Version(compactKey), "=", 0)).
		Then(clientv3.OpPut(compactKey, fmt.Sprint(updateRev))).Else(clientv3.OpGet(compactKey)).Commit()
	require.NoError(t, err)
	require.True(t, cr.Succeeded)
	_, err = cli.Compact(ctxT(t, 5*time.Second), updateRev)
	require.NoError(t, err)
	_, err = cli.Get(ctxT(t, 5*time.Second), prefix, clientv3.WithRange(end), clientv3.WithRev(listRev))
	require.True(t, errors.Is(err, rpctypes.ErrCompacted), "got %v", err)
	rel, err := cli.Get(ctxT(t, 5*time.Second), prefix, clientv3.WithRange(end), clientv3.WithRev(updateRev))
	require.NoError(t, err)
	require.Equal(t, int64(26), rel.Count, "the compaction revision itself stays readable")
}
