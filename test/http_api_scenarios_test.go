package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Scenarios of the HTTP API suites (http_api_{memory,rocksdb}_integration,
// http_api_{memory,rocksdb}_consistency): each twin calls them with its
// engine. Everything here talks plain HTTP to the member's client URL, the
// same port gRPC clients use.

var httpClient = &http.Client{Timeout: 10 * time.Second}

// httpReply is one HTTP response, read whole.
type httpReply struct {
	status int
	header http.Header
	body   []byte
}

// httpDo sends one request; headers are name, value pairs.
func httpDo(t *testing.T, method, url string, body []byte, headers ...string) httpReply {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return httpReply{status: resp.StatusCode, header: resp.Header, body: b}
}

// gwCall posts a JSON body to an etcd gateway path and decodes the reply.
func gwCall(t *testing.T, baseURL, path, body string) (int, map[string]any) {
	t.Helper()
	r := httpDo(t, "POST", baseURL+path, []byte(body))
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "%s: %s", path, r.body)
	return r.status, m
}

// restList is the JSON of a /v1/kv prefix listing.
type restList struct {
	Revision int64 `json:"revision"`
	Count    int64 `json:"count"`
	More     bool  `json:"more"`
	Kvs      []struct {
		Key            *string `json:"key"`
		KeyBase64      []byte  `json:"key_base64"`
		Value          *string `json:"value"`
		ValueBase64    []byte  `json:"value_base64"`
		CreateRevision int64   `json:"create_revision"`
		ModRevision    int64   `json:"mod_revision"`
		Version        int64   `json:"version"`
	} `json:"kvs"`
}

// restKVs renders a listing as "key=value m<mod> v<version>" lines.
func restKVs(t *testing.T, r httpReply) []string {
	t.Helper()
	require.Equal(t, 200, r.status, string(r.body))
	var l restList
	require.NoError(t, json.Unmarshal(r.body, &l), string(r.body))
	out := []string{}
	for _, kv := range l.Kvs {
		out = append(out, fmt.Sprintf("%s=%s m%d v%d", *kv.Key, *kv.Value, kv.ModRevision, kv.Version))
	}
	return out
}

func revisionOf(t *testing.T, r httpReply) int64 {
	t.Helper()
	rev, err := strconv.ParseInt(r.header.Get("X-Revision"), 10, 64)
	require.NoError(t, err, "X-Revision %q", r.header.Get("X-Revision"))
	return rev
}

func scenarioHTTPPutGetDelete(t *testing.T, engine string) {
	m := startMember(t, engine)
	base := m.clientURL

	t.Logf("Step 1: PUT /v1/kv/greeting, then GET returns the raw value with revision headers")
	r := httpDo(t, "PUT", base+"/v1/kv/greeting", []byte("hello world"))
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, `{"revision":2}`+"\n", string(r.body))
	require.Equal(t, `"2"`, r.header.Get("ETag"))
	r = httpDo(t, "GET", base+"/v1/kv/greeting", nil)
	require.Equal(t, 200, r.status)
	require.Equal(t, "hello world", string(r.body))
	require.Equal(t, "application/octet-stream", r.header.Get("Content-Type"))
	require.Equal(t, "2", r.header.Get("X-Revision"))
	require.Equal(t, `"2"`, r.header.Get("ETag"))
	require.Equal(t, "2", r.header.Get("X-Create-Revision"))
	require.Equal(t, "1", r.header.Get("X-Version"))

	t.Logf("Step 2: overwrite; version and revisions move, a serializable read agrees")
	r = httpDo(t, "PUT", base+"/v1/kv/greeting", []byte("hi"))
	require.Equal(t, `"3"`, r.header.Get("ETag"))
	r = httpDo(t, "GET", base+"/v1/kv/greeting?serializable=true", nil)
	require.Equal(t, "hi", string(r.body))
	require.Equal(t, "2", r.header.Get("X-Version"))
	require.Equal(t, "2", r.header.Get("X-Create-Revision"))
	r = httpDo(t, "GET", base+"/v1/kv/greeting?rev=2", nil)
	require.Equal(t, "hello world", string(r.body), "a read at an older revision")

	t.Logf("Step 3: keys with '/', spaces, %%2F and non-UTF-8 bytes round-trip")
	for i, path := range []string{"a/b/c", "with%20space", "slash%2Finside", "%00%ff%80bin", "..%2F..%2Fetc"} {
		val := []byte(fmt.Sprintf("v%d\x00\xff", i))
		r = httpDo(t, "PUT", base+"/v1/kv/"+path, val)
		require.Equal(t, 200, r.status, path)
		r = httpDo(t, "GET", base+"/v1/kv/"+path, nil)
		require.Equal(t, 200, r.status, path)
		require.Equal(t, val, r.body, path)
	}

	t.Logf("Step 4: DELETE; GET and a second DELETE are 404")
	r = httpDo(t, "DELETE", base+"/v1/kv/greeting", nil)
	require.Equal(t, 200, r.status)
	require.Equal(t, `{"revision":9,"deleted":1}`+"\n", string(r.body))
	r = httpDo(t, "GET", base+"/v1/kv/greeting", nil)
	require.Equal(t, 404, r.status)
	require.Equal(t, `{"code":5,"message":"key not found"}`+"\n", string(r.body))
	require.Equal(t, "9", r.header.Get("X-Revision"))
	require.Equal(t, 404, httpDo(t, "DELETE", base+"/v1/kv/greeting", nil).status)
}

