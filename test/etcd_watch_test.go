package test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// etcd's Watch through clientv3 and the raw gRPC stream, against one
// member. Like the other etcd API suites, these run against real etcd when
// METASTORE_TEST_ETCD_BIN names an etcd binary.

// evString renders an event with its revisions, so a watcher's whole
// history is asserted in one exact comparison.
func evString(ev *mvccpb.Event) string {
	if ev.Type == mvccpb.Event_DELETE {
		return fmt.Sprintf("DELETE %s@%d", ev.Kv.Key, ev.Kv.ModRevision)
	}
	return fmt.Sprintf("PUT %s", kvString(ev.Kv))
}

// firstPuts is the events (as collectEvents prints them) of keys
// fmt.Sprintf(keyFormat, i) = "v" for i in [from, to), each put once, key i
// at revision i+revOffset.
func firstPuts(keyFormat string, from, to, revOffset int) []string {
	var want []string
	for i := from; i < to; i++ {
		want = append(want, fmt.Sprintf("PUT "+keyFormat+"=v c%d m%d v1", i, i+revOffset, i+revOffset))
	}
	return want
}

// collectEvents reads wch until it has n events and returns them and the
// responses that carried them; it fails on an error, a closed channel, or
// after d.
func collectEvents(t *testing.T, wch clientv3.WatchChan, n int, d time.Duration) ([]string, []clientv3.WatchResponse) {
	t.Helper()
	var evs []string
	var resps []clientv3.WatchResponse
	deadline := time.After(d)
	for len(evs) < n {
		select {
		case resp, ok := <-wch:
			require.True(t, ok, "watch channel closed after %d of %d events", len(evs), n)
			require.NoError(t, resp.Err())
			if resp.Created || resp.IsProgressNotify() {
				continue
			}
			for _, ev := range resp.Events {
				evs = append(evs, evString(ev))
			}
			resps = append(resps, resp)
		case <-deadline:
			t.Fatalf("timed out after %v with %d of %d events: %v", d, len(evs), n, evs)
		}
	}
	return evs, resps
}

// watchCreated starts a watch and waits for its created notification, so
// writes made afterwards are certain to be seen.
func watchCreated(t *testing.T, cli *clientv3.Client, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wch := cli.Watch(ctx, key, append(opts, clientv3.WithCreatedNotify())...)
	select {
	case resp, ok := <-wch:
		require.True(t, ok, "watch on %q closed before created", key)
		require.NoError(t, resp.Err())
		require.True(t, resp.Created, "first response is the created notification")
	case <-time.After(10 * time.Second):
		t.Fatalf("watch on %q not created within 10s", key)
	}
	return wch
}

// rawWatch is a Watch stream driven at the protocol level.
type rawWatch struct {
	t      *testing.T
	stream pb.Watch_WatchClient
	ch     chan *pb.WatchResponse
}

// openRawWatch opens a Watch stream on conn. With read unset nobody reads
// it until startReading.
func openRawWatch(t *testing.T, conn grpc.ClientConnInterface, read bool) *rawWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := pb.NewWatchClient(conn).Watch(ctx, grpc.MaxCallRecvMsgSize(math.MaxInt32))
	require.NoError(t, err)
	w := &rawWatch{t: t, stream: stream, ch: make(chan *pb.WatchResponse, 1<<16)}
	if read {
		w.startReading()
	}
	return w
}

func (w *rawWatch) startReading() {
	go func() {
		defer close(w.ch)
		for {
			resp, err := w.stream.Recv()
			if err != nil {
				return
			}
			w.ch <- resp
		}
	}()
}

func (w *rawWatch) send(req *pb.WatchRequest) {
	w.t.Helper()
	require.NoError(w.t, w.stream.Send(req))
}

func (w *rawWatch) create(c *pb.WatchCreateRequest) {
	w.t.Helper()
	w.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: c}})
}

func (w *rawWatch) cancelWatch(id int64) {
	w.t.Helper()
	w.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}})
}

func (w *rawWatch) requestProgress() {
	w.t.Helper()
	w.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
}

// next returns the next response, failing after 10 s.
func (w *rawWatch) next() *pb.WatchResponse {
	w.t.Helper()
	select {
	case resp, ok := <-w.ch:
		require.True(w.t, ok, "watch stream ended")
		return resp
	case <-time.After(10 * time.Second):
		w.t.Fatalf("no watch response within 10s")
		return nil
	}
}

