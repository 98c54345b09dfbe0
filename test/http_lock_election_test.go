package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// etcd's gateway paths of the Lock and Election services (/v3/lock/*,
// /v3/election/*), on both engines, mixed with clientv3's concurrency
// package over gRPC on the same names. The scenarios start members through
// startAPICluster, so they also run against real etcd
// (METASTORE_TEST_ETCD_BIN=/path/to/etcd go test -run TestHTTPLockElection ./test/).

func TestHTTPLockElection_MemoryLock(t *testing.T)      { scenarioHTTPLock(t, engineMemory) }
func TestHTTPLockElection_RocksDBLock(t *testing.T)     { scenarioHTTPLock(t, engineRocksDB) }
func TestHTTPLockElection_MemoryElection(t *testing.T)  { scenarioHTTPElection(t, engineMemory) }
func TestHTTPLockElection_RocksDBElection(t *testing.T) { scenarioHTTPElection(t, engineRocksDB) }

// gwReply is a gateway call's status and body, for calls made in a
// goroutine.
type gwReply struct {
	code int
	body string
}

// gwPostAsync runs gwPost's request in a goroutine (a call that blocks)
// and delivers its reply.
func gwPostAsync(t *testing.T, base, path, body string) <-chan gwReply {
	out := make(chan gwReply, 1)
	go func() {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			out <- gwReply{code: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, err = bufio.NewReader(resp.Body).WriteTo(&b)
		if err != nil {
			out <- gwReply{code: -1, body: err.Error()}
			return
		}
		out <- gwReply{code: resp.StatusCode, body: b.String()}
	}()
	return out
}

// grantGWLeases grants leases of 60 s with the given IDs over the gateway.
func grantGWLeases(t *testing.T, base string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		code, body := gwPost(t, base, "/v3/lease/grant", "", `{"ID":"`+id+`","TTL":"60"}`)
		require.Equal(t, 200, code, body)
	}
}

// startWithGWLeases starts one member, grants the leases over its gateway
// and returns its client URL and a clientv3 client.
func startWithGWLeases(t *testing.T, engine string, ids ...string) (string, *clientv3.Client) {
	t.Helper()
	c := startAPICluster(t, engine, 1)
	base := c.members[0].clientURL
	grantGWLeases(t, base, ids...)
	return base, newClient(t, c.members[0].endpoint())
}

// gwJSONField decodes a gateway reply body and returns a top-level field.
func gwJSONField(t *testing.T, body, field string) any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m), body)
	return m[field]
}

// requireGW compares a gateway reply with the expected JSON after dropping
// the IDs and terms that differ per cluster (normalizeJSON).
func requireGW(t *testing.T, wantCode int, want string, code int, body string, what string) {
	t.Helper()
	require.Equal(t, wantCode, code, "%s: %s", what, body)
	require.Equal(t, normalizeJSON(t, want), normalizeJSON(t, body), what)
}