func scenarioHTTPPrefixListing(t *testing.T, engine string) {
	m := startMember(t, engine)
	base := m.clientURL

	t.Logf("Step 1: five keys under app/, two elsewhere")
	for _, k := range []string{"app/e", "app/a", "app/c", "other", "app/b", "apq", "app/d"} {
		require.Equal(t, 200, httpDo(t, "PUT", base+"/v1/kv/"+k, []byte("val-"+k)).status)
	}

	t.Logf("Step 2: the prefix listing holds exactly app/*, in key order")
	require.Equal(t, []string{"app/a=val-app/a m3 v1", "app/b=val-app/b m6 v1", "app/c=val-app/c m4 v1",
		"app/d=val-app/d m8 v1", "app/e=val-app/e m2 v1"},
		restKVs(t, httpDo(t, "GET", base+"/v1/kv/app/?prefix=true", nil)))

	t.Logf("Step 3: limit reports more; keys_only drops values; rev reads the past")
	r := httpDo(t, "GET", base+"/v1/kv/app/?prefix=true&limit=2&keys_only=true", nil)
	var l restList
	require.NoError(t, json.Unmarshal(r.body, &l))
	require.True(t, l.More)
	require.Equal(t, int64(5), l.Count)
	require.Len(t, l.Kvs, 2)
	require.Nil(t, l.Kvs[0].Value)
	require.Equal(t, []string{"app/a=val-app/a m3 v1", "app/c=val-app/c m4 v1", "app/e=val-app/e m2 v1"},
		restKVs(t, httpDo(t, "GET", base+"/v1/kv/app/?prefix=true&rev=5", nil)))

	t.Logf("Step 4: DELETE ?prefix=true removes the five, nothing else")
	r = httpDo(t, "DELETE", base+"/v1/kv/app/?prefix=true", nil)
	require.Equal(t, `{"revision":9,"deleted":5}`+"\n", string(r.body))
	require.Equal(t, []string{"apq=val-apq m7 v1", "other=val-other m5 v1"},
		restKVs(t, httpDo(t, "GET", base+"/v1/kv/?prefix=true", nil)))
}

func scenarioHTTPCompareAndSwap(t *testing.T, engine string) {
	m := startMember(t, engine)
	base := m.clientURL + "/v1/kv/config"

	t.Logf("Step 1: create-only PUT succeeds once")
	r := httpDo(t, "PUT", base, []byte("v1"), "If-None-Match", "*")
	require.Equal(t, 200, r.status, string(r.body))
	etag := r.header.Get("ETag")
	require.Equal(t, `"2"`, etag)
	r = httpDo(t, "PUT", base, []byte("again"), "If-None-Match", "*")
	require.Equal(t, 412, r.status)
	require.Equal(t, `{"code":9,"message":"precondition failed: the key exists"}`+"\n", string(r.body))

	t.Logf("Step 2: two writers read ETag %s; the first If-Match wins, the second gets 412", etag)
	r = httpDo(t, "PUT", base, []byte("writer-1"), "If-Match", etag)
	require.Equal(t, 200, r.status)
	require.Equal(t, `"3"`, r.header.Get("ETag"), "the failed create-only txn wrote nothing")
	r = httpDo(t, "PUT", base, []byte("writer-2"), "If-Match", etag)
	require.Equal(t, 412, r.status)
	require.Equal(t, `"3"`, r.header.Get("ETag"), "412 tells the loser the current ETag")
	require.Equal(t, "writer-1", string(httpDo(t, "GET", base, nil).body))

	t.Logf("Step 3: the loser retries with the new ETag; a stale conditional DELETE fails")
	r = httpDo(t, "PUT", base, []byte("writer-2"), "If-Match", `"3"`)
	require.Equal(t, 200, r.status)
	require.Equal(t, `"4"`, r.header.Get("ETag"))
	require.Equal(t, 412, httpDo(t, "DELETE", base, nil, "If-Match", `"3"`).status)
	r = httpDo(t, "DELETE", base, nil, "If-Match", r.header.Get("ETag"))
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, 412, httpDo(t, "PUT", base, []byte("x"), "If-Match", "*").status, "If-Match: * needs the key")
}

