package http

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// dialTestWS opens a WebSocket on base+path with extra headers.
func dialTestWS(t *testing.T, base, path string, d *websocket.Dialer, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if d == nil {
		d = websocket.DefaultDialer
	}
	c, resp, err := d.Dial("ws://"+strings.TrimPrefix(base, "http://")+path, hdr)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// TestWebSocket_SilentClientIsDropped: the member pings; a client that
// answers nothing for three ping periods is dropped and its hub stream
// released, while a client that reads (and so answers the pings) stays.
func TestWebSocket_SilentClientIsDropped(t *testing.T) {
	setKeepAlive(t, 50*time.Millisecond)
	base, kv, _ := serveWatchHandler(t, Config{})

	t.Logf("Step 1: open two watch sockets; one reads, the other never does")
	live, _, err := dialTestWS(t, base, "/v3/watch", nil, nil)
	require.NoError(t, err)
	require.NoError(t, live.WriteMessage(websocket.TextMessage, []byte(`{"create_request":{"key":"YQ=="}}`)))
	_, msg, err := live.ReadMessage()
	require.NoError(t, err)
	require.Contains(t, string(msg), `"created":true`)
	liveErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := live.ReadMessage(); err != nil {
				liveErr <- err
				return
			}
		}
	}()
	silent, _, err := dialTestWS(t, base, "/v3/watch", nil, nil)
	require.NoError(t, err)
	require.NoError(t, silent.WriteMessage(websocket.TextMessage, []byte(`{"create_request":{"key":"Yg=="}}`)))
	require.Eventually(t, func() bool { return kv.hub.Stats().Streams == 2 }, 5*time.Second, 10*time.Millisecond)

	t.Logf("Step 2: wait: the silent client's stream is released, the reading one's kept")
	require.Eventually(t, func() bool { return kv.hub.Stats().Streams == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // NB: the point is time passing, not a condition
	require.Equal(t, 1, kv.hub.Stats().Streams)
	select {
	case err := <-liveErr:
		t.Fatalf("the reading client was dropped: %v", err)
	default:
	}
}

// TestWebSocket_StopStreamsClosesGoingAway: StopStreams (a graceful
// shutdown) closes every socket with 1001 and releases the hub streams.
func TestWebSocket_StopStreamsClosesGoingAway(t *testing.T) {
	base, kv, h := serveWatchHandler(t, Config{})

	t.Logf("Step 1: open a watch socket, and a range socket waiting for its request")
	w, _, err := dialTestWS(t, base, "/v3/watch", nil, nil)
	require.NoError(t, err)
	require.NoError(t, w.WriteMessage(websocket.TextMessage, []byte(`{"create_request":{"key":"YQ=="}}`)))
	_, _, err = w.ReadMessage()
	require.NoError(t, err)
	un, _, err := dialTestWS(t, base, "/v3/kv/range", nil, nil)
	require.NoError(t, err)

	t.Logf("Step 2: stop the streams")
	h.StopStreams()

	t.Logf("Step 3: both sockets are closed with 1001; the hub stream is released")
	for _, c := range []*websocket.Conn{w, un} {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, websocket.CloseGoingAway, ce.Code)
	}
	require.Eventually(t, func() bool { return kv.hub.Stats().Streams == 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestWebSocket_OriginsAndRefusals: a browser origin outside --cors is
// refused (403); a path outside /v3/ is not upgraded; a bad method on a
// gateway path is a 405 as before.
func TestWebSocket_OriginsAndRefusals(t *testing.T) {
	base, _, _ := serveWatchHandler(t, Config{CORS: []string{"https://app.example"}})

	t.Logf("Step 1: an allowed origin is upgraded")
	_, _, err := dialTestWS(t, base, "/v3/watch", nil, http.Header{"Origin": {"https://app.example"}})
	require.NoError(t, err)

	t.Logf("Step 2: another origin is refused with 403")
	_, resp, err := dialTestWS(t, base, "/v3/watch", nil, http.Header{"Origin": {"https://evil.example"}})
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, 403, resp.StatusCode)

	t.Logf("Step 3: /v1/ and unknown paths are not upgraded")
	_, resp, err = dialTestWS(t, base, "/v1/kv/a", nil, nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, 404, resp.StatusCode)
	_, resp, err = dialTestWS(t, base, "/v3/nowhere", nil, nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, 404, resp.StatusCode)
}

// TestTokenFromSubprotocol: "Sec-WebSocket-Protocol: Bearer, <token>"
// becomes the Authorization header unless one is set.
func TestTokenFromSubprotocol(t *testing.T) {
	t.Logf("Step 1: prepare requests with and without the subprotocol token")
	cases := []struct{ proto, auth, want string }{
		{"Bearer, tok1", "", "Bearer tok1"},
		{"Bearer,tok2", "", "Bearer tok2"},
		{"Bearer, tok3", "given", "given"},
		{"Bearer", "", ""},
		{"chat, tok4", "", ""},
	}
	for _, c := range cases {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Sec-WebSocket-Protocol", c.proto)
		if c.auth != "" {
			ctx.Request.Header.Set("Authorization", c.auth)
		}
		t.Logf("Step 2: move the token of %q", c.proto)
		tokenFromSubprotocol(&ctx)
		t.Logf("Step 3: verify the Authorization header")
		require.Equal(t, c.want, string(ctx.Request.Header.Peek("Authorization")), c.proto)
	}
}

// TestWSRequests_JoinsAndSplitsMessages: objects are taken as etcd's
// proxy takes them from its one request body, a newline after each
// message: one may span messages, a message may hold several, and a
// malformed one (a split inside a string is) or an oversized one fails.
func TestWSRequests_JoinsAndSplitsMessages(t *testing.T) {
	t.Logf("Step 1: a keep-alive split over three messages, then two and a half in one")
	var in wsRequests[pb.LeaseKeepAliveRequest, *pb.LeaseKeepAliveRequest]
	var ids []int64
	add := func(msg string) error {
		reqs, err := in.add([]byte(msg), 64)
		for _, r := range reqs {
			ids = append(ids, r.GetID())
		}
		return err
	}
	require.NoError(t, add(`{"ID":`))
	require.NoError(t, add(`"1"`))
	require.NoError(t, add(`}`))
	require.NoError(t, add(`{"ID":"2"} {"ID":"3"}`+"\n"+`{"ID":`))
	require.NoError(t, add(`"4"}`))

	t.Logf("Step 2: verify every request came out once, in order")
	require.Equal(t, []int64{1, 2, 3, 4}, ids)
	require.Empty(t, in.pending)

	t.Logf("Step 3: a malformed object, and a partial one past the limit, are errors")
	require.Error(t, add(`{"ID":]`))
	var split wsRequests[pb.LeaseKeepAliveRequest, *pb.LeaseKeepAliveRequest]
	_, err := split.add([]byte(`{"I`), 64)
	require.ErrorContains(t, err, `invalid character '\n' in string literal`)
	var big wsRequests[pb.LeaseKeepAliveRequest, *pb.LeaseKeepAliveRequest]
	_, err = big.add([]byte(`{"ID":`+strings.Repeat(" ", 100)), 64)
	require.ErrorContains(t, err, "larger than 64 bytes")
}