func scenarioHTTPLock(t *testing.T, engine string) {
	t.Logf("Step 1: two leases over the gateway (IDs 1001 and 1002: 3e9 and 3ea in hex)")
	base, cli := startWithGWLeases(t, engine, "1001", "1002")

	t.Logf("Step 2: /v3/lock/lock on lease 1001 holds the lock at once: key name/<lease hex>")
	code, body := gwPost(t, base, "/v3/lock/lock", "", `{"name":"`+b64("httplock")+`","lease":"1001"}`)
	requireGW(t, 200, `{"header":{"revision":"2"},"key":"`+b64("httplock/3e9")+`"}`, code, body, "first lock")

	t.Logf("Step 3: a second locker on lease 1002 waits: its key is queued, its call does not return")
	second := gwPostAsync(t, base, "/v3/lock/lock", `{"name":"`+b64("httplock")+`","lease":"1002"}`)
	waitFor(t, 10*time.Second, "the second locker's key", func() bool {
		return len(prefixKeys(t, cli, "httplock/").Kvs) == 2
	})
	require.Equal(t, "httplock/3ea", string(prefixKeys(t, cli, "httplock/").Kvs[1].Key))
	select {
	case r := <-second:
		t.Fatalf("the second lock returned while the first is held: %d %s", r.code, r.body)
	default:
	}

	t.Logf("Step 4: clientv3's Mutex on the same name is excluded too")
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	require.NoError(t, err)
	defer sess.Close()
	require.ErrorIs(t, concurrency.NewMutex(sess, "httplock").TryLock(ctxT(t, 5*time.Second)), concurrency.ErrLocked)
	select {
	case r := <-second:
		t.Fatalf("the second lock returned while the first is held: %d %s", r.code, r.body)
	default:
	}

	t.Logf("Step 5: /v3/lock/unlock releases it; the second locker returns at the unlock's revision")
	code, body = gwPost(t, base, "/v3/lock/unlock", "", `{"key":"`+b64("httplock/3e9")+`"}`)
	require.Equal(t, 200, code, body)
	unlockRev := gwJSONField(t, body, "header").(map[string]any)["revision"]
	select {
	case r := <-second:
		requireGW(t, 200, fmt.Sprintf(`{"header":{"revision":%q},"key":%q}`, unlockRev, b64("httplock/3ea")), r.code, r.body, "second lock")
	case <-time.After(10 * time.Second):
		t.Fatal("the second lock did not return after the unlock")
	}

	t.Logf("Step 6: unlock again; unknown keys are no error; a revoked lease is etcd's error")
	code, body = gwPost(t, base, "/v3/lock/unlock", "", `{"key":"`+b64("httplock/3ea")+`"}`)
	require.Equal(t, 200, code, body)
	require.Empty(t, prefixKeys(t, cli, "httplock/").Kvs)
	code, body = gwPost(t, base, "/v3/lock/unlock", "", `{"key":"`+b64("httplock/3ea")+`"}`)
	require.Equal(t, 200, code, body)
	code, body = gwPost(t, base, "/v3/lock/lock", "", `{"name":"`+b64("httplock")+`","lease":"999"}`)
	requireGW(t, 500, `{"code":2,"message":"etcdserver: requested lease not found"}`, code, body, "lock on an unknown lease")
}

// gwStream is an open gateway stream, read one {"result":...} line at a
// time.
type gwStream struct {
	r    *bufio.Reader
	resp *http.Response
	err  error // the request failed (gwPostAsyncStream)
}

func openGWStream(t *testing.T, base, path, body string) *gwStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, "POST", base+path, strings.NewReader(body))
	require.NoError(t, err)
	// NB: no whole-request timeout on the client: the stream has none.
	resp, err := (&http.Client{}).Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return &gwStream{r: bufio.NewReader(resp.Body), resp: resp}
}

// next reads the next {"result":...} line (keep-alive blank lines are
// skipped) into m; ok is false when the stream ends.
func (s *gwStream) next(t *testing.T, m proto.Message) (ok bool) {
	t.Helper()
	require.NoError(t, s.err)
	require.Equal(t, 200, s.resp.StatusCode)
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			require.Empty(t, strings.TrimSpace(line), "a partial line at the end of the stream")
			return false
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		var env map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(line), &env), line)
		require.Contains(t, env, "result", line)
		require.NoError(t, protojson.Unmarshal(env["result"], m), line)
		return true
	}
}

// observed reads the next observe message as "key=value".
func (s *gwStream) observed(t *testing.T) string {
	t.Helper()
	var r epb.LeaderResponse
	require.True(t, s.next(t, &r), "the observe stream ended")
	return string(r.Kv.Key) + "=" + string(r.Kv.Value)
}