// respString renders a response without its header, for exact comparison.
func respString(r *pb.WatchResponse) string {
	var evs []string
	for _, ev := range r.Events {
		evs = append(evs, evString(ev))
	}
	return fmt.Sprintf("id=%d created=%v canceled=%v compact=%d reason=%q fragment=%v events=%v",
		r.WatchId, r.Created, r.Canceled, r.CompactRevision, r.CancelReason, r.Fragment, evs)
}

func TestWatch_PutDeletePrefixAndPrevKV(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			t.Logf("Step 1: starting one %s member; a key watch, a prefix watch with prev_kv, a from-key watch", engine)
			c := startAPICluster(t, engine, 1)
			cli := newClient(t, c.members[0].endpoint())
			mustPut(t, cli, "other", "x") // 2
			wKey := watchCreated(t, cli, "foo")
			wPrefix := watchCreated(t, cli, "foo", clientv3.WithPrefix(), clientv3.WithPrevKV())
			wFrom := watchCreated(t, cli, "foo/", clientv3.WithFromKey())

			t.Logf("Step 2: puts, an overwrite, a delete and a prefix delete")
			mustPut(t, cli, "foo", "1")           // 3
			mustPut(t, cli, "foo/bar", "2")       // 4
			mustPut(t, cli, "fop", "x")           // 5: outside the prefix
			mustPut(t, cli, "foo", "3")           // 6
			_, err := cli.Delete(opCtx(t), "foo") // 7
			require.NoError(t, err)
			_, err = cli.Delete(opCtx(t), "foo", clientv3.WithPrefix()) // 8: foo/bar
			require.NoError(t, err)

			t.Logf("Step 3: the key watch sees its key's events, in order")
			evs, resps := collectEvents(t, wKey, 3, 10*time.Second)
			require.Equal(t, []string{"PUT foo=1 c3 m3 v1", "PUT foo=3 c3 m6 v2", "DELETE foo@7"}, evs)
			for _, r := range resps {
				require.Equal(t, r.Events[len(r.Events)-1].Kv.ModRevision, r.Header.Revision, "header revision")
				require.NotZero(t, r.Header.ClusterId)
				require.NotZero(t, r.Header.MemberId)
				require.NotZero(t, r.Header.RaftTerm)
				require.Nil(t, r.Events[0].PrevKv, "no prev_kv unless asked")
			}

			t.Logf("Step 4: the prefix watch sees the prefix's events with the previous versions")
			evs, resps = collectEvents(t, wPrefix, 5, 10*time.Second)
			require.Equal(t, []string{"PUT foo=1 c3 m3 v1", "PUT foo/bar=2 c4 m4 v1", "PUT foo=3 c3 m6 v2",
				"DELETE foo@7", "DELETE foo/bar@8"}, evs)
			var prevs []string
			for _, r := range resps {
				for _, ev := range r.Events {
					if ev.PrevKv == nil {
						prevs = append(prevs, "-")
					} else {
						prevs = append(prevs, kvString(ev.PrevKv))
					}
				}
			}
			require.Equal(t, []string{"-", "-", "foo=1 c3 m3 v1", "foo=3 c3 m6 v2", "foo/bar=2 c4 m4 v1"}, prevs)

			t.Logf("Step 5: the from-key watch sees keys >= foo/ only")
			evs, _ = collectEvents(t, wFrom, 3, 10*time.Second)
			require.Equal(t, []string{"PUT foo/bar=2 c4 m4 v1", "PUT fop=x c5 m5 v1", "DELETE foo/bar@8"}, evs)
		})
	}
}

func TestWatch_StartRevisionReplaysThenGoesLive(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			t.Logf("Step 1: starting one %s member; k00..k19 at revisions 2..21", engine)
			c := startAPICluster(t, engine, 1)
			cli := newClient(t, c.members[0].endpoint())
			for i := range 20 {
				mustPut(t, cli, fmt.Sprintf("k%02d", i), "v")
			}

			t.Logf("Step 2: watching k from revision 5 while k20..k39 are written (22..41)")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 20; i < 40; i++ {
					if _, err := cli.Put(opCtx(t), fmt.Sprintf("k%02d", i), "v"); err != nil {
						t.Errorf("put: %v", err)
						return
					}
				}
			}()
			wch := cli.Watch(ctx, "k", clientv3.WithPrefix(), clientv3.WithRev(5))

			t.Logf("Step 3: revisions 5..41, each once, in order")
			evs, _ := collectEvents(t, wch, 37, 20*time.Second)
			wg.Wait()
			require.Equal(t, firstPuts("k%02d", 3, 40, 2), evs)
		})
	}
}

