package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// Watches and leases over HTTP: etcd's gateway stream (/v3/watch), the
// gateway's lease paths, and the REST API's Server-Sent Events
// (/v1/watch/{key}), against writes made over gRPC on the same port.

// gwWatchStream is an open POST /v3/watch, read one result at a time.
type gwWatchStream struct {
	body *bufio.Reader
	resp *http.Response
}

func openGWWatch(t *testing.T, base, body string) *gwWatchStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v3/watch", strings.NewReader(body))
	require.NoError(t, err)
	// NB: a client without a whole-request timeout: the stream has none.
	resp, err := (&http.Client{}).Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	return &gwWatchStream{body: bufio.NewReader(resp.Body), resp: resp}
}

// next reads one line, checks it is {"result":...} and decodes the result.
func (s *gwWatchStream) next(t *testing.T) *pb.WatchResponse {
	t.Helper()
	for {
		line, err := s.body.ReadString('\n')
		require.NoError(t, err)
		if strings.TrimSpace(line) == "" {
			continue // a keep-alive
		}
		var env map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(line), &env), line)
		require.Len(t, env, 1, line)
		r := &pb.WatchResponse{}
		require.NoError(t, protojson.Unmarshal(env["result"], r), line)
		return r
	}
}

// watchEvents renders a response's events as "PUT key=value m<mod>
// prev=value" lines.
func watchEvents(r *pb.WatchResponse) []string {
	out := []string{}
	for _, ev := range r.Events {
		s := fmt.Sprintf("%s %s=%s m%d", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
		if ev.PrevKv != nil {
			s += " prev=" + string(ev.PrevKv.Value)
		}
		out = append(out, s)
	}
	return out
}

func TestHTTPWatch_Gateway(t *testing.T) {
	m := startMember(t, engineMemory, memberOpts{extraFlags: []string{"--max-watchers-per-stream", "2"}})
	cli := newClient(t, m.endpoint())
	base := m.clientURL

	t.Logf("Step 1: curl -N streams the created response, then a put made over gRPC")
	curl := exec.Command("curl", "-sN", "-m", "20", "-X", "POST",
		"-d", `{"create_request":{"key":"`+b64("foo")+`"}}`, base+"/v3/watch")
	out, err := curl.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, curl.Start())
	t.Cleanup(func() { _ = curl.Process.Kill(); _ = curl.Wait() })
	lines := bufio.NewReader(out)
	line, err := lines.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, `{"result":{"created":true,"header":{"revision":"1"}}}`, stripIDs(t, line))
	mustPut(t, cli, "foo", "bar")
	line, err = lines.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, `{"result":{"events":[{"kv":{"create_revision":"2","key":"Zm9v","mod_revision":"2","value":"YmFy","version":"1"}}],"header":{"revision":"2"}}}`,
		stripIDs(t, line))

	t.Logf("Step 2: net/http client, prev_kv and a range: puts and deletes over gRPC arrive in order")
	w := openGWWatch(t, base, `{"create_request":{"key":"`+b64("a/")+`","range_end":"`+b64("a0")+`","prev_kv":true}}`)
	r := w.next(t)
	require.True(t, r.Created)
	require.Equal(t, int64(2), r.Header.Revision)
	require.NotZero(t, r.Header.ClusterId)
	require.NotZero(t, r.Header.MemberId)
	mustPut(t, cli, "a/1", "x")          // 3
	mustPut(t, cli, "a/1", "y")          // 4
	mustPut(t, cli, "b", "outside")      // 5
	_, err = cli.Delete(opCtx(t), "a/1") // 6
	require.NoError(t, err)
	var got []string
	for len(got) < 3 {
		r = w.next(t)
		require.Equal(t, r.Events[len(r.Events)-1].Kv.ModRevision, r.Header.Revision)
		got = append(got, watchEvents(r)...)
	}
	require.Equal(t, []string{"PUT a/1=x m3", "PUT a/1=y m4 prev=x", "DELETE a/1= m6 prev=y"}, got)

	t.Logf("Step 3: start_revision replays history; a NOPUT filter leaves the deletes")
	w = openGWWatch(t, base, `{"create_request":{"key":"`+b64("a/1")+`","start_revision":"3"}}`+"\n"+
		`{"create_request":{"key":"`+b64("a/1")+`","start_revision":"3","filters":["NOPUT"],"watch_id":"5"}}`)
	perWatch := map[int64][]string{}
	created := 0
	for created < 2 || len(perWatch[0]) < 3 || len(perWatch[5]) < 1 {
		r = w.next(t)
		if r.Created {
			created++
			continue
		}
		perWatch[r.WatchId] = append(perWatch[r.WatchId], watchEvents(r)...)
	}
	require.Equal(t, map[int64][]string{0: {"PUT a/1=x m3", "PUT a/1=y m4", "DELETE a/1= m6"}, 5: {"DELETE a/1= m6"}}, perWatch)

	t.Logf("Step 4: a compacted start revision: created, then compact_revision and canceled")
	_, err = cli.Compact(opCtx(t), 5)
	require.NoError(t, err)
	w = openGWWatch(t, base, `{"create_request":{"key":"`+b64("a/1")+`","start_revision":"2"}}`)
	require.True(t, w.next(t).Created)
	r = w.next(t)
	require.Equal(t, int64(5), r.CompactRevision)
	require.True(t, r.Canceled)
	require.Empty(t, r.Events)

	t.Logf("Step 5: a negative start revision is refused as etcd does (created+canceled, watch -1)")
	w = openGWWatch(t, base, `{"create_request":{"key":"`+b64("a")+`","start_revision":"-1"}}`)
	r = w.next(t)
	require.True(t, r.Created)
	require.True(t, r.Canceled)
	require.Equal(t, int64(-1), r.WatchId)
	require.Equal(t, "etcdserver: mvcc: required revision has been compacted", r.CancelReason)

	t.Logf("Step 6: --max-watchers-per-stream 2: a third create on one stream is refused with the reason")
	create := `{"create_request":{"key":"` + b64("a") + `"}}`
	w = openGWWatch(t, base, create+create+create)
	for i := 0; i < 2; i++ {
		r = w.next(t)
		require.True(t, r.Created)
		require.False(t, r.Canceled)
		require.Equal(t, int64(i), r.WatchId)
	}
	r = w.next(t)
	require.True(t, r.Created)
	require.True(t, r.Canceled)
	require.Equal(t, int64(-1), r.WatchId)
	require.Equal(t, "too many watchers on this stream (--max-watchers-per-stream 2)", r.CancelReason)

	t.Logf("Step 7: a malformed body is a 400 with etcd's error body, before any stream")
	st, body := gwCall(t, base, "/v3/watch", `{"create_request":`)
	require.Equal(t, 400, st)
	require.Equal(t, float64(3), body["code"])
}

