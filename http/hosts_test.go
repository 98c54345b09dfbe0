package http

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// TestHostWhitelist_AsEtcd: by default (etcd's --host-whitelist "*") any
// Host is served; with a white list a plain-HTTP request naming another
// host gets etcd's 421 and its text, without CORS headers, whatever the
// port; the metrics-only listener is not checked.
func TestHostWhitelist_AsEtcd(t *testing.T) {
	t.Logf("Step 1: the default policy serves any host")
	h, _, _ := newTestHandler(t, Config{})
	resp := do(h, "POST", "/v3/kv/range", `{"key":"YQ=="}`, "Host", "evil.example:2379")
	require.Equal(t, 200, resp.StatusCode())

	t.Logf("Step 2: a white list serves its hosts, with or without a port")
	h2, _, _ := newTestHandler(t, Config{HostWhitelist: []string{"localhost", "10.0.0.1", "::1"}})
	for _, host := range []string{"localhost", "localhost:2379", "10.0.0.1:80", "[::1]:2379"} {
		resp = do(h2, "POST", "/v3/kv/range", `{"key":"YQ=="}`, "Host", host)
		require.Equal(t, 200, resp.StatusCode(), host)
	}

	t.Logf("Step 3: another host gets 421 with etcd's text and no CORS headers")
	resp = do(h2, "POST", "/v3/kv/range", `{"key":"YQ=="}`, "Host", "evil.example:2379", "Origin", "http://evil.example")
	require.Equal(t, fasthttp.StatusMisdirectedRequest, resp.StatusCode())
	require.Equal(t, "text/plain; charset=utf-8", string(resp.Header.ContentType()))
	require.Contains(t, string(resp.Body()), "etcd received your request, but the Host header was unrecognized.")
	require.Contains(t, string(resp.Body()), `--host-whitelist "evil.example"`)
	require.Empty(t, resp.Header.Peek("Access-Control-Allow-Origin"))
	for _, path := range []string{"/v1/kv/a", "/health", "/nowhere"} {
		require.Equal(t, 421, do(h2, "GET", path, "", "Host", "evil.example").StatusCode(), path)
	}

	t.Logf("Step 4: the metrics-only listener serves any host")
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI("/health")
	req.Header.Set("Host", "evil.example")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	h2.HandleOps(&ctx)
	require.NotEqual(t, 421, ctx.Response.StatusCode())
}

// TestOverTLS_SeesThroughTheSniff: a TLS connection is found under the
// client listener's sniffing wrapper, and a plain one is not taken for it.
func TestOverTLS_SeesThroughTheSniff(t *testing.T) {
	t.Logf("Step 1: prepare a plain connection and a TLS one over it")
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	tc := tls.Server(a, &tls.Config{})

	t.Logf("Step 2: verify what overTLS reports, bare and wrapped")
	require.False(t, overTLS(a))
	require.False(t, overTLS(&sniffedConn{Conn: a}))
	require.True(t, overTLS(tc))
	require.True(t, overTLS(&sniffedConn{Conn: tc}))
	require.False(t, overTLS(nil))
}
