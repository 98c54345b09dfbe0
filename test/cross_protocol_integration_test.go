package test

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Written over one protocol, read and watched over the other, on the one
// client port both share.
func TestCrossProtocol_HTTPAndGRPC(t *testing.T) {
	for _, engine := range []string{engineMemory, engineRocksDB} {
		t.Run(engine, func(t *testing.T) { crossProtocolScenario(t, engine) })
	}
}

func crossProtocolScenario(t *testing.T, engine string) {
	m := startMember(t, engine)
	cli := newClient(t, m.endpoint())
	base := m.clientURL

	t.Logf("Step 1: REST PUT, read with clientv3 (same port)")
	r := httpDo(t, "PUT", base+"/v1/kv/x/rest", []byte("from-rest\x00\xff"))
	require.Equal(t, 200, r.status)
	got := mustGet(t, cli, "x/rest")
	require.Len(t, got.Kvs, 1)
	require.Equal(t, "from-rest\x00\xff", string(got.Kvs[0].Value))
	require.Equal(t, int64(2), got.Kvs[0].ModRevision)
	require.Equal(t, `"2"`, r.header.Get("ETag"))

	t.Logf("Step 2: gateway PUT with a binary key, read with clientv3")
	key := "x/\x01\xfe"
	st, body := gwCall(t, base, "/v3/kv/put", fmt.Sprintf(`{"key":%q,"value":%q}`,
		base64.StdEncoding.EncodeToString([]byte(key)), base64.StdEncoding.EncodeToString([]byte("from-gateway"))))
	require.Equal(t, 200, st)
	require.Equal(t, "3", body["header"].(map[string]any)["revision"])
	got = mustGet(t, cli, key)
	require.Equal(t, "from-gateway", string(got.Kvs[0].Value))

	t.Logf("Step 3: clientv3 Put, read with REST and the gateway")
	put := mustPut(t, cli, "x/grpc", "from-grpc")
	require.Equal(t, int64(4), put.Header.Revision)
	r = httpDo(t, "GET", base+"/v1/kv/x/grpc", nil)
	require.Equal(t, "from-grpc", string(r.body))
	require.Equal(t, `"4"`, r.header.Get("ETag"))
	st, body = gwCall(t, base, "/v3/kv/range", `{"key":"eC8=","range_end":"eDA=","keys_only":true}`)
	require.Equal(t, 200, st)
	require.Equal(t, "3", body["count"])

	t.Logf("Step 4: an ETag from REST drives a clientv3 compare-and-swap, and back")
	txn, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.ModRevision("x/rest"), "=", 2)).
		Then(clientv3.OpPut("x/rest", "cas-by-grpc")).Commit()
	require.NoError(t, err)
	require.True(t, txn.Succeeded)
	r = httpDo(t, "PUT", base+"/v1/kv/x/rest", []byte("stale"), "If-Match", `"2"`)
	require.Equal(t, 412, r.status)
	require.Equal(t, `"5"`, r.header.Get("ETag"))
	r = httpDo(t, "PUT", base+"/v1/kv/x/rest", []byte("cas-by-rest"), "If-Match", `"5"`)
	require.Equal(t, 200, r.status)
	require.Equal(t, "cas-by-rest", string(mustGet(t, cli, "x/rest").Kvs[0].Value))

	t.Logf("Step 5: REST prefix delete, clientv3 sees none; same revision everywhere")
	r = httpDo(t, "DELETE", base+"/v1/kv/x/?prefix=true", nil)
	require.Equal(t, `{"revision":7,"deleted":3}`+"\n", string(r.body))
	got = mustGet(t, cli, "x/", clientv3.WithPrefix())
	require.Empty(t, got.Kvs)
	require.Equal(t, int64(7), got.Header.Revision)

	t.Logf("Step 6: errors read the same: a compacted revision over both")
	_, err = cli.Compact(opCtx(t), 6)
	require.NoError(t, err)
	_, err = cli.Get(opCtx(t), "x/rest", clientv3.WithRev(3))
	require.ErrorContains(t, err, "etcdserver: mvcc: required revision has been compacted")
	st, body = gwCall(t, base, "/v3/kv/range", `{"key":"eC9yZXN0","revision":"3"}`)
	require.Equal(t, 400, st)
	require.Equal(t, map[string]any{"code": float64(11), "message": "etcdserver: mvcc: required revision has been compacted"}, body)
	require.Equal(t, 400, httpDo(t, "GET", base+"/v1/kv/x/rest?rev=3", nil).status)

	t.Logf("Step 7: watched across: clientv3 sees REST writes, SSE and the gateway see clientv3 writes")
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := cli.Watch(wctx, "w/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	sse := openSSE(t, base+"/v1/watch/w/?prefix=true")
	require.Equal(t, sseEvent{"created", "7", `{"revision":7}`}, sse.mustNext(t))
	gw := openGWWatch(t, base, `{"create_request":{"key":"dy8=","range_end":"dzA="}}`)
	require.True(t, gw.next(t).Created)
	select {
	case wr := <-wch:
		require.True(t, wr.Created)
	case <-time.After(10 * time.Second):
		t.Fatal("the clientv3 watch was not created")
	}
	require.Equal(t, 200, httpDo(t, "PUT", base+"/v1/kv/w/rest", []byte("r")).status) // 8
	mustPut(t, cli, "w/grpc", "g")                                                    // 9
	var seen []string
	for len(seen) < 2 {
		select {
		case wr := <-wch:
			for _, ev := range wr.Events {
				seen = append(seen, fmt.Sprintf("%s %s=%s m%d", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("clientv3 watch saw only %v", seen)
		}
	}
	require.Equal(t, []string{"PUT w/rest=r m8", "PUT w/grpc=g m9"}, seen)
	require.Equal(t, sseEvent{"put", "8", `{"key":"w/rest","create_revision":8,"mod_revision":8,"version":1,"value":"r"}`}, sse.mustNext(t))
	require.Equal(t, sseEvent{"put", "9", `{"key":"w/grpc","create_revision":9,"mod_revision":9,"version":1,"value":"g"}`}, sse.mustNext(t))
	require.Equal(t, []string{"PUT w/rest=r m8"}, watchEvents(gw.next(t)))
	require.Equal(t, []string{"PUT w/grpc=g m9"}, watchEvents(gw.next(t)))
}
