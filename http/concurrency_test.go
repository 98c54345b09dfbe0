package http

import (
	"bufio"
	"context"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/auth"
)

// fakeConcurrency is a Lock and Election service that records what it is
// asked. Names steer it: "wait" blocks until the call ends, "badlease"
// fails as etcd does for a revoked lease, "denied" is refused with
// permission denied.
type fakeConcurrency struct {
	v3lockpb.UnimplementedLockServer
	epb.UnimplementedElectionServer
	mu      sync.Mutex
	tokens  []string
	waiting chan struct{}            // one send per call that starts waiting
	observe chan *epb.LeaderResponse // what Observe streams; closed: the stream fails
}

func (f *fakeConcurrency) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, strings.Join(md.Get(rpctypes.TokenFieldNameGRPC), ","))
}

func (f *fakeConcurrency) Lock(ctx context.Context, r *v3lockpb.LockRequest) (*v3lockpb.LockResponse, error) {
	f.record(ctx)
	switch string(r.Name) {
	case "wait":
		f.waiting <- struct{}{}
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	case "badlease":
		return nil, status.Error(codes.Unknown, "etcdserver: requested lease not found")
	}
	return &v3lockpb.LockResponse{Header: &pb.ResponseHeader{Revision: 5}, Key: append(r.Name, "/1"...)}, nil
}

func (f *fakeConcurrency) Unlock(ctx context.Context, r *v3lockpb.UnlockRequest) (*v3lockpb.UnlockResponse, error) {
	f.record(ctx)
	return &v3lockpb.UnlockResponse{Header: &pb.ResponseHeader{Revision: 6}}, nil
}

func (f *fakeConcurrency) Leader(ctx context.Context, r *epb.LeaderRequest) (*epb.LeaderResponse, error) {
	return nil, status.Error(codes.Unknown, "election: no leader")
}

func (f *fakeConcurrency) Observe(r *epb.LeaderRequest, s epb.Election_ObserveServer) error {
	if string(r.Name) == "denied" {
		return rpctypes.ErrGRPCPermissionDenied
	}
	for {
		select {
		case m, ok := <-f.observe:
			if !ok {
				return status.Error(codes.Unknown, "observe failed")
			}
			if err := s.Send(m); err != nil {
				return err
			}
		case <-s.Context().Done():
			return s.Context().Err()
		}
	}
}