// scenarioHTTPOps checks the operations endpoints on the client port, on an
// HTTP-only port and on a metrics port.
func scenarioHTTPOps(t *testing.T, engine string) {
	ports := freePorts(t, 2)
	httpURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	m := startMember(t, engine, memberOpts{extraFlags: []string{"--listen-http-urls", httpURL,
		"--listen-metrics-urls", metricsURL, "--enable-pprof"}})

	t.Logf("Step 1: health, livez, readyz, version on the client port")
	r := httpDo(t, "GET", m.clientURL+"/health", nil)
	require.Equal(t, 200, r.status)
	require.Equal(t, `{"health":"true","reason":""}`, string(r.body))
	require.Equal(t, 200, httpDo(t, "GET", m.clientURL+"/health?serializable=true", nil).status)
	require.Equal(t, "ok\n", string(httpDo(t, "GET", m.clientURL+"/livez", nil).body))
	require.Equal(t, "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n",
		string(httpDo(t, "GET", m.clientURL+"/readyz?verbose", nil).body))
	r = httpDo(t, "GET", m.clientURL+"/version", nil)
	var v map[string]string
	require.NoError(t, json.Unmarshal(r.body, &v))
	require.Equal(t, "3.7.3", v["etcdserver"])
	require.Equal(t, "3.7.0", v["etcdcluster"])
	require.NotEmpty(t, v["metastore"])

	t.Logf("Step 2: the HTTP-only port serves the API; the metrics port only operations")
	require.Equal(t, 200, httpDo(t, "PUT", httpURL+"/v1/kv/k", []byte("v")).status)
	require.Equal(t, "v", string(httpDo(t, "GET", m.clientURL+"/v1/kv/k", nil).body))
	require.Equal(t, 404, httpDo(t, "GET", metricsURL+"/v1/kv/k", nil).status)
	require.Equal(t, 200, httpDo(t, "GET", metricsURL+"/readyz", nil).status)
	require.Equal(t, 200, httpDo(t, "GET", metricsURL+"/debug/pprof/cmdline", nil).status)

	t.Logf("Step 3: /metrics has etcd's names and ours, with values that follow the writes")
	cli := newClient(t, m.endpoint())
	mustGet(t, cli, "k")
	body := string(httpDo(t, "GET", metricsURL+"/metrics", nil).body)
	for _, want := range []string{
		"etcd_server_has_leader 1", "etcd_server_is_leader 1", "etcd_server_leader_changes_seen_total 1",
		"etcd_server_proposals_pending 0", "etcd_server_proposals_failed_total 0",
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1`,
		`metastore_http_requests_total{code="200",route="v1_kv"} 2`,
		`metastore_http_requests_total{code="200",route="health"} 2`,
	} {
		require.Contains(t, body, want)
	}
	applied := metricValue(t, body, "etcd_server_proposals_applied_total")
	require.GreaterOrEqual(t, applied, 2.0)
	require.Equal(t, applied, metricValue(t, body, "etcd_server_proposals_committed_total"))
	require.Greater(t, metricValue(t, body, "etcd_disk_wal_fsync_duration_seconds_count"), 0.0)
	require.Greater(t, metricValue(t, body, "etcd_disk_backend_commit_duration_seconds_count"), 0.0)
	require.Greater(t, metricValue(t, body, "etcd_mvcc_db_total_size_in_bytes"), 0.0)
	require.Greater(t, metricValue(t, body, `metastore_engine_memory_bytes{kind="memtables"}`), 0.0, "the writes are in RocksDB's memtables")
	metricValue(t, body, `metastore_engine_memory_bytes{kind="block_cache"}`)
}

// metricValue reads the value of an unlabelled sample from /metrics text.
func metricValue(t *testing.T, body, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	require.NotNil(t, m, "metric %s in /metrics", name)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// --- 3 members -------------------------------------------------------------

// scenarioHTTPMemberList lists the members through the gateway of each.
func scenarioHTTPMemberList(t *testing.T, c *cluster) {
	t.Logf("Step 1: wait until every member has published its client URLs")
	waitFor(t, 10*time.Second, "three members with client URLs", func() bool {
		_, body := gwCall(t, c.members[0].clientURL, "/v3/cluster/member/list", `{"linearizable":true}`)
		members, _ := body["members"].([]any)
		n := 0
		for _, x := range members {
			if urls, ok := x.(map[string]any)["clientURLs"].([]any); ok && len(urls) > 0 {
				n++
			}
		}
		return n == 3
	})
	t.Logf("Step 2: every member lists the same three members with their URLs")
	var ids []string
	for i, m := range c.members {
		st, body := gwCall(t, m.clientURL, "/v3/cluster/member/list", `{"linearizable":true}`)
		require.Equal(t, 200, st)
		members := body["members"].([]any)
		require.Len(t, members, 3)
		var got []string
		for _, x := range members {
			mm := x.(map[string]any)
			got = append(got, fmt.Sprintf("%s %v %v", mm["name"], mm["peerURLs"], mm["clientURLs"]))
			if i == 0 {
				ids = append(ids, mm["ID"].(string))
			}
		}
		var want []string
		for _, o := range c.members {
			want = append(want, fmt.Sprintf("%s [%s] [%s]", o.name, o.peerURL, o.clientURL))
		}
		require.ElementsMatch(t, want, got)
		require.Equal(t, m.name, findMemberName(t, body))
	}
	for _, id := range ids {
		_, err := strconv.ParseUint(id, 10, 64)
		require.NoError(t, err, "member IDs are uint64 as decimal strings, as the gateway writes them")
	}
}

// findMemberName is the name of the member that answered (header.member_id).
func findMemberName(t *testing.T, body map[string]any) string {
	self := body["header"].(map[string]any)["member_id"]
	for _, x := range body["members"].([]any) {
		mm := x.(map[string]any)
		if mm["ID"] == self {
			return mm["name"].(string)
		}
	}
	t.Fatalf("member %v not in its own list", self)
	return ""
}

// scenarioHTTPWriteOneReadAll writes through one member's REST API and reads
// the same value, revision and ETag from every member.
func scenarioHTTPWriteOneReadAll(t *testing.T, c *cluster) {
	t.Logf("Step 1: PUT wora/k on %s", c.members[1].name)
	r := httpDo(t, "PUT", c.members[1].clientURL+"/v1/kv/wora/k", []byte("written-on-m2"))
	require.Equal(t, 200, r.status)
	etag := r.header.Get("ETag")

	t.Logf("Step 2: linearizable GET on every member sees it at once")
	for _, m := range c.members {
		r := httpDo(t, "GET", m.clientURL+"/v1/kv/wora/k", nil)
		require.Equal(t, 200, r.status, m.name)
		require.Equal(t, "written-on-m2", string(r.body), m.name)
		require.Equal(t, etag, r.header.Get("ETag"), m.name)
	}
	t.Logf("Step 3: the gateway range agrees, base64 and all")
	for _, m := range c.members {
		st, body := gwCall(t, m.clientURL, "/v3/kv/range", `{"key":"d29yYS9r"}`)
		require.Equal(t, 200, st)
		kv := body["kvs"].([]any)[0].(map[string]any)
		require.Equal(t, "d3JpdHRlbi1vbi1tMg==", kv["value"], m.name)
		require.Equal(t, strings.Trim(etag, `"`), kv["mod_revision"], m.name)
	}
}