func scenarioHTTPElection(t *testing.T, engine string) {
	c := startAPICluster(t, engine, 1)
	base := c.members[0].clientURL
	name := b64("httpelect")

	t.Logf("Step 1: two leases; no leader yet")
	grantGWLeases(t, base, "1001", "1002")
	code, body := gwPost(t, base, "/v3/election/leader", "", `{"name":"`+name+`"}`)
	requireGW(t, 500, `{"code":2,"message":"election: no leader"}`, code, body, "leader before any campaign")

	t.Logf("Step 2: observe (answered at its first message), then a campaign on lease 1001 leads at once")
	obs := gwPostAsyncStream(t, base, name)
	code, body = gwPost(t, base, "/v3/election/campaign", "", `{"name":"`+name+`","lease":"1001","value":"`+b64("a1")+`"}`)
	requireGW(t, 200, `{"header":{"revision":"2"},"leader":{"name":"`+name+`","key":"`+b64("httpelect/3e9")+`","rev":"2","lease":"1001"}}`,
		code, body, "first campaign")
	leaderA := `{"name":"` + name + `","key":"` + b64("httpelect/3e9") + `","rev":"2","lease":"1001"}`
	stream := <-obs
	require.Equal(t, "httpelect/3e9=a1", stream.observed(t))

	t.Logf("Step 3: a second candidate on lease 1002 waits")
	second := gwPostAsync(t, base, "/v3/election/campaign", `{"name":"`+name+`","lease":"1002","value":"`+b64("b1")+`"}`)
	cli := newClient(t, c.members[0].endpoint())
	waitFor(t, 10*time.Second, "the second candidate's key", func() bool {
		return len(prefixKeys(t, cli, "httpelect/").Kvs) == 2
	})

	t.Logf("Step 4: the leader proclaims a2: leader and observe see it")
	code, body = gwPost(t, base, "/v3/election/proclaim", "", `{"leader":`+leaderA+`,"value":"`+b64("a2")+`"}`)
	requireGW(t, 200, `{"header":{"revision":"4"}}`, code, body, "proclaim")
	require.Equal(t, "httpelect/3e9=a2", stream.observed(t))
	code, body = gwPost(t, base, "/v3/election/leader", "", `{"name":"`+name+`"}`)
	requireGW(t, 200, `{"header":{"revision":"4"},"kv":{"key":"`+b64("httpelect/3e9")+`","create_revision":"2","mod_revision":"4","version":"2","value":"`+b64("a2")+`","lease":"1001"}}`,
		code, body, "leader after proclaim")
	select {
	case r := <-second:
		t.Fatalf("the second campaign returned while the first leads: %d %s", r.code, r.body)
	default:
	}

	t.Logf("Step 5: the leader resigns: the second candidate leads, observe follows")
	code, body = gwPost(t, base, "/v3/election/resign", "", `{"leader":`+leaderA+`}`)
	requireGW(t, 200, `{"header":{"revision":"5"}}`, code, body, "resign")
	select {
	case r := <-second:
		// NB: concurrency.Election answers the header of its own put.
		requireGW(t, 200, `{"header":{"revision":"3"},"leader":{"name":"`+name+`","key":"`+b64("httpelect/3ea")+`","rev":"3","lease":"1002"}}`,
			r.code, r.body, "second campaign")
	case <-time.After(10 * time.Second):
		t.Fatal("the second campaign did not return after the resign")
	}
	require.Equal(t, "httpelect/3ea=b1", stream.observed(t))

	t.Logf("Step 6: the old leader key is stale; a proclaim without a leader is refused")
	code, body = gwPost(t, base, "/v3/election/proclaim", "", `{"leader":`+leaderA+`,"value":"`+b64("x")+`"}`)
	requireGW(t, 500, `{"code":2,"message":"election: not leader"}`, code, body, "stale proclaim")
	code, body = gwPost(t, base, "/v3/election/proclaim", "", `{"value":"`+b64("x")+`"}`)
	requireGW(t, 500, `{"code":2,"message":"\"leader\" field must be provided"}`, code, body, "proclaim without leader")

	t.Logf("Step 7: the last leader resigns: no leader")
	code, body = gwPost(t, base, "/v3/election/resign", "", `{"leader":{"name":"`+name+`","key":"`+b64("httpelect/3ea")+`","rev":"3","lease":"1002"}}`)
	requireGW(t, 200, `{"header":{"revision":"6"}}`, code, body, "second resign")
	code, body = gwPost(t, base, "/v3/election/leader", "", `{"name":"`+name+`"}`)
	requireGW(t, 500, `{"code":2,"message":"election: no leader"}`, code, body, "leader after the last resign")
}