// serveWithGRPC serves a handler and a gRPC server with the fake services
// on one client listener, through Serve (so the gateway dials the gRPC
// server in process as a member's does), and returns the base URL.
func serveWithGRPC(t *testing.T) (string, *Handler, *fakeConcurrency) {
	t.Helper()
	f := &fakeConcurrency{waiting: make(chan struct{}, 4), observe: make(chan *epb.LeaderResponse)}
	gs := grpc.NewServer()
	v3lockpb.RegisterLockServer(gs, f)
	epb.RegisterElectionServer(gs, f)
	h := newHandler(newStoreKV(t), &fakeMaintenance{leader: 7}, Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	front := Serve(h, gs, Listeners{Client: []net.Listener{l}})
	t.Cleanup(func() {
		front.Close()
		gs.Stop()
	})
	return "http://" + l.Addr().String(), h, f
}

func postJSON(t *testing.T, url, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := nethttp.NewRequest("POST", url, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := nethttp.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	_, err = bufio.NewReader(resp.Body).WriteTo(&b)
	require.NoError(t, err)
	return resp.StatusCode, b.String()
}

func TestGatewayLock_CallsTheGRPCService(t *testing.T) {
	base, _, f := serveWithGRPC(t)

	t.Logf("Step 1: lock and unlock answer the service's replies in the gateway's JSON")
	code, body := postJSON(t, base+"/v3/lock/lock", `{"name":"bXlsb2Nr","lease":"100"}`, "Authorization", "Bearer tok1")
	require.Equal(t, 200, code, body)
	require.JSONEq(t, `{"header":{"revision":"5"},"key":"bXlsb2NrLzE="}`, body)
	code, body = postJSON(t, base+"/v3/lock/unlock", `{"key":"bXlsb2NrLzE="}`, "Authorization", "tok2")
	require.Equal(t, 200, code, body)
	require.JSONEq(t, `{"header":{"revision":"6"}}`, body)

	t.Logf("Step 2: the Authorization token reaches the service as clientv3's token metadata")
	code, _ = postJSON(t, base+"/v3/lock/unlock", `{"key":"eA=="}`)
	require.Equal(t, 200, code)
	f.mu.Lock()
	require.Equal(t, []string{"tok1", "tok2", ""}, f.tokens)
	f.mu.Unlock()

	t.Logf("Step 3: the service's errors keep their code and message (Unknown: 500, as etcd's gateway)")
	code, body = postJSON(t, base+"/v3/lock/lock", `{"name":"YmFkbGVhc2U="}`)
	require.Equal(t, 500, code)
	require.JSONEq(t, `{"code":2,"message":"etcdserver: requested lease not found"}`, body)
	code, body = postJSON(t, base+"/v3/election/leader", `{"name":"ZQ=="}`)
	require.Equal(t, 500, code)
	require.JSONEq(t, `{"code":2,"message":"election: no leader"}`, body)

	t.Logf("Step 4: malformed JSON is a 400 before any call")
	code, _ = postJSON(t, base+"/v3/lock/lock", `{"name":`)
	require.Equal(t, 400, code)
}

func TestGatewayLock_StopEndsWaitingCalls(t *testing.T) {
	base, h, f := serveWithGRPC(t)

	t.Logf("Step 1: a lock call waits in the service")
	type reply struct {
		code int
		body string
	}
	got := make(chan reply, 1)
	go func() {
		code, body := postJSON(t, base+"/v3/lock/lock", `{"name":"d2FpdA=="}`)
		got <- reply{code, body}
	}()
	select {
	case <-f.waiting:
	case <-time.After(5 * time.Second):
		t.Fatal("the lock call did not reach the service")
	}

	t.Logf("Step 2: StopStreams (a graceful shutdown's first step) ends it with etcd's server stopped")
	h.StopStreams()
	select {
	case r := <-got:
		require.Equal(t, 503, r.code)
		require.JSONEq(t, `{"code":14,"message":"etcdserver: server stopped"}`, r.body)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting lock call did not end")
	}
}

func TestGatewayObserve_Streams(t *testing.T) {
	setKeepAlive(t, 100*time.Millisecond)
	base, _, f := serveWithGRPC(t)

	t.Logf("Step 1: an error before any message gets its HTTP status")
	code, body := postJSON(t, base+"/v3/election/observe", `{"name":"ZGVuaWVk"}`)
	require.Equal(t, 403, code)
	require.JSONEq(t, `{"error":{"code":7,"message":"etcdserver: permission denied"}}`, body)

	t.Logf("Step 2: each message is one {\"result\":...} line, keep-alives between")
	resp, err := nethttp.Post(base+"/v3/election/observe", "application/json", strings.NewReader(`{"name":"ZQ=="}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	kv := func(v string) *epb.LeaderResponse {
		return &epb.LeaderResponse{Header: &pb.ResponseHeader{Revision: 4},
			Kv: &mvccpb.KeyValue{Key: []byte("e/1"), Value: []byte(v), CreateRevision: 4, ModRevision: 4, Version: 1}}
	}
	f.observe <- kv("v1")
	require.Equal(t, 200, resp.StatusCode, "answered at the first message")
	require.Equal(t, `{"result":{"header":{"revision":"4"},"kv":{"key":"ZS8x","create_revision":"4","mod_revision":"4","version":"1","value":"djE="}}}`,
		strings.ReplaceAll(readLine(t, r, true), " ", ""))
	time.Sleep(300 * time.Millisecond) // NB: lets keep-alives go out; readLine skips them
	f.observe <- kv("v2")
	require.Contains(t, readLine(t, r, true), `"value":"djI="`)

	t.Logf("Step 3: a failing stream ends with grpc-gateway's error line")
	close(f.observe)
	require.Equal(t, `{"error":{"code":2,"message":"observe failed"}}`, readLine(t, r, true))
}

func TestGatewayConcurrency_NotServedWithoutGRPC(t *testing.T) {
	h, _, _ := newTestHandler(t, Config{})
	for _, p := range []string{"/v3/lock/lock", "/v3/lock/unlock", "/v3/election/campaign", "/v3/election/proclaim",
		"/v3/election/leader", "/v3/election/observe", "/v3/election/resign"} {
		r := do(h, "POST", p, `{}`)
		require.Equal(t, 404, r.StatusCode(), p)
		require.Equal(t, 501, do(h, "GET", p, "").StatusCode(), p)
	}
}

// adminKV is a store whose admin check fails with err.
type adminKV struct {
	*storeKV
	err error
}

func (a *adminKV) AuthorizeAdmin(context.Context) error { return a.err }

func TestGatewayMaintenance_HashIsAdminOnly(t *testing.T) {
	kv := &adminKV{storeKV: newStoreKV(t), err: auth.ErrPermissionDenied}
	h := newHandler(kv, &fakeMaintenance{leader: 7}, Config{})
	t.Cleanup(h.Close)

	t.Logf("Step 1: refused when the admin check fails, as over gRPC")
	for _, p := range []string{"/v3/maintenance/hash", "/v3/maintenance/hashkv"} {
		r := do(h, "POST", p, `{}`)
		require.Equal(t, 403, r.StatusCode(), p)
		require.JSONEq(t, `{"code":7,"message":"etcdserver: permission denied"}`, string(r.Body()), p)
	}
	t.Logf("Step 2: answered when it passes")
	kv.err = nil
	r := do(h, "POST", "/v3/maintenance/hash", `{}`)
	require.Equal(t, 200, r.StatusCode())
	require.JSONEq(t, `{"hash":42}`, string(r.Body()))
}