// scenarioHTTPWritesToEveryMember writes distinct keys through each member
// and checks that every member lists all of them, identically.
func scenarioHTTPWritesToEveryMember(t *testing.T, c *cluster) {
	t.Logf("Step 1: each member takes 10 writes under its own prefix")
	for _, m := range c.members {
		for i := 0; i < 10; i++ {
			r := httpDo(t, "PUT", fmt.Sprintf("%s/v1/kv/each/%s/%02d", m.clientURL, m.name, i), []byte(m.name))
			require.Equal(t, 200, r.status)
		}
	}
	t.Logf("Step 2: every member lists the same 30 keys at the same revision")
	var first []string
	for _, m := range c.members {
		got := restKVs(t, httpDo(t, "GET", m.clientURL+"/v1/kv/each/?prefix=true", nil))
		require.Len(t, got, 30, m.name)
		if first == nil {
			first = got
		}
		require.Equal(t, first, got, m.name)
	}
}

// scenarioHTTPConcurrentWrites runs writers on every member at once and
// checks that no write is lost and revisions are dense.
func scenarioHTTPConcurrentWrites(t *testing.T, c *cluster) {
	const perWriter = 20
	t.Logf("Step 1: 2 writers per member, %d keys each, concurrently", perWriter)
	start := revisionOf(t, httpDo(t, "GET", c.members[0].clientURL+"/v1/kv/conc/?prefix=true", nil))
	var wg sync.WaitGroup
	errs := make(chan error, 6*perWriter)
	for _, m := range c.members {
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWriter; i++ {
					url := fmt.Sprintf("%s/v1/kv/conc/%s-%d/%02d", m.clientURL, m.name, w, i)
					resp, err := httpClient.Do(mustRequest("PUT", url, "x"))
					if err != nil {
						errs <- err
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs <- fmt.Errorf("PUT %s: %d", url, resp.StatusCode)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("Step 2: all %d keys everywhere; the revision advanced by exactly that", 6*perWriter)
	for _, m := range c.members {
		r := httpDo(t, "GET", m.clientURL+"/v1/kv/conc/?prefix=true&keys_only=true", nil)
		var l restList
		require.NoError(t, json.Unmarshal(r.body, &l))
		require.Equal(t, int64(6*perWriter), l.Count, m.name)
		require.Equal(t, start+6*perWriter, l.Revision, m.name)
	}
}

func mustRequest(method, url, body string) *http.Request {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	return req
}

// scenarioHTTPOneKeyFromEveryMember updates one key from each member in
// turn with If-Match, each writer using the ETag the previous one got.
func scenarioHTTPOneKeyFromEveryMember(t *testing.T, c *cluster) {
	t.Logf("Step 1: create the counter on %s", c.members[0].name)
	r := httpDo(t, "PUT", c.members[0].clientURL+"/v1/kv/counter", []byte("0"), "If-None-Match", "*")
	require.Equal(t, 200, r.status)
	etag := r.header.Get("ETag")
	t.Logf("Step 2: 9 rounds of read-modify-write, rotating members")
	for i := 1; i <= 9; i++ {
		m := c.members[i%3]
		cur := httpDo(t, "GET", m.clientURL+"/v1/kv/counter", nil)
		require.Equal(t, etag, cur.header.Get("ETag"), "%s sees the latest write", m.name)
		n, err := strconv.Atoi(string(cur.body))
		require.NoError(t, err)
		r := httpDo(t, "PUT", m.clientURL+"/v1/kv/counter", []byte(strconv.Itoa(n+1)), "If-Match", etag)
		require.Equal(t, 200, r.status, "round %d on %s: %s", i, m.name, r.body)
		etag = r.header.Get("ETag")
	}
	t.Logf("Step 3: every member reads 9 at version 10")
	for _, m := range c.members {
		r := httpDo(t, "GET", m.clientURL+"/v1/kv/counter", nil)
		require.Equal(t, "9", string(r.body))
		require.Equal(t, "10", r.header.Get("X-Version"))
		require.Equal(t, etag, r.header.Get("ETag"))
	}
}

// --- etcd's gateway documentation, replayed with curl ------------------------

// gatewayDocStep is one curl command of etcd's gateway guide and the output
// the guide shows for it.
type gatewayDocStep struct {
	// setup steps are not in the guide: they bring the store to the state
	// the next example assumes.
	setup bool
	// watch starts cmd in the background (a watch that streams until it is
	// stopped); expect is its first line. A later step with watchNext and
	// no cmd expects the stream's next line.
	watch, watchNext bool
	cmd              string
	// expect is the output as JSON, compared after dropping cluster_id,
	// member_id and raft_term (normalizeJSON). A string value "~re" in it
	// matches any value the regular expression re matches (the TTL left,
	// a token).
	expect string
	// token: the answer's "token" replaces the guide's token in later
	// commands.
	token bool
}

// guideToken is the token the guide shows; later commands send it.
const guideToken = "sssvIpwfnLAcWAQH.9"

// etcdGatewayDocSteps are the curl examples of etcd's "gRPC gateway" guide
// (etcd.io, dev-guide/api_grpc_gateway, v3.5 and later: watch, put, range,
// range by prefix, txn with target CREATE and target VERSION), each with
// the output the guide shows, in an order one fresh member reproduces: the
// watch example's put is the put example's (revision 2 in both). The Lease
// steps are not in the guide (it has none): they are etcd's lease tutorial
// (grant 300 with its lease ID 2be7547fbc6a5afa, put --lease, keep-alive,
// time-to-live, revoke) in the guide's form, with etcd's answers. The
// guide's Authentication examples assume a fresh cluster (revision 1): see
// etcdGatewayAuthDocSteps.
var etcdGatewayDocSteps = []gatewayDocStep{
	{watch: true, cmd: `curl -N http://localhost:2379/v3/watch -X POST -d '{"create_request": {"key":"Zm9v"} }'`,
		expect: `{"result":{"header":{"cluster_id":"12585971608760269493","member_id":"13847567121247652255","revision":"1","raft_term":"2"},"created":true}}`},
	{cmd: `curl -L http://localhost:2379/v3/kv/put -X POST -d '{"key": "Zm9v", "value": "YmFy"}'`,
		expect: `{"header":{"cluster_id":"12585971608760269493","member_id":"13847567121247652255","revision":"2","raft_term":"3"}}`},
	{watchNext: true,
		expect: `{"result":{"header":{"cluster_id":"12585971608760269493","member_id":"13847567121247652255","revision":"2","raft_term":"2"},"events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}}]}}`},
	{cmd: `curl -L http://localhost:2379/v3/kv/range -X POST -d '{"key": "Zm9v"}'`,
		expect: `{"header":{"cluster_id":"12585971608760269493","member_id":"13847567121247652255","revision":"2","raft_term":"3"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}`},
	{cmd: `curl -L http://localhost:2379/v3/kv/range -X POST -d '{"key": "Zm9v", "range_end": "Zm9w"}'`,
		expect: `{"header":{"cluster_id":"12585971608760269493","member_id":"13847567121247652255","revision":"2","raft_term":"3"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}`},
	{cmd: `curl -L http://localhost:2379/v3/kv/txn -X POST -d '{"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],"success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}]}'`,
		expect: `{"header":{"cluster_id":"12585971608760269493","member_id":"13847567121247652255","revision":"3","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"3"}}}]}`},
	{setup: true, cmd: `curl -sL http://localhost:2379/v3/kv/put -X POST -d '{"key": "b3RoZXI=", "value": "eA=="}'`},
	{setup: true, cmd: `curl -sL http://localhost:2379/v3/kv/put -X POST -d '{"key": "Zm9v", "value": "YmFy"}'`},
	{setup: true, cmd: `curl -sL http://localhost:2379/v3/kv/put -X POST -d '{"key": "Zm9v", "value": "YmF6"}'`},
	{cmd: `curl -L http://localhost:2379/v3/kv/txn -X POST -d '{"compare":[{"version":"4","result":"EQUAL","target":"VERSION","key":"Zm9v"}],"success":[{"requestRange":{"key":"Zm9v"}}]}'`,
		expect: `{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"6","raft_term":"3"},"succeeded":true,"responses":[{"response_range":{"header":{"revision":"6"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"6","version":"4","value":"YmF6"}],"count":"1"}}]}`},
	// Leases (etcd's lease tutorial over the gateway; "sample" is c2FtcGxl).
	{cmd: `curl -L http://localhost:2379/v3/lease/grant -X POST -d '{"TTL": "300", "ID": "3163590170849729274"}'`,
		expect: `{"header":{"revision":"6"},"ID":"3163590170849729274","TTL":"300"}`},
	{cmd: `curl -L http://localhost:2379/v3/kv/put -X POST -d '{"key": "c2FtcGxl", "value": "dmFsdWU=", "lease": "3163590170849729274"}'`,
		expect: `{"header":{"revision":"7"}}`},
	{cmd: `curl -L http://localhost:2379/v3/kv/range -X POST -d '{"key": "c2FtcGxl"}'`,
		expect: `{"header":{"revision":"7"},"kvs":[{"key":"c2FtcGxl","create_revision":"7","mod_revision":"7","version":"1","value":"dmFsdWU=","lease":"3163590170849729274"}],"count":"1"}`},
	{cmd: `curl -L http://localhost:2379/v3/lease/keepalive -X POST -d '{"ID": "3163590170849729274"}'`,
		expect: `{"result":{"header":{"revision":"7"},"ID":"3163590170849729274","TTL":"300"}}`},
	{cmd: `curl -L http://localhost:2379/v3/lease/timetolive -X POST -d '{"ID": "3163590170849729274", "keys": true}'`,
		expect: `{"header":{"revision":"7"},"ID":"3163590170849729274","TTL":"~^(29[0-9]|300)$","grantedTTL":"300","keys":["c2FtcGxl"]}`},
	{cmd: `curl -L http://localhost:2379/v3/lease/revoke -X POST -d '{"ID": "3163590170849729274"}'`,
		expect: `{"header":{"revision":"8"}}`},
	{cmd: `curl -L http://localhost:2379/v3/kv/range -X POST -d '{"key": "c2FtcGxl"}'`,
		expect: `{"header":{"revision":"8"}}`},
	{cmd: `curl -L http://localhost:2379/v3/lease/timetolive -X POST -d '{"ID": "3163590170849729274"}'`,
		expect: `{"header":{"revision":"8"},"ID":"3163590170849729274","TTL":"-1"}`},
}

// etcdGatewayAuthDocSteps are the guide's Authentication examples, on a
// fresh member: root user and role, auth enable, authenticate, then a put
// with the token in the Authorization header. The token is random (16
// letters, a dot, a number, as etcd's simple tokens); later commands send
// the one the member issued.
var etcdGatewayAuthDocSteps = []gatewayDocStep{
	{cmd: `curl -L http://localhost:2379/v3/auth/user/add -X POST -d '{"name": "root", "password": "pass"}'`,
		expect: `{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"1","raft_term":"2"}}`},
	{cmd: `curl -L http://localhost:2379/v3/auth/role/add -X POST -d '{"name": "root"}'`,
		expect: `{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"1","raft_term":"2"}}`},
	{cmd: `curl -L http://localhost:2379/v3/auth/user/grant -X POST -d '{"user": "root", "role": "root"}'`,
		expect: `{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"1","raft_term":"2"}}`},
	{cmd: `curl -L http://localhost:2379/v3/auth/enable -X POST -d '{}'`,
		expect: `{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"1","raft_term":"2"}}`},
	{token: true, cmd: `curl -L http://localhost:2379/v3/auth/authenticate -X POST -d '{"name": "root", "password": "pass"}'`,
		expect: `{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"1","raft_term":"2"},"token":"~^[A-Za-z]{16}\\.[0-9]+$"}`},
	{cmd: `curl -L http://localhost:2379/v3/kv/put -H 'Authorization: sssvIpwfnLAcWAQH.9' -X POST -d '{"key": "Zm9v", "value": "YmFy"}'`,
		expect: `{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"2","raft_term":"2"}}`},
	// Not in the guide: without the token the same put is refused, as by etcd.
	{cmd: `curl -sL http://localhost:2379/v3/kv/put -X POST -d '{"key": "Zm9v", "value": "YmFy"}'`,
		expect: `{"code":3,"message":"etcdserver: user name is empty"}`},
}

// runCurl runs one curl command line (with localhost:2379 pointed at
// baseURL) through bash and returns its standard output.
func runCurl(t *testing.T, cmdline, baseURL string) string {
	t.Helper()
	cmdline = strings.ReplaceAll(cmdline, "http://localhost:2379", baseURL)
	cmdline = strings.ReplaceAll(cmdline, "http://127.0.0.1:2379", baseURL)
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+cmdline)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "%s\nstderr: %s", cmdline, errb.String())
	return out.String()
}

// normalizeJSON decodes a JSON document and drops the fields that differ
// between clusters and runs (cluster and member IDs, raft terms).
func normalizeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v), "not JSON: %q", s)
	var strip func(any)
	strip = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "cluster_id")
			delete(x, "member_id")
			delete(x, "raft_term")
			for _, e := range x {
				strip(e)
			}
		case []any:
			for _, e := range x {
				strip(e)
			}
		}
	}
	strip(v)
	return v
}