func TestWatch_Filters(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; a NOPUT and a NODELETE watch")
	c := startAPICluster(t, engineRocksDB, 1)
	cli := newClient(t, c.members[0].endpoint())
	noPut := watchCreated(t, cli, "a", clientv3.WithFilterPut())
	noDel := watchCreated(t, cli, "a", clientv3.WithFilterDelete())

	t.Logf("Step 2: put, delete, put, delete")
	for i := range 2 {
		mustPut(t, cli, "a", fmt.Sprint(i))
		_, err := cli.Delete(opCtx(t), "a")
		require.NoError(t, err)
	}

	t.Logf("Step 3: each sees only the other type")
	evs, _ := collectEvents(t, noPut, 2, 10*time.Second)
	require.Equal(t, []string{"DELETE a@3", "DELETE a@5"}, evs)
	evs, _ = collectEvents(t, noDel, 2, 10*time.Second)
	require.Equal(t, []string{"PUT a=0 c2 m2 v1", "PUT a=1 c4 m4 v1"}, evs)
}

func TestWatch_StreamProtocol(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member and a raw Watch stream")
	c := startAPICluster(t, engineRocksDB, 1)
	cli := newClient(t, c.members[0].endpoint())
	w := openRawWatch(t, cli.ActiveConnection(), true)

	t.Logf("Step 2: an auto ID (0), a chosen ID (7), then refusals: ID in use, negative start, empty range")
	w.create(&pb.WatchCreateRequest{Key: []byte("a")})
	w.create(&pb.WatchCreateRequest{Key: []byte("b"), WatchId: 7})
	w.create(&pb.WatchCreateRequest{Key: []byte("c"), WatchId: 7})
	w.create(&pb.WatchCreateRequest{Key: []byte("d"), StartRevision: -1})
	w.create(&pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")})
	w.create(&pb.WatchCreateRequest{Key: []byte("e")})
	var got []string
	for range 6 {
		r := w.next()
		require.Equal(t, int64(1), r.Header.Revision, "created at the current revision")
		require.NotZero(t, r.Header.MemberId)
		got = append(got, respString(r))
	}
	require.Equal(t, []string{
		`id=0 created=true canceled=false compact=0 reason="" fragment=false events=[]`,
		`id=7 created=true canceled=false compact=0 reason="" fragment=false events=[]`,
		`id=-1 created=true canceled=true compact=0 reason="mvcc: duplicate watch ID provided on the WatchStream" fragment=false events=[]`,
		`id=-1 created=true canceled=true compact=0 reason="etcdserver: mvcc: required revision has been compacted" fragment=false events=[]`,
		`id=-1 created=true canceled=true compact=0 reason="mvcc: watcher range is empty" fragment=false events=[]`,
		`id=1 created=true canceled=false compact=0 reason="" fragment=false events=[]`,
	}, got, "created responses in request order")

	t.Logf("Step 3: an event, then cancel: a canceled response, then nothing for that watch")
	mustPut(t, cli, "a", "1") // 2
	require.Equal(t, `id=0 created=false canceled=false compact=0 reason="" fragment=false events=[PUT a=1 c2 m2 v1]`, respString(w.next()))
	w.cancelWatch(0)
	r := w.next()
	require.Equal(t, `id=0 created=false canceled=true compact=0 reason="" fragment=false events=[]`, respString(r))
	require.Equal(t, int64(2), r.Header.Revision)
	mustPut(t, cli, "a", "2") // 3
	mustPut(t, cli, "b", "1") // 4

	t.Logf("Step 4: canceling an unknown ID gets no answer; progress comes next, after b's event")
	w.cancelWatch(99)
	require.Equal(t, `id=7 created=false canceled=false compact=0 reason="" fragment=false events=[PUT b=1 c4 m4 v1]`, respString(w.next()))
	w.requestProgress()
	r = w.next()
	require.Equal(t, `id=-1 created=false canceled=false compact=0 reason="" fragment=false events=[]`, respString(r))
	require.Equal(t, int64(4), r.Header.Revision, "progress at the current revision")
}

func TestWatch_ProgressNotify(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member with --watch-progress-notify-interval 200ms")
	c := startAPICluster(t, engineRocksDB, 1, "--watch-progress-notify-interval", "200ms")
	cli := newClient(t, c.members[0].endpoint())
	wch := watchCreated(t, cli, "p", clientv3.WithProgressNotify())
	quiet := watchCreated(t, newClient(t, c.members[0].endpoint()), "p")

	t.Logf("Step 2: writes elsewhere; the quiet watch hears progress at the current revision")
	mustPut(t, cli, "other", "1") // 2
	mustPut(t, cli, "other", "2") // 3
	start := time.Now()
	notified := 0
	deadline := time.After(10 * time.Second)
	for notified < 2 {
		select {
		case resp := <-wch:
			require.NoError(t, resp.Err())
			require.True(t, resp.IsProgressNotify(), "only progress notifications: %+v", resp)
			if resp.Header.Revision == 3 {
				notified++
			}
		case <-deadline:
			t.Fatalf("got %d progress notifications at revision 3 in 10s", notified)
		}
	}
	t.Logf("  two notifications at revision 3 after %v", time.Since(start).Round(time.Millisecond))

	t.Logf("Step 3: events still arrive, in order; a watch without progress_notify hears nothing else")
	mustPut(t, cli, "p", "x") // 4
	evs, _ := collectEvents(t, wch, 1, 10*time.Second)
	require.Equal(t, []string{"PUT p=x c4 m4 v1"}, evs)
	select {
	case resp := <-quiet:
		require.Equal(t, []string{"PUT p=x c4 m4 v1"}, []string{evString(resp.Events[0])})
		require.Len(t, resp.Events, 1)
	case <-time.After(10 * time.Second):
		t.Fatal("the watch without progress_notify missed the event")
	}
}

func TestWatch_RequestProgress(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; a watch on a, writes to b and c")
	c := startAPICluster(t, engineRocksDB, 1)
	cli := newClient(t, c.members[0].endpoint())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := cli.Watch(ctx, "a", clientv3.WithCreatedNotify())
	require.True(t, (<-wch).Created)
	mustPut(t, cli, "b", "1") // 2
	mustPut(t, cli, "c", "1") // 3

	t.Logf("Step 2: RequestProgress answers with the current revision")
	require.NoError(t, cli.RequestProgress(ctx))
	select {
	case resp := <-wch:
		require.NoError(t, resp.Err())
		require.True(t, resp.IsProgressNotify(), "a progress notification: %+v", resp)
		require.Equal(t, int64(3), resp.Header.Revision)
	case <-time.After(10 * time.Second):
		t.Fatal("no progress notification within 10s")
	}
}

func TestWatch_CompactedStartRevision(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			t.Logf("Step 1: starting one %s member; k0..k9 at 2..11, compacted at 6", engine)
			c := startAPICluster(t, engine, 1)
			cli := newClient(t, c.members[0].endpoint())
			for i := range 10 {
				mustPut(t, cli, fmt.Sprintf("k%d", i), "v")
			}
			_, err := cli.Compact(opCtx(t), 6)
			require.NoError(t, err)

			t.Logf("Step 2: a watch from 3 gets compact_revision 6, ErrCompacted, and ends")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wch := cli.Watch(ctx, "k", clientv3.WithPrefix(), clientv3.WithRev(3))
			select {
			case resp := <-wch:
				require.Equal(t, int64(6), resp.CompactRevision)
				require.True(t, resp.Canceled)
				require.Empty(t, resp.Events)
				require.ErrorIs(t, resp.Err(), rpctypes.ErrCompacted)
			case <-time.After(10 * time.Second):
				t.Fatal("no compacted response within 10s")
			}
			select {
			case resp, ok := <-wch:
				require.False(t, ok, "the channel closes after the compacted response, got %+v", resp)
			case <-time.After(10 * time.Second):
				t.Fatal("the watch channel did not close")
			}

			t.Logf("Step 3: a watch from the compaction revision replays 6..11")
			evs, _ := collectEvents(t, cli.Watch(ctx, "k", clientv3.WithPrefix(), clientv3.WithRev(6)), 6, 10*time.Second)
			require.Equal(t, firstPuts("k%d", 4, 10, 2), evs)
		})
	}
}

