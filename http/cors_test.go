package http

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// TestCORS_AsEtcd: by default (etcd's --cors "*") every answer to a
// request with an Origin on the client URLs carries etcd's CORS headers and
// an OPTIONS preflight on any path is answered 200; with a white list only
// its origins get them, the origin echoed; requests without an Origin and
// the metrics-only listener get none.
func TestCORS_AsEtcd(t *testing.T) {
	t.Logf("Step 1: the default policy: every origin")
	h, _, _ := newTestHandler(t, Config{})
	resp := do(h, "POST", "/v3/kv/range", `{"key":"YQ=="}`)
	require.Equal(t, 200, resp.StatusCode())
	require.Empty(t, resp.Header.Peek("Access-Control-Allow-Origin"), "no Origin: not a browser")
	resp = do(h, "POST", "/v3/kv/range", `{"key":"YQ=="}`, "Origin", "https://app.example")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "*", string(resp.Header.Peek("Access-Control-Allow-Origin")))
	require.Equal(t, "POST, GET, OPTIONS, PUT, DELETE", string(resp.Header.Peek("Access-Control-Allow-Methods")))
	require.Equal(t, "accept, content-type, authorization", string(resp.Header.Peek("Access-Control-Allow-Headers")))
	for _, path := range []string{"/v3/kv/put", "/v1/kv/a", "/nowhere"} {
		resp = do(h, "OPTIONS", path, "", "Origin", "https://app.example")
		require.Equal(t, 200, resp.StatusCode(), path)
		require.Equal(t, "*", string(resp.Header.Peek("Access-Control-Allow-Origin")), path)
		require.Empty(t, resp.Body(), path)
	}

	t.Logf("Step 2: a white list: its origin is echoed, others get no CORS headers")
	h2, _, _ := newTestHandler(t, Config{CORS: []string{"https://a.example", "https://b.example"}})
	resp = do(h2, "OPTIONS", "/v3/kv/put", "", "Origin", "https://b.example")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "https://b.example", string(resp.Header.Peek("Access-Control-Allow-Origin")))
	resp = do(h2, "POST", "/v3/kv/range", `{"key":"YQ=="}`, "Origin", "https://evil.example")
	require.Equal(t, 200, resp.StatusCode())
	require.Empty(t, resp.Header.Peek("Access-Control-Allow-Origin"))

	t.Logf("Step 3: the metrics-only listener sends no CORS headers")
	var req fasthttp.Request
	req.Header.SetMethod("OPTIONS")
	req.SetRequestURI("/health")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	h.HandleOps(&ctx)
	require.Equal(t, 405, ctx.Response.StatusCode())
	require.Empty(t, ctx.Response.Header.Peek("Access-Control-Allow-Origin"))
}