func scenarioEtcdGatewayDocExamples(t *testing.T, engine string) {
	c := startAPICluster(t, engine, 1)
	runGatewayDocSteps(t, c.members[0].clientURL, etcdGatewayDocSteps, 0)
	t.Logf("The Authentication examples, on a fresh member")
	c = startAPICluster(t, engine, 1)
	runGatewayDocSteps(t, c.members[0].clientURL, etcdGatewayAuthDocSteps, len(etcdGatewayDocSteps))
}

// runGatewayDocSteps runs steps against base, numbering them from first+1.
func runGatewayDocSteps(t *testing.T, base string, steps []gatewayDocStep, first int) {
	token := guideToken
	var watch *bgCurl
	for i, st := range steps {
		cmd := strings.ReplaceAll(st.cmd, guideToken, token)
		var out string
		switch {
		case st.watchNext:
			t.Logf("Step %d: the watch's next line", first+i+1)
			require.NotNil(t, watch, "a watch step comes first")
			out = watch.line(t)
		case st.watch:
			t.Logf("Step %d: %s &", first+i+1, cmd)
			watch = startBGCurl(t, cmd, base)
			out = watch.line(t)
		default:
			t.Logf("Step %d: %s", first+i+1, cmd)
			out = runCurl(t, cmd, base)
		}
		if st.expect == "" {
			continue
		}
		requireJSONMatch(t, st.expect, out, cmd)
		if st.token {
			var r struct{ Token string }
			require.NoError(t, json.Unmarshal([]byte(out), &r))
			token = r.Token
		}
	}
}

