package http

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMux_OnePortBothProtocols(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	m := NewMux(l, 300*time.Millisecond, nil)
	h, _, _ := newTestHandler(t, Config{})

	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	hs := h.NewServer(h.Handle)
	served := make(chan error, 3)
	go func() { served <- m.Serve() }()
	go func() { served <- gs.Serve(m.GRPC()) }()
	go func() { served <- hs.Serve(m.HTTP()) }()
	addr := l.Addr().String()

	t.Logf("Step 1: HTTP/1.1 requests (PUT starts with 'P' like the HTTP/2 preface)")
	for _, tc := range []struct{ method, uri, body, want string }{
		{"PUT", "/v1/kv/k", "v", `{"revision":2}` + "\n"},
		{"GET", "/v1/kv/k", "", "v"},
		{"POST", "/v3/kv/range", `{"key":"aw=="}`, ""},
	} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + addr + tc.uri)
		req.Header.SetMethod(tc.method)
		req.SetBodyString(tc.body)
		require.NoError(t, fasthttp.DoTimeout(req, resp, 5*time.Second))
		require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
		if tc.want != "" {
			require.Equal(t, tc.want, string(resp.Body()))
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}

	t.Logf("Step 2: a gRPC client on the same port")
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.Status)

	t.Logf("Step 3: a client that sends nothing is closed after the sniff timeout")
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	require.Less(t, time.Since(start), 3*time.Second)

	t.Logf("Step 4: a client that stops inside the preface is closed too")
	c2, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Write([]byte("PRI * HTTP/2.0\r\n"))
	require.NoError(t, err)
	require.NoError(t, c2.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c2.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)

	t.Logf("Step 5: stopping gRPC leaves HTTP served; Close ends Serve")
	gs.Stop()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://" + addr + "/v1/kv/k")
	require.NoError(t, fasthttp.DoTimeout(req, resp, 5*time.Second))
	require.Equal(t, "v", string(resp.Body()))
	require.NoError(t, hs.Shutdown())
	require.NoError(t, m.Close())
	for i := 0; i < 3; i++ {
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Fatal("a server did not return after Close")
		}
	}
}
