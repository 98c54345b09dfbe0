package http

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// gwReply decodes a gateway response body for comparison.
func gwJSON(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m), string(body))
	return m
}

func TestGateway_EncodingAsEtcd(t *testing.T) {
	h, _, _ := newTestHandler(t, Config{})

	t.Logf("Step 1: put with base64 key/value; the header has int64 as strings, snake_case")
	r := do(h, "POST", "/v3/kv/put", `{"key":"Zm9v","value":"YmFy"}`)
	require.Equal(t, 200, r.StatusCode(), string(r.Body()))
	require.Equal(t, map[string]any{"header": map[string]any{"revision": "2"}}, gwJSON(t, r.Body()))

	t.Logf("Step 2: range answers etcd's JSON, zero fields omitted")
	r = do(h, "POST", "/v3/kv/range", `{"key":"Zm9v"}`)
	require.Equal(t, 200, r.StatusCode())
	require.Equal(t, map[string]any{
		"header": map[string]any{"revision": "2"},
		"kvs":    []any{map[string]any{"key": "Zm9v", "create_revision": "2", "mod_revision": "2", "version": "1", "value": "YmFy"}},
		"count":  "1",
	}, gwJSON(t, r.Body()))

	t.Logf("Step 3: camelCase and snake_case input both work; enums by name")
	r = do(h, "POST", "/v3/kv/range", `{"key":"Zm9v","rangeEnd":"Zm9w","countOnly":true}`)
	require.Equal(t, map[string]any{"header": map[string]any{"revision": "2"}, "count": "1"}, gwJSON(t, r.Body()))
	r = do(h, "POST", "/v3/kv/range", `{"key":"Zm9v","range_end":"Zm9w","sort_order":"DESCEND","keys_only":true}`)
	require.Equal(t, 200, r.StatusCode(), string(r.Body()))
	require.Equal(t, "1", gwJSON(t, r.Body())["count"])

	t.Logf("Step 4: txn with compare and both branches")
	r = do(h, "POST", "/v3/kv/txn", `{"compare":[{"target":"VALUE","key":"Zm9v","value":"YmFy"}],
		"success":[{"request_put":{"key":"Zm9v","value":"YmF6"}}],"failure":[{"requestRange":{"key":"Zm9v"}}]}`)
	require.Equal(t, 200, r.StatusCode(), string(r.Body()))
	m := gwJSON(t, r.Body())
	require.Equal(t, true, m["succeeded"])
	require.Equal(t, []any{map[string]any{"response_put": map[string]any{"header": map[string]any{"revision": "3"}}}}, m["responses"])

	t.Logf("Step 5: deleterange with prev_kv, then compaction")
	r = do(h, "POST", "/v3/kv/deleterange", `{"key":"Zm9v","prev_kv":true}`)
	m = gwJSON(t, r.Body())
	require.Equal(t, "1", m["deleted"])
	require.Equal(t, "YmF6", m["prev_kvs"].([]any)[0].(map[string]any)["value"])
	r = do(h, "POST", "/v3/kv/compaction", `{"revision":"3"}`)
	require.Equal(t, 200, r.StatusCode(), string(r.Body()))
	r = do(h, "POST", "/v3/kv/range", `{"key":"Zm9v","revision":"2"}`)
	require.Equal(t, 400, r.StatusCode())
	require.Equal(t, map[string]any{"code": float64(11), "message": "etcdserver: mvcc: required revision has been compacted"}, gwJSON(t, r.Body()))

	t.Logf("Step 6: cluster and maintenance")
	r = do(h, "POST", "/v3/cluster/member/list", `{}`)
	require.Equal(t, "m1", gwJSON(t, r.Body())["members"].([]any)[0].(map[string]any)["name"])
	r = do(h, "POST", "/v3/maintenance/status", ``)
	require.Equal(t, "3.7.3", gwJSON(t, r.Body())["version"])
	r = do(h, "POST", "/v3/maintenance/hash", `{}`)
	require.Equal(t, float64(42), gwJSON(t, r.Body())["hash"])
	r = do(h, "POST", "/v3/maintenance/hashkv", `{"revision":"0"}`)
	require.Equal(t, float64(43), gwJSON(t, r.Body())["hash"])
	r = do(h, "POST", "/v3/maintenance/alarm", `{"action":"GET"}`)
	require.Equal(t, 200, r.StatusCode(), string(r.Body()))
}