// requireJSONMatch compares got with want after normalizeJSON; a string
// "~re" in want matches a string in got that the regular expression re
// matches.
func requireJSONMatch(t *testing.T, want, got, what string) {
	t.Helper()
	w, g := normalizeJSON(t, want), normalizeJSON(t, got)
	var match func(w, g any) any
	match = func(w, g any) any {
		switch x := w.(type) {
		case string:
			if re, ok := strings.CutPrefix(x, "~"); ok {
				if s, ok := g.(string); ok && regexp.MustCompile(re).MatchString(s) {
					return g
				}
			}
		case map[string]any:
			if gm, ok := g.(map[string]any); ok {
				out := map[string]any{}
				for k, v := range x {
					out[k] = match(v, gm[k])
				}
				return out
			}
		case []any:
			if gs, ok := g.([]any); ok && len(gs) == len(x) {
				out := make([]any, len(x))
				for i := range x {
					out[i] = match(x[i], gs[i])
				}
				return out
			}
		}
		return w
	}
	require.Equal(t, match(w, g), g, "output of %s", what)
}

// bgCurl is a curl command running in the background (a stream), read one
// line at a time.
type bgCurl struct {
	lines chan string
}

// startBGCurl starts cmdline (with localhost:2379 pointed at baseURL)
// through bash; it is killed when the test ends.
func startBGCurl(t *testing.T, cmdline, baseURL string) *bgCurl {
	t.Helper()
	cmdline = strings.ReplaceAll(cmdline, "http://localhost:2379", baseURL)
	cmd := exec.Command("bash", "-c", "exec "+cmdline)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	b := &bgCurl{lines: make(chan string, 16)}
	go func() {
		defer close(b.lines)
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if strings.TrimSpace(line) != "" {
				b.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return b
}

// line is the next non-blank line of output.
func (b *bgCurl) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-b.lines:
		require.True(t, ok, "the background curl ended")
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no output from the background curl within 10s")
		return ""
	}
}