func TestWatch_Fragment(t *testing.T) {
	t.Parallel()
	const maxReq = 64 * 1024
	limit := maxReq + 512*1024 // etcd's fragment threshold: --max-request-bytes plus gRPC overhead
	t.Logf("Step 1: starting one member with --max-request-bytes %d; 100 values of 10,000 bytes", maxReq)
	c := startAPICluster(t, engineRocksDB, 1, "--max-request-bytes", fmt.Sprint(maxReq))
	cli := newClient(t, c.members[0].endpoint())
	val := strings.Repeat("x", 10000)
	for i := range 100 {
		mustPut(t, cli, fmt.Sprintf("f/%03d", i), val) // 2..101
	}

	t.Logf("Step 2: a fragment watch from revision 2 gets the history split under %d bytes", limit)
	w := openRawWatch(t, cli.ActiveConnection(), true)
	w.create(&pb.WatchCreateRequest{Key: []byte("f/"), RangeEnd: []byte("f0"), StartRevision: 2, Fragment: true})
	require.True(t, w.next().Created)
	var revs []int64
	var sizes []int
	for {
		r := w.next()
		require.NotEmpty(t, r.Events)
		sizes = append(sizes, proto.Size(r))
		for _, ev := range r.Events {
			revs = append(revs, ev.Kv.ModRevision)
		}
		if !r.Fragment {
			break
		}
	}
	t.Logf("  fragment sizes: %v", sizes)
	require.Len(t, revs, 100)
	for i, rev := range revs {
		require.Equal(t, int64(i+2), rev)
	}
	require.Greater(t, len(sizes), 1, "split")
	for _, n := range sizes {
		require.Less(t, n, limit)
	}

	t.Logf("Step 3: without fragment the same history comes whole, in one response")
	w2 := openRawWatch(t, cli.ActiveConnection(), true)
	w2.create(&pb.WatchCreateRequest{Key: []byte("f/"), RangeEnd: []byte("f0"), StartRevision: 2})
	require.True(t, w2.next().Created)
	r := w2.next()
	require.False(t, r.Fragment)
	require.Len(t, r.Events, 100)
	require.Greater(t, proto.Size(r), limit)
}

