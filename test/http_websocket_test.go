package test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// The JSON gateway over WebSocket, as etcd serves it on /v3/: messages in
// are request bodies, each answer line comes back as one message. These
// tests run against etcd too (METASTORE_TEST_ETCD_BIN), but for the steps
// etcd does not answer: it serves only its two-way streams (watch,
// keep-alive) over a WebSocket and drops a socket on a malformed request.

// readWSInto reads the next text message (within 10 s), decodes it into
// v and returns it.
func readWSInto(t *testing.T, c *websocket.Conn, v any) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	typ, b, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.TextMessage, typ)
	require.NoError(t, json.Unmarshal(b, v), string(b))
	return string(b)
}

// requireWSClosed reads c until it is closed (within 10 s) and checks the
// close code.
func requireWSClosed(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, code, ce.Code)
}

// skipOnEtcd skips a test of what only MetaStore answers over a
// WebSocket, when the suite runs against etcd.
func skipOnEtcd(t *testing.T) {
	t.Helper()
	if os.Getenv(etcdBinEnv) != "" {
		t.Skip("etcd's gateway waits for the end of the body, which a WebSocket never sends: no answer (compatibility.md)")
	}
}

// wsMsg is one gateway message: a result or an error.
type wsMsg struct {
	Result struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
		WatchID  string `json:"watch_id"`
		Created  bool   `json:"created"`
		Canceled bool   `json:"canceled"`
		Events   []struct {
			Type string `json:"type"`
			Kv   struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"kv"`
		} `json:"events"`
		ID  string `json:"ID"`
		TTL string `json:"TTL"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// dialWS opens a WebSocket on path of base (an http:// URL).
func dialWS(t *testing.T, base, path string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+strings.TrimPrefix(base, "http://")+path, nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

func sendWS(t *testing.T, c *websocket.Conn, body string) {
	t.Helper()
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(body)))
}

// readWS reads the next message (within 10 s) and decodes it.
func readWS(t *testing.T, c *websocket.Conn) (wsMsg, string) {
	t.Helper()
	var m wsMsg
	raw := readWSInto(t, c, &m)
	return m, raw
}

// TestHTTPWebSocket_Watch: one socket carries watches created and
// canceled while it is open, and progress requests; each response is one
// message; a malformed request ends the socket with the error line.
func TestHTTPWebSocket_Watch(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: start one member and open a WebSocket on /v3/watch")
	c := startAPICluster(t, engineMemory, 1)
	m := c.members[0]
	cli := newClient(t, m.endpoint())
	ws := dialWS(t, m.clientURL, "/v3/watch")

	t.Logf("Step 2: create a watch on ws/a: one created message")
	sendWS(t, ws, fmt.Sprintf(`{"create_request":{"key":%q}}`, b64("ws/a")))
	msg, raw := readWS(t, ws)
	require.True(t, msg.Result.Created, raw)
	require.Empty(t, msg.Result.WatchID, raw) // watch 0: omitted

	t.Logf("Step 3: a put on ws/a arrives as one message")
	mustPut(t, cli, "ws/a", "1")
	msg, raw = readWS(t, ws)
	require.Len(t, msg.Result.Events, 1, raw)
	require.Equal(t, b64("ws/a"), msg.Result.Events[0].Kv.Key)
	require.Equal(t, b64("1"), msg.Result.Events[0].Kv.Value)

	t.Logf("Step 4: a second watch, on ws/b, created on the open socket")
	sendWS(t, ws, fmt.Sprintf(`{"create_request":{"key":%q}}`, b64("ws/b")))
	msg, raw = readWS(t, ws)
	require.True(t, msg.Result.Created, raw)
	require.Equal(t, "1", msg.Result.WatchID, raw)

	t.Logf("Step 5: cancel watch 0: canceled; later puts on ws/a are not sent")
	sendWS(t, ws, `{"cancel_request":{"watch_id":"0"}}`)
	msg, raw = readWS(t, ws)
	require.True(t, msg.Result.Canceled, raw)
	mustPut(t, cli, "ws/a", "2")
	put := mustPut(t, cli, "ws/b", "3")
	msg, raw = readWS(t, ws)
	require.Equal(t, "1", msg.Result.WatchID, raw)
	require.Len(t, msg.Result.Events, 1, raw)
	require.Equal(t, b64("ws/b"), msg.Result.Events[0].Kv.Key)

	t.Logf("Step 6: a progress request is answered with the current revision")
	sendWS(t, ws, `{"progress_request":{}}`)
	msg, raw = readWS(t, ws)
	require.Empty(t, msg.Result.Events, raw)
	require.Equal(t, fmt.Sprint(put.Header.Revision), msg.Result.Header.Revision, raw)

	t.Logf("Step 7: a request split over two messages (between tokens), then two requests in one: three watches created")
	create := fmt.Sprintf(`{"create_request":{"key":%q}}`, b64("ws/c"))
	sendWS(t, ws, `{"create_request":`)
	sendWS(t, ws, create[len(`{"create_request":`):])
	sendWS(t, ws, create+"\n"+create)
	for _, id := range []string{"2", "3", "4"} {
		msg, raw = readWS(t, ws)
		require.True(t, msg.Result.Created, raw)
		require.Equal(t, id, msg.Result.WatchID, raw)
	}

	if os.Getenv(etcdBinEnv) != "" {
		// etcd logs the error and ignores every later request, while the
		// watches go on (compatibility.md).
		return
	}
	t.Logf("Step 8: a malformed request gets the error line, then the socket ends")
	sendWS(t, ws, `{"create_request":]`)
	msg, raw = readWS(t, ws)
	require.NotNil(t, msg.Error, raw)
	require.Equal(t, 3, msg.Error.Code, raw)
	requireWSClosed(t, ws, websocket.CloseNormalClosure)
}

// TestHTTPWebSocket_LeaseKeepAliveAndUnary: keep-alives are answered one
// message each, as they arrive; any other /v3/ path answers its one
// request and closes.
func TestHTTPWebSocket_LeaseKeepAliveAndUnary(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: start one member, grant a lease, put a key")
	c := startAPICluster(t, engineMemory, 1)
	m := c.members[0]
	cli := newClient(t, m.endpoint())
	g, err := cli.Grant(ctxT(t, 5*time.Second), 30)
	require.NoError(t, err)
	mustPut(t, cli, "ws/k", "v")

	t.Logf("Step 2: two keep-alives on one socket, sent apart, each answered")
	ka := dialWS(t, m.clientURL, "/v3/lease/keepalive")
	for range 2 {
		sendWS(t, ka, fmt.Sprintf(`{"ID":"%d"}`, g.ID))
		msg, raw := readWS(t, ka)
		require.Equal(t, fmt.Sprint(int64(g.ID)), msg.Result.ID, raw)
		require.Equal(t, "30", msg.Result.TTL, raw)
	}

	t.Logf("Step 3: an unknown lease is answered with TTL 0")
	sendWS(t, ka, `{"ID":"12345"}`)
	msg, raw := readWS(t, ka)
	require.Empty(t, msg.Result.TTL, raw)

	t.Logf("Step 4: the lease is still alive (the keep-alives reached the leader)")
	ttl, err := cli.TimeToLive(ctxT(t, 5*time.Second), g.ID)
	require.NoError(t, err)
	require.Greater(t, ttl.TTL, int64(0))

	if os.Getenv(etcdBinEnv) != "" {
		// etcd's gateway waits for the end of the body, which a WebSocket
		// never sends: no answer (compatibility.md).
		return
	}
	t.Logf("Step 5: a malformed keep-alive gets the error line (etcd drops the connection)")
	sendWS(t, ka, `{"ID":"xx"}`)
	msg, raw = readWS(t, ka)
	require.NotNil(t, msg.Error, raw)
	require.Equal(t, 3, msg.Error.Code, raw)

	t.Logf("Step 6: /v3/kv/range over a WebSocket: one answer (the bare response, as a unary call's), then the socket ends")
	rg := dialWS(t, m.clientURL, "/v3/kv/range")
	sendWS(t, rg, fmt.Sprintf(`{"key":%q}`, b64("ws/k")))
	var rr struct {
		Kvs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	raw = readWSInto(t, rg, &rr)
	require.Len(t, rr.Kvs, 1, raw)
	require.Equal(t, b64("v"), rr.Kvs[0].Value)
	requireWSClosed(t, rg, websocket.CloseNormalClosure)
}

// TestHTTPWebSocket_Observe: the first message names the election; each
// leader and proclaimed value follows as one message.
func TestHTTPWebSocket_Observe(t *testing.T) {
	t.Parallel()
	skipOnEtcd(t)
	t.Logf("Step 1: start one member; a clientv3 session campaigns on ws-el with v1")
	c := startAPICluster(t, engineMemory, 1)
	m := c.members[0]
	cli := newClient(t, m.endpoint())
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	require.NoError(t, err)
	t.Cleanup(func() { sess.Close() })
	el := concurrency.NewElection(sess, "ws-el")
	require.NoError(t, el.Campaign(ctxT(t, 10*time.Second), "v1"))

	t.Logf("Step 2: observe over a WebSocket: the current leader's value first")
	ob := dialWS(t, m.clientURL, "/v3/election/observe")
	sendWS(t, ob, fmt.Sprintf(`{"name":%q}`, b64("ws-el")))
	var lr struct {
		Result struct {
			Kv struct {
				Value string `json:"value"`
			} `json:"kv"`
		} `json:"result"`
	}
	raw := readWSInto(t, ob, &lr)
	require.Equal(t, b64("v1"), lr.Result.Kv.Value, raw)

	t.Logf("Step 3: proclaim v2: it arrives as the next message")
	require.NoError(t, el.Proclaim(ctxT(t, 10*time.Second), "v2"))
	raw = readWSInto(t, ob, &lr)
	require.Equal(t, b64("v2"), lr.Result.Kv.Value, raw)
}

// TestHTTPWebSocket_GracefulStop: SIGTERM closes open sockets with 1001
// (going away) and the member exits well within its shutdown timeout.
func TestHTTPWebSocket_GracefulStop(t *testing.T) {
	t.Parallel()
	skipOnEtcd(t)
	t.Logf("Step 1: start one member; open a watch socket and a keep-alive socket")
	c := startCluster(t, engineMemory, 1)
	m := c.members[0]
	ws := dialWS(t, m.clientURL, "/v3/watch")
	sendWS(t, ws, fmt.Sprintf(`{"create_request":{"key":%q}}`, b64("gs")))
	msg, raw := readWS(t, ws)
	require.True(t, msg.Result.Created, raw)
	ka := dialWS(t, m.clientURL, "/v3/lease/keepalive")

	t.Logf("Step 2: stop the member with SIGTERM")
	start := time.Now()
	require.NoError(t, m.stop())

	t.Logf("Step 3: it exited quickly, and both sockets were closed with 1001")
	require.Less(t, time.Since(start), 8*time.Second)
	requireWSClosed(t, ws, websocket.CloseGoingAway)
	requireWSClosed(t, ka, websocket.CloseGoingAway)
}

// TestHTTPWebSocket_AbandonedLock: a /v3/lock/lock sent over a WebSocket
// waits like the POST; when its client goes away the waiting key is
// withdrawn, as for an abandoned POST (TestHTTPLockElection_AbandonedWaiters).
func TestHTTPWebSocket_AbandonedLock(t *testing.T) {
	t.Parallel()
	skipOnEtcd(t)
	t.Logf("Step 1: one member, leases 2001 and 2002; lease 2001 holds the lock wslock")
	base, cli := startWithGWLeases(t, engineMemory, "2001", "2002")
	code, body := gwPost(t, base, "/v3/lock/lock", "", `{"name":"`+b64("wslock")+`","lease":"2001"}`)
	require.Equal(t, 200, code, body)

	t.Logf("Step 2: lock on lease 2002 over a WebSocket: its key is queued")
	ws := dialWS(t, base, "/v3/lock/lock")
	sendWS(t, ws, `{"name":"`+b64("wslock")+`","lease":"2002"}`)
	waitFor(t, 10*time.Second, "the WebSocket locker's key", func() bool {
		return len(prefixKeys(t, cli, "wslock/").Kvs) == 2
	})

	t.Logf("Step 3: the client goes away: its waiting key is deleted")
	require.NoError(t, ws.Close())
	waitFor(t, 10*time.Second, "the abandoned key to go", func() bool {
		return len(prefixKeys(t, cli, "wslock/").Kvs) == 1
	})
	require.Equal(t, "wslock/7d1", string(prefixKeys(t, cli, "wslock/").Kvs[0].Key))
}