// --- docs/http-api.md, run ----------------------------------------------------

// docExample is one command of a bash block in docs/http-api.md and the
// output the doc shows for it ("# " lines after it).
type docExample struct {
	cmd    string
	expect []string
}

// parseDocExamples reads the bash blocks of a markdown file, in order.
func parseDocExamples(t *testing.T, path string) []docExample {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []docExample
	in := false
	var pending string
	cur := -1 // the example the next "# " line belongs to, -1 before the block's first
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```bash":
			in, cur = true, -1
		case in && strings.TrimSpace(line) == "```":
			in = false
		case !in:
		case strings.HasPrefix(line, "# ") && cur >= 0 && pending == "":
			out[cur].expect = append(out[cur].expect, strings.TrimPrefix(line, "# "))
		case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
			// a comment before a command
		case strings.HasSuffix(line, "\\"):
			pending += strings.TrimSuffix(line, "\\")
		default:
			out = append(out, docExample{cmd: pending + line})
			pending, cur = "", len(out)-1
		}
	}
	return out
}

// scenarioHTTPDocExamples runs every curl example of docs/http-api.md
// against a fresh member and compares the output with the doc's.
func scenarioHTTPDocExamples(t *testing.T, engine string) {
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1)[0])
	m := startMember(t, engine, memberOpts{extraFlags: []string{"--listen-metrics-urls", metricsURL}})
	examples := parseDocExamples(t, "../docs/http-api.md")
	require.Greater(t, len(examples), 20, "examples found in docs/http-api.md")
	for i, ex := range examples {
		t.Logf("Step %d: %s", i+1, ex.cmd)
		out := runCurl(t, strings.ReplaceAll(ex.cmd, "http://127.0.0.1:2381", metricsURL), m.clientURL)
		out = strings.ReplaceAll(out, "\r", "")
		want := strings.Join(ex.expect, "\n")
		switch {
		case len(ex.expect) == 0:
			t.Fatalf("example %q shows no output in the doc", ex.cmd)
		case strings.HasPrefix(want, "HTTP/"):
			lines := strings.Split(out, "\n")
			for _, w := range ex.expect {
				require.Contains(t, lines, w, "output of %s:\n%s", ex.cmd, out)
			}
		case strings.HasPrefix(want, "{"):
			require.Equal(t, normalizeJSON(t, want), normalizeJSON(t, out), "output of %s", ex.cmd)
		default:
			require.Equal(t, want, strings.TrimRight(out, "\n"), "output of %s", ex.cmd)
		}
	}
}