func TestWatch_SlowWatcherDoesNotBlockPuts(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			const n, writers = 3000, 16
			val := strings.Repeat("v", 1000)
			t.Logf("Step 1: starting one %s member; a watch stream nobody reads (own connection, 64 KiB windows) and a read one", engine)
			c := startAPICluster(t, engine, 1, "--unsafe-no-fsync")
			cli := newClient(t, c.members[0].endpoint())
			conn, err := grpc.NewClient(c.members[0].endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithInitialWindowSize(65535), grpc.WithInitialConnWindowSize(65535))
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			slow := openRawWatch(t, conn, false)
			slow.create(&pb.WatchCreateRequest{Key: []byte("s/"), RangeEnd: []byte("s0")})
			created, err := slow.stream.Recv()
			require.NoError(t, err)
			require.True(t, created.Created)
			fast := watchCreated(t, newClient(t, c.members[0].endpoint()), "s/", clientv3.WithPrefix())

			t.Logf("Step 2: %d puts of %d bytes from %d writers", n, len(val), writers)
			start := time.Now()
			revOf := make([]int64, n)
			var wg sync.WaitGroup
			for g := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; i < n; i += writers {
						resp, err := cli.Put(opCtx(t), fmt.Sprintf("s/%04d", i), val)
						if err != nil {
							t.Errorf("put %d: %v", i, err)
							return
						}
						revOf[i] = resp.Header.Revision
					}
				}()
			}
			wg.Wait()
			t.Logf("  %d puts in %v while the slow stream read nothing", n, time.Since(start).Round(time.Millisecond))
			want := make([]string, n+2)
			for i, rev := range revOf {
				want[rev] = fmt.Sprintf("PUT s/%04d=%s c%d m%d v1", i, val[:3], rev, rev)
			}
			want = want[2:]

			t.Logf("Step 3: the read watch has every event already")
			evs, _ := collectEvents(t, fast, n, 30*time.Second)
			require.Equal(t, want, shorten(evs))

			t.Logf("Step 4: the slow stream, read now, gets every event once, in order")
			slow.startReading()
			var got []string
			for len(got) < n {
				r := slow.next()
				require.Empty(t, r.CancelReason)
				require.False(t, r.Canceled)
				for _, ev := range r.Events {
					got = append(got, evString(ev))
				}
			}
			require.Equal(t, want, shorten(got))
		})
	}
}

