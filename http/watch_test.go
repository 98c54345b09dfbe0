package http

import (
	"bufio"
	"context"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/server"
)

// watchKV is storeKV with a watch hub over its store, and the member
// configuration the watch handlers read (the zero value: defaults).
type watchKV struct {
	*storeKV
	hub *mvcc.WatchHub
	srv server.Config
}

func (w *watchKV) WatchHub() *mvcc.WatchHub { return w.hub }

func (w *watchKV) Config() server.Config { return w.srv }

func (w *watchKV) Header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: 1, MemberId: 7, Revision: rev, RaftTerm: 2}
}

// serveWatchHandler serves a handler over a store with a hub on a real
// TCP listener (streams need a connection) and returns its base URL.
func serveWatchHandler(t *testing.T, cfg Config) (string, *watchKV, *Handler) {
	t.Helper()
	kv := &watchKV{storeKV: newStoreKV(t)}
	kv.hub = mvcc.NewWatchHub(kv.s, mvcc.WatchConfig{SyncInterval: 10 * time.Millisecond})
	kv.s.SetCommitHook(kv.hub.Notify)
	h := newHandler(kv, &fakeMaintenance{leader: 7}, cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := h.NewServer(h.Handle)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() {
		h.Close()
		_ = srv.Shutdown()
		<-done
		kv.hub.Close()
	})
	return "http://" + l.Addr().String(), kv, h
}

func setKeepAlive(t *testing.T, d time.Duration) {
	old := streamKeepAlive
	streamKeepAlive = d
	t.Cleanup(func() { streamKeepAlive = old })
}

func readLine(t *testing.T, r *bufio.Reader, skipBlank bool) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if skipBlank && strings.TrimSpace(line) == "" {
			continue
		}
		return strings.TrimRight(line, "\n")
	}
}

// A watch outlives the server's write timeout; a client that goes away is
// noticed by the keep-alive and its hub stream released.
func TestWatchStream_OutlivesWriteTimeoutAndEndsOnDisconnect(t *testing.T) {
	setKeepAlive(t, 50*time.Millisecond)
	base, kv, _ := serveWatchHandler(t, Config{WriteTimeout: 200 * time.Millisecond})

	t.Logf("Step 1: open a gateway watch and an SSE watch")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, "POST", base+"/v3/watch", strings.NewReader(`{"create_request":{"key":"YQ=="}}`))
	require.NoError(t, err)
	resp, err := nethttp.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	gw := bufio.NewReader(resp.Body)
	require.Equal(t, `{"result":{"header":{"cluster_id":"1","member_id":"7","revision":"1","raft_term":"2"},"created":true}}`,
		strings.ReplaceAll(readLine(t, gw, true), " ", ""))

	sreq, err := nethttp.NewRequestWithContext(ctx, "GET", base+"/v1/watch/a", nil)
	require.NoError(t, err)
	sresp, err := nethttp.DefaultClient.Do(sreq)
	require.NoError(t, err)
	defer sresp.Body.Close()
	require.Equal(t, "text/event-stream", sresp.Header.Get("Content-Type"))
	sse := bufio.NewReader(sresp.Body)
	require.Equal(t, "event: created", readLine(t, sse, false))
	require.Equal(t, 2, kv.hub.Stats().Streams)

	t.Logf("Step 2: stay quiet for 3 write timeouts, then put: both streams still deliver")
	time.Sleep(600 * time.Millisecond) // NB: the point is time passing, not a condition
	_, err = kv.Put(context.Background(), &pb.PutRequest{Key: []byte("a"), Value: []byte("1")})
	require.NoError(t, err)
	require.Equal(t, `{"result":{"header":{"cluster_id":"1","member_id":"7","revision":"2","raft_term":"2"},"events":[{"kv":{"key":"YQ==","create_revision":"2","mod_revision":"2","version":"1","value":"MQ=="}}]}}`,
		strings.ReplaceAll(readLine(t, gw, true), " ", ""))
	for {
		line := readLine(t, sse, false)
		if line == "event: put" {
			break
		}
	}
	require.Equal(t, "id: 2", readLine(t, sse, false))
	require.Equal(t, `data: {"key":"a","create_revision":2,"mod_revision":2,"version":1,"value":"1"}`, readLine(t, sse, false))

	t.Logf("Step 3: the clients go away; the hub streams are released")
	cancel()
	resp.Body.Close()
	sresp.Body.Close()
	nethttp.DefaultClient.CloseIdleConnections()
	require.Eventually(t, func() bool { return kv.hub.Stats().Streams == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, kv.hub.Stats().Watchers)
}

// StopStreams (Frontend.Shutdown) ends the streams in flight.
func TestWatchStream_StopStreams(t *testing.T) {
	base, kv, h := serveWatchHandler(t, Config{})
	resp, err := nethttp.Post(base+"/v3/watch", "application/json", strings.NewReader(`{"create_request":{"key":"YQ=="}}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	require.Contains(t, readLine(t, r, true), `"created":true`)
	h.StopStreams()
	_, err = r.ReadString('\n')
	require.Error(t, err) // the body ends: io.EOF
	require.Eventually(t, func() bool { return kv.hub.Stats().Streams == 0 }, 5*time.Second, 10*time.Millisecond)
}

// A gateway stream that just wrote 64 responses or more waits
// --watch-batch-delay, and what committed meanwhile goes out merged: one
// response per watcher with every new revision's event.
func TestWatchStream_GatewayBatchDelay(t *testing.T) {
	const watchers, puts, delay = 100, 5, 300 * time.Millisecond
	base, kv, _ := serveWatchHandler(t, Config{})
	kv.srv.WatchBatchDelay = delay

	t.Logf("Step 1: one gateway stream with %d watchers on key a", watchers)
	body := strings.Repeat(`{"create_request":{"key":"YQ=="}}`+"\n", watchers)
	resp, err := nethttp.Post(base+"/v3/watch", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for i := 0; i < watchers; i++ {
		require.Contains(t, readLine(t, r, true), `"created":true`)
	}

	t.Logf("Step 2: one put: %d responses at once, then the stream waits %s", watchers, delay)
	_, err = kv.Put(context.Background(), &pb.PutRequest{Key: []byte("a"), Value: []byte("0")})
	require.NoError(t, err)
	for i := 0; i < watchers; i++ {
		require.Contains(t, readLine(t, r, true), `"mod_revision":"2"`)
	}
	sent := time.Now()

	t.Logf("Step 3: %d more puts while it waits", puts)
	for i := 1; i <= puts; i++ {
		_, err = kv.Put(context.Background(), &pb.PutRequest{Key: []byte("a"), Value: []byte{byte('0' + i)}})
		require.NoError(t, err)
	}

	t.Logf("Step 4: after the delay, each watcher gets all %d revisions in one response", puts)
	for i := 0; i < watchers; i++ {
		line := readLine(t, r, true)
		if i == 0 {
			require.GreaterOrEqual(t, time.Since(sent), delay-100*time.Millisecond, "the stream did not wait")
		}
		require.Equal(t, puts, strings.Count(line, `"mod_revision"`), "watcher response %d: %s", i, line)
	}
}
