package http

import (
	"bytes"
	"net/url"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/mvcc"
)

// FuzzGatewayDecode feeds arbitrary bodies to the gateway's JSON decoding
// and the validation that follows it: bad input must be an error, never a
// panic. The seeds (run by every `go test`) are the request shapes of
// etcd's gateway documentation and a few broken ones.
func FuzzGatewayDecode(f *testing.F) {
	for _, s := range []string{
		`{"key":"Zm9v","value":"YmFy"}`,
		`{"key":"Zm9v","range_end":"Zm9w","limit":"10","sort_order":"DESCEND"}`,
		`{"compare":[{"result":"EQUAL","target":"VALUE","key":"Zm9v","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"YmF6"}}]}`,
		`{"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],"failure":[{"requestRange":{"key":"Zm9v"}}]}`,
		`{"success":[{"request_txn":{"success":[{"request_delete_range":{"key":"AA==","range_end":"AA=="}}]}}]}`,
		`{"key":"not base64!"}`, `{"limit":"-1"}`, `{"key":`, `[]`, `null`, "\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var rr pb.RangeRequest
		if gwUnmarshal.Unmarshal(body, &rr) == nil {
			_ = mvcc.CheckRange(&rr)
		}
		var pr pb.PutRequest
		if gwUnmarshal.Unmarshal(body, &pr) == nil {
			_ = mvcc.CheckPut(&pr)
			_ = mvcc.CheckSize(&pr, mvcc.DefaultMaxRequestBytes)
		}
		var tr pb.TxnRequest
		if gwUnmarshal.Unmarshal(body, &tr) == nil {
			_ = mvcc.CheckTxn(&tr, mvcc.DefaultMaxTxnOps)
		}
		var dr pb.DeleteRangeRequest
		if gwUnmarshal.Unmarshal(body, &dr) == nil {
			_ = mvcc.CheckDeleteRange(&dr)
		}
	})
}

// FuzzRESTKey: any key bytes, percent-encoded as a client would, decode back
// to the same bytes; any raw path decodes or is refused, never panics.
func FuzzRESTKey(f *testing.F) {
	for _, s := range []string{"foo", "a/b/c", "with space", "%zz", "%", "%4", "\x00\xff", "ünï", "%2F%00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		enc := url.PathEscape(string(key))
		got, ok := unescapePath(nil, []byte(enc))
		if !ok || !bytes.Equal(got, key) {
			t.Fatalf("key %q encoded as %q decoded to %q (ok %v)", key, enc, got, ok)
		}
		_, _ = unescapePath(nil, key) // raw input: decoded or refused
	})
}