// shorten cuts long values in event strings to 3 bytes, keeping failure
// output readable.
func shorten(evs []string) []string {
	out := make([]string, len(evs))
	for i, s := range evs {
		if k := strings.Index(s, "="); k >= 0 {
			if sp := strings.Index(s[k:], " "); sp > 4 {
				s = s[:k+4] + s[k+sp:]
			}
		}
		out[i] = s
	}
	return out
}

func TestWatch_ThousandWatchersEveryEvent(t *testing.T) {
	t.Parallel()
	testManyWatchers(t, 1000, 4, 100)
}

func TestWatch_TenThousandWatchers(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short")
	}
	testManyWatchers(t, 10000, 5, 20)
}

// testManyWatchers spreads watchers over clients (one gRPC stream each),
// half on a prefix and half on single keys, writes puts, and checks each
// watcher got exactly its events in revision order.
func testManyWatchers(t *testing.T, watchers, clients, puts int) {
	t.Logf("Step 1: starting one member; %d watchers over %d streams", watchers, clients)
	c := startAPICluster(t, engineRocksDB, 1, "--unsafe-no-fsync")
	var clis []*clientv3.Client
	for range clients {
		clis = append(clis, newClient(t, c.members[0].endpoint()))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chans := make([]clientv3.WatchChan, watchers)
	keys := make([]string, watchers) // "" for the prefix watchers
	start := time.Now()
	for i := range watchers {
		if i%2 == 0 {
			chans[i] = clis[i%clients].Watch(ctx, "m/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		} else {
			keys[i] = fmt.Sprintf("m/%03d", i%puts)
			chans[i] = clis[i%clients].Watch(ctx, keys[i], clientv3.WithCreatedNotify())
		}
	}
	for i, wch := range chans {
		select {
		case resp := <-wch:
			require.True(t, resp.Created, "watcher %d created", i)
		case <-time.After(30 * time.Second):
			t.Fatalf("watcher %d not created within 30s", i)
		}
	}
	t.Logf("  created in %v", time.Since(start).Round(time.Millisecond))

	t.Logf("Step 2: receivers; %d puts to m/000..m/%03d", puts, puts-1)
	got := make([][]string, watchers)
	var wg sync.WaitGroup
	for i := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := puts
			if keys[i] != "" {
				want = 1
			}
			for len(got[i]) < want {
				resp, ok := <-chans[i]
				if !ok || resp.Err() != nil {
					return
				}
				for _, ev := range resp.Events {
					got[i] = append(got[i], evString(ev))
				}
			}
		}()
	}
	start = time.Now()
	all := make([]string, puts)
	for i := range puts {
		resp := mustPut(t, clis[0], fmt.Sprintf("m/%03d", i), "v")
		all[i] = fmt.Sprintf("PUT m/%03d=v c%d m%d v1", i, resp.Header.Revision, resp.Header.Revision)
	}

	t.Logf("Step 3: waiting for every watcher's events and verifying")
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		t.Fatal("watchers did not get their events within 45s")
	}
	events := 0
	for i := range watchers {
		if keys[i] == "" {
			require.Equal(t, all, got[i], "prefix watcher %d", i)
		} else {
			require.Equal(t, []string{all[i%puts]}, got[i], "key watcher %d", i)
		}
		events += len(got[i])
	}
	el := time.Since(start)
	t.Logf("  %d events to %d watchers in %v (%.0f events/s)", events, watchers, el.Round(time.Millisecond), float64(events)/el.Seconds())
}

func TestWatch_EveryMemberOfACluster(t *testing.T) {
	t.Parallel()
	const puts = 50
	t.Logf("Step 1: starting 3 members; a prefix watch on each")
	c := startAPICluster(t, engineRocksDB, 3)
	clis := c.clients(t)
	var chans []clientv3.WatchChan
	for _, cli := range clis {
		chans = append(chans, watchCreated(t, cli, "c/", clientv3.WithPrefix()))
	}

	t.Logf("Step 2: %d puts, spread over the members", puts)
	var want []string
	for i := range puts {
		resp := mustPut(t, clis[i%3], fmt.Sprintf("c/%02d", i), "v")
		want = append(want, fmt.Sprintf("PUT c/%02d=v c%d m%d v1", i, resp.Header.Revision, resp.Header.Revision))
	}

	t.Logf("Step 3: every member's watch gets every event, in order")
	for i, wch := range chans {
		evs, _ := collectEvents(t, wch, puts, 20*time.Second)
		require.Equal(t, want, evs, "member %d", i+1)
	}
}