// gwPostAsyncStream opens /v3/election/observe in a goroutine (the gateway
// answers it only at its first message, as etcd's) and delivers the open
// stream; the stream is checked by the test goroutine that receives it.
func gwPostAsyncStream(t *testing.T, base, name string) <-chan *gwStream {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out := make(chan *gwStream, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/v3/election/observe", strings.NewReader(`{"name":"`+name+`"}`))
		if err != nil {
			out <- &gwStream{err: err}
			return
		}
		// NB: no whole-request timeout on the client: the stream has none.
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			out <- &gwStream{err: err}
			return
		}
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		out <- &gwStream{r: bufio.NewReader(resp.Body), resp: resp}
	}()
	return out
}

func TestHTTPLockElection_AbandonedWaiters(t *testing.T) {
	scenarioHTTPAbandonedWaiters(t, engineMemory)
}

// gwPostAbandoned starts a gateway call that blocks, waits until ready()
// holds (its waiting key is written), then gives it up the way a client
// with a timeout does: the request is canceled and its connection closed.
func gwPostAbandoned(t *testing.T, base, path, body, what string, ready func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(body))
		if err != nil {
			done <- err
			return
		}
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		done <- err
	}()
	waitFor(t, 10*time.Second, what+" waiting", ready)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled, what)
}

// scenarioHTTPAbandonedWaiters: a lock or campaign call that its client
// gave up on (a timeout, a closed connection) is withdrawn: its waiting key
// is deleted, as etcd's gateway does, and it is never granted later.
func scenarioHTTPAbandonedWaiters(t *testing.T, engine string) {
	t.Logf("Step 1: two leases; lease 2001 holds the lock and leads the election")
	base, cli := startWithGWLeases(t, engine, "2001", "2002")
	code, body := gwPost(t, base, "/v3/lock/lock", "", `{"name":"`+b64("gone")+`","lease":"2001"}`)
	require.Equal(t, 200, code, body)
	code, body = gwPost(t, base, "/v3/election/campaign", "", `{"name":"`+b64("gonel")+`","lease":"2001","value":"`+b64("c1")+`"}`)
	require.Equal(t, 200, code, body)
	leader := gwJSONField(t, body, "leader")
	leaderJSON, err := json.Marshal(leader)
	require.NoError(t, err)

	t.Logf("Step 2: a locker and a candidate on lease 2002 wait, then their clients give up")
	gwPostAbandoned(t, base, "/v3/lock/lock", `{"name":"`+b64("gone")+`","lease":"2002"}`, "the second locker",
		func() bool { return len(prefixKeys(t, cli, "gone/").Kvs) == 2 })
	gwPostAbandoned(t, base, "/v3/election/campaign", `{"name":"`+b64("gonel")+`","lease":"2002","value":"`+b64("c2")+`"}`,
		"the second candidate", func() bool { return len(prefixKeys(t, cli, "gonel/").Kvs) == 2 })

	t.Logf("Step 3: their waiting keys are deleted")
	waitFor(t, 10*time.Second, "the abandoned waiters' keys deleted", func() bool {
		return len(prefixKeys(t, cli, "gone/").Kvs) == 1 && len(prefixKeys(t, cli, "gonel/").Kvs) == 1
	})

	t.Logf("Step 4: once released, nobody holds the lock and nobody leads")
	code, body = gwPost(t, base, "/v3/lock/unlock", "", `{"key":"`+b64("gone/7d1")+`"}`)
	require.Equal(t, 200, code, body)
	code, body = gwPost(t, base, "/v3/election/resign", "", `{"leader":`+string(leaderJSON)+`}`)
	require.Equal(t, 200, code, body)
	require.Empty(t, prefixKeys(t, cli, "gone/").Kvs)
	require.Empty(t, prefixKeys(t, cli, "gonel/").Kvs)
	code, body = gwPost(t, base, "/v3/election/leader", "", `{"name":"`+b64("gonel")+`"}`)
	requireGW(t, 500, `{"code":2,"message":"election: no leader"}`, code, body, "leader after the resign")
}