// stripIDs drops the fields that differ per cluster (as normalizeJSON) and
// renders the JSON again with sorted keys, without protojson's spaces.
func stripIDs(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(normalizeJSON(t, s))
	require.NoError(t, err)
	return string(b)
}

func TestHTTPLease_Gateway(t *testing.T) {
	m := startMember(t, engineMemory)
	cli := newClient(t, m.endpoint())
	base := m.clientURL
	header := func(body map[string]any) string { return body["header"].(map[string]any)["revision"].(string) }

	t.Logf("Step 1: grant with a chosen ID and with one chosen by the server; IDs are decimal strings")
	st, body := gwCall(t, base, "/v3/lease/grant", `{"ID":"1234","TTL":"60"}`)
	require.Equal(t, 200, st)
	require.Equal(t, "1234", body["ID"])
	require.Equal(t, "60", body["TTL"])
	require.Equal(t, "1", header(body))
	st, body = gwCall(t, base, "/v3/lease/grant", `{"TTL":30}`)
	require.Equal(t, 200, st)
	auto := body["ID"].(string)
	require.Regexp(t, `^[1-9][0-9]*$`, auto)
	st, body = gwCall(t, base, "/v3/lease/grant", `{"ID":"1234","TTL":"60"}`)
	require.Equal(t, 400, st)
	require.Equal(t, map[string]any{"code": float64(9), "message": "etcdserver: lease already exists"}, body)

	t.Logf("Step 2: a key attached over gRPC; timetolive (both paths) lists it")
	mustPut(t, cli, "session", "s1", clientv3.WithLease(1234))
	for _, path := range []string{"/v3/lease/timetolive", "/v3/kv/lease/timetolive"} {
		st, body = gwCall(t, base, path, `{"ID":"1234","keys":true}`)
		require.Equal(t, 200, st, path)
		require.Equal(t, "1234", body["ID"])
		require.Equal(t, "60", body["grantedTTL"])
		ttl := body["TTL"].(string)
		require.Contains(t, []string{"59", "60"}, ttl)
		require.Equal(t, []any{b64("session")}, body["keys"])
	}

	t.Logf("Step 3: leases (both paths) lists both")
	for _, path := range []string{"/v3/lease/leases", "/v3/kv/lease/leases"} {
		st, body = gwCall(t, base, path, `{}`)
		require.Equal(t, 200, st, path)
		ids := []string{}
		for _, l := range body["leases"].([]any) {
			ids = append(ids, l.(map[string]any)["ID"].(string))
		}
		require.ElementsMatch(t, []string{"1234", auto}, ids)
	}

	t.Logf("Step 4: keepalive: one result line per request line; an unknown lease gets TTL 0 (absent)")
	r := httpDo(t, "POST", base+"/v3/lease/keepalive", []byte(`{"ID":"1234"}`))
	require.Equal(t, 200, r.status)
	require.Equal(t, 1, strings.Count(string(r.body), "\n"))
	require.Equal(t, `{"result":{"ID":"1234","TTL":"60","header":{"revision":"2"}}}`, stripIDs(t, string(r.body)))
	r = httpDo(t, "POST", base+"/v3/lease/keepalive", []byte(`{"ID":"1234"}`+"\n"+`{"ID":"999"}`))
	require.Equal(t, 200, r.status)
	out := strings.Split(strings.TrimSuffix(string(r.body), "\n"), "\n")
	require.Len(t, out, 2)
	require.Equal(t, `{"result":{"ID":"1234","TTL":"60","header":{"revision":"2"}}}`, stripIDs(t, out[0]))
	require.Equal(t, `{"result":{"ID":"999","header":{"revision":"2"}}}`, stripIDs(t, out[1]))

	t.Logf("Step 5: revoking an unknown lease is etcd's NotFound, HTTP 404")
	st, body = gwCall(t, base, "/v3/lease/revoke", `{"ID":"999"}`)
	require.Equal(t, 404, st)
	require.Equal(t, map[string]any{"code": float64(5), "message": "etcdserver: requested lease not found"}, body)

	t.Logf("Step 6: revoke through etcd's alias: the key goes; timetolive then says TTL -1")
	st, body = gwCall(t, base, "/v3/kv/lease/revoke", `{"ID":"1234"}`)
	require.Equal(t, 200, st)
	require.Equal(t, "3", header(body))
	require.Empty(t, mustGet(t, cli, "session").Kvs)
	st, body = gwCall(t, base, "/v3/lease/timetolive", `{"ID":"1234"}`)
	require.Equal(t, 200, st)
	require.Equal(t, "-1", body["TTL"])
	require.Equal(t, "1234", body["ID"])
	_, err := cli.Revoke(opCtx(t), clientv3.LeaseID(1234))
	require.ErrorContains(t, err, "etcdserver: requested lease not found")
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ event, id, data string }