func TestGateway_BadInput(t *testing.T) {
	h, _, _ := newTestHandler(t, Config{MaxRequestBytes: 64, MaxTxnOps: 2})
	cases := []struct {
		name, method, path, body string
		status, code             int
		message                  string
	}{
		{"malformed JSON", "POST", "/v3/kv/put", `{"key":`, 400, 3, ""},
		{"not an object", "POST", "/v3/kv/range", `[1,2]`, 400, 3, ""},
		{"bad base64", "POST", "/v3/kv/put", `{"key":"***","value":"YmFy"}`, 400, 3, ""},
		{"wrong type", "POST", "/v3/kv/range", `{"limit":"ten"}`, 400, 3, ""},
		{"bad enum number", "POST", "/v3/kv/range", `{"key":"Zm9v","sort_order":99}`, 400, 3, "etcdserver: invalid sort option"},
		{"empty key", "POST", "/v3/kv/range", `{}`, 400, 3, "etcdserver: key is not provided"},
		{"empty put key", "POST", "/v3/kv/put", `{"value":"YmFy"}`, 400, 3, "etcdserver: key is not provided"},
		{"too large", "POST", "/v3/kv/put", `{"key":"Zm9v","value":"` + strings.Repeat("A", 200) + `"}`, 400, 3, "etcdserver: request is too large"},
		{"too many ops", "POST", "/v3/kv/txn", `{"success":[{"request_range":{"key":"YQ=="}},{"request_range":{"key":"Yg=="}},{"request_range":{"key":"Yw=="}}]}`, 400, 3, "etcdserver: too many operations in txn request"},
		{"duplicate key", "POST", "/v3/kv/txn", `{"success":[{"request_put":{"key":"YQ=="}},{"request_put":{"key":"YQ=="}}]}`, 400, 3, "etcdserver: duplicate key given in txn request"},
		{"future revision", "POST", "/v3/kv/range", `{"key":"Zm9v","revision":"100"}`, 400, 11, "etcdserver: mvcc: required revision is a future revision"},
		{"ignore_value with value", "POST", "/v3/kv/put", `{"key":"Zm9v","value":"YQ==","ignore_value":true}`, 400, 3, "etcdserver: value is provided"},
		{"unknown path", "POST", "/v3/kv/nosuch", `{}`, 404, 5, "Not Found"},
		{"watch not yet served", "POST", "/v3/watch", `{}`, 404, 5, "Not Found"},
		{"GET on a gateway path", "GET", "/v3/kv/range", ``, 501, 12, "Method Not Allowed"},
		{"PUT on health", "PUT", "/health", ``, 405, 12, "Method Not Allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(h, tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, r.StatusCode(), string(r.Body()))
			m := gwJSON(t, r.Body())
			require.Equal(t, float64(tc.code), m["code"])
			if tc.message != "" {
				require.Equal(t, tc.message, m["message"])
			} else {
				require.NotEmpty(t, m["message"])
			}
		})
	}
	// Unknown fields are ignored, as etcd's gateway does.
	r := do(h, "POST", "/v3/kv/put", `{"key":"Zm9v","value":"YmFy","no_such_field":1}`)
	require.Equal(t, 200, r.StatusCode(), string(r.Body()))
	require.Equal(t, "POST", string(do(h, "GET", "/v3/kv/put", "").Header.Peek("Allow")))
}

// TestGateway_V3BetaIsV3: etcd 3.7 still serves its gateway's old prefix
// /v3beta/ as /v3/; so does MetaStore.
func TestGateway_V3BetaIsV3(t *testing.T) {
	t.Logf("Step 1: a handler with one key")
	h, _, _ := newTestHandler(t, Config{})
	require.Equal(t, 200, do(h, "POST", "/v3/kv/put", `{"key":"YQ==","value":"MQ=="}`).StatusCode())

	t.Logf("Step 2: the same range under both prefixes")
	a := do(h, "POST", "/v3/kv/range", `{"key":"YQ=="}`)
	b := do(h, "POST", "/v3beta/kv/range", `{"key":"YQ=="}`)

	t.Logf("Step 3: the answers are the same; /v3alpha/ is unknown, as in etcd")
	require.Equal(t, 200, b.StatusCode())
	require.Equal(t, string(a.Body()), string(b.Body()))
	require.Contains(t, string(b.Body()), `"kvs":[`)
	require.Equal(t, 404, do(h, "POST", "/v3alpha/kv/range", `{"key":"YQ=="}`).StatusCode())
}

// TestNotFound_AsEtcd: a path nothing serves is grpc-gateway's JSON error
// under /v3/ (and the REST API's /v1/), elsewhere Go's plain text, as etcd.
func TestNotFound_AsEtcd(t *testing.T) {
	t.Logf("Step 1: a handler")
	h, _, _ := newTestHandler(t, Config{})

	t.Logf("Step 2: unknown paths inside and outside the APIs")
	in := do(h, "POST", "/v3/nowhere", `{}`)
	out := do(h, "POST", "/v3alpha/kv/range", `{}`)

	t.Logf("Step 3: JSON inside, plain text outside")
	require.Equal(t, 404, in.StatusCode())
	require.Equal(t, "{\"code\":5,\"message\":\"Not Found\"}\n", string(in.Body()))
	require.Equal(t, 404, out.StatusCode())
	require.Equal(t, "text/plain; charset=utf-8", string(out.Header.ContentType()))
	require.Equal(t, "404 page not found\n", string(out.Body()))
}

// TestGateway_Disabled: with the gateway off (--enable-grpc-gateway=false)
// no /v3/ path is served, however the path is written; REST stays.
func TestGateway_Disabled(t *testing.T) {
	t.Logf("Step 1: a handler with the gateway off")
	h, _, _ := newTestHandler(t, Config{DisableGateway: true})

	t.Logf("Step 2: gateway paths, plainly and in other spellings, and a REST put")
	var codes []int
	for _, p := range []string{"/v3/kv/range", "//v3/kv/range", "/v3beta/kv/range", "/v3/../v3/kv/range"} {
		codes = append(codes, do(h, "POST", p, `{"key":"YQ=="}`).StatusCode())
	}
	rest := do(h, "PUT", "/v1/kv/a", "1")

	t.Logf("Step 3: every gateway path is not found; REST answers")
	require.Equal(t, []int{404, 404, 404, 404}, codes)
	require.Equal(t, 200, rest.StatusCode())
}