// sseStream is an open GET /v1/watch/..., read one event at a time.
type sseStream struct{ body *bufio.Reader }

func openSSE(t *testing.T, url string, headers ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := (&http.Client{}).Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	return &sseStream{body: bufio.NewReader(resp.Body)}
}

// next reads one event, skipping comments (keep-alives). ok is false at
// the end of the stream.
func (s *sseStream) next(t *testing.T) (ev sseEvent, ok bool) {
	t.Helper()
	for {
		line, err := s.body.ReadString('\n')
		if err != nil {
			require.Empty(t, line, "a partial line at the end of the stream")
			return ev, false
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && ev.event != "":
			return ev, true
		case line == "" || strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
}

func (s *sseStream) mustNext(t *testing.T) sseEvent {
	t.Helper()
	ev, ok := s.next(t)
	require.True(t, ok, "the stream ended")
	return ev
}

func TestHTTPWatch_RESTEvents(t *testing.T) {
	m := startMember(t, engineMemory)
	cli := newClient(t, m.endpoint())
	base := m.clientURL

	t.Logf("Step 1: watch the prefix app/ with prev_kv; the created event names the start")
	s := openSSE(t, base+"/v1/watch/app/?prefix=true&prev_kv=true")
	require.Equal(t, sseEvent{"created", "1", `{"revision":1}`}, s.mustNext(t))

	t.Logf("Step 2: a put, a txn of two keys (one revision), a binary key and a delete, over gRPC")
	mustPut(t, cli, "app/a", "1")                                                                         // 2
	_, err := cli.Txn(opCtx(t)).Then(clientv3.OpPut("app/b", "2"), clientv3.OpPut("app/c", "3")).Commit() // 3
	require.NoError(t, err)
	mustPut(t, cli, "app/\xff", "\x00")    // 4
	mustPut(t, cli, "other", "x")          // 5
	_, err = cli.Delete(opCtx(t), "app/a") // 6
	require.NoError(t, err)
	want := []sseEvent{
		{"put", "2", `{"key":"app/a","create_revision":2,"mod_revision":2,"version":1,"value":"1"}`},
		{"put", "", `{"key":"app/b","create_revision":3,"mod_revision":3,"version":1,"value":"2"}`}, // same revision: id on the last
		{"put", "3", `{"key":"app/c","create_revision":3,"mod_revision":3,"version":1,"value":"3"}`},
		{"put", "4", `{"key_base64":"YXBwL/8=","create_revision":4,"mod_revision":4,"version":1,"value":"\u0000"}`},
		{"delete", "6", `{"key":"app/a","create_revision":0,"mod_revision":6,"version":0,"prev_kv":{"key":"app/a","create_revision":2,"mod_revision":2,"version":1,"value":"1"}}`},
	}
	for i, w := range want {
		require.Equal(t, w, s.mustNext(t), "event %d", i)
	}

	t.Logf("Step 3: reconnect with Last-Event-ID: 2 resumes at revision 3")
	s = openSSE(t, base+"/v1/watch/app/?prefix=true", "Last-Event-ID", "2")
	require.Equal(t, sseEvent{"created", "2", `{"revision":6}`}, s.mustNext(t))
	for i, w := range want[1:] {
		if w.event == "delete" {
			w.data = `{"key":"app/a","create_revision":0,"mod_revision":6,"version":0}` // no prev_kv asked
		}
		require.Equal(t, w, s.mustNext(t), "event %d", i)
	}

	t.Logf("Step 4: one key from rev=2, base64 encoding")
	s = openSSE(t, base+"/v1/watch/app/a?rev=2&encoding=base64")
	require.Equal(t, sseEvent{"created", "1", `{"revision":6}`}, s.mustNext(t))
	require.Equal(t, sseEvent{"put", "2", `{"key_base64":"YXBwL2E=","create_revision":2,"mod_revision":2,"version":1,"value_base64":"MQ=="}`}, s.mustNext(t))
	require.Equal(t, sseEvent{"delete", "6", `{"key_base64":"YXBwL2E=","create_revision":0,"mod_revision":6,"version":0}`}, s.mustNext(t))

	t.Logf("Step 5: a compacted start: event compacted, then the stream ends")
	_, err = cli.Compact(opCtx(t), 5)
	require.NoError(t, err)
	s = openSSE(t, base+"/v1/watch/app/?prefix=true&rev=3")
	require.Equal(t, "created", s.mustNext(t).event)
	require.Equal(t, sseEvent{"compacted", "", `{"compact_revision":5}`}, s.mustNext(t))
	_, ok := s.next(t)
	require.False(t, ok, "the stream ends after compacted")

	t.Logf("Step 6: bad requests are 400s with etcd's error body")
	r := httpDo(t, "GET", base+"/v1/watch/app?rev=x", nil)
	require.Equal(t, 400, r.status)
	require.Equal(t, `{"code":3,"message":"rev must be a non-negative integer"}`+"\n", string(r.body))
	r = httpDo(t, "GET", base+"/v1/watch/", nil)
	require.Equal(t, 400, r.status)
	require.Equal(t, `{"code":3,"message":"etcdserver: key is not provided"}`+"\n", string(r.body))
}
