package mvcc

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func TestWatch_LiveEventsByRange(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		h := newHub(t, s, WatchConfig{})
		ws := h.NewStream()
		r := newReader(t, ws)
		put(t, s, "a", "1") // 2

		t.Logf("Step 1: four watches: one key, a prefix, from a key, everything")
		for i, req := range []WatchRequest{
			{Key: []byte("foo")},
			{Key: []byte("foo"), End: []byte("fop")},
			{Key: []byte("m"), End: []byte{0}},
			{Key: []byte{0}, End: []byte{0}, PrevKV: true},
		} {
			id, err := ws.Watch(req)
			require.NoError(t, err)
			require.Equal(t, int64(i), id, "auto IDs count from 0 as etcd's")
		}
		for i, c := range r.next(4) {
			require.Equal(t, WatchResponse{WatchID: int64(i), Created: true, Revision: 2, PrevKV: i == 3}, c)
		}

		t.Logf("Step 2: writes; each watch gets exactly its events (revisions the reader has not taken yet share a response)")
		put(t, s, "foo", "x")       // 3
		put(t, s, "foo/bar", "y")   // 4
		put(t, s, "z", "w")         // 5
		del(t, s, "foo", "", false) // 6
		put(t, s, "a", "2")         // 7
		r.until("every event", func(got []WatchResponse) bool { return len(eventsOf(got, 3)) == 5 })
		r.until("every event", func(got []WatchResponse) bool { return len(eventsOf(got, 1)) == 3 })
		require.Equal(t, []string{"PUT foo@3", "DELETE foo@6"}, eventsOf(r.got, 0))
		require.Equal(t, []string{"PUT foo@3", "PUT foo/bar@4", "DELETE foo@6"}, eventsOf(r.got, 1))
		require.Equal(t, []string{"PUT z@5"}, eventsOf(r.got, 2))
		require.Equal(t, []string{"PUT foo@3", "PUT foo/bar@4", "PUT z@5", "DELETE foo@6", "PUT a@7"}, eventsOf(r.got, 3))
		for _, resp := range r.got[4:] {
			require.NotEmpty(t, resp.Events)
			require.Equal(t, resp.Events[len(resp.Events)-1].Kv.ModRevision, resp.Revision, "header revision of a live response")
		}

		t.Logf("Step 3: live events carry the previous version")
		var lastEv *mvccpb.Event
		for _, resp := range r.got {
			if resp.WatchID == 3 && len(resp.Events) > 0 {
				lastEv = resp.Events[len(resp.Events)-1]
			}
		}
		requireKV(t, kv("a", "2", 2, 7, 2, 0), lastEv.Kv)
		requireKV(t, kv("a", "1", 2, 2, 1, 0), lastEv.PrevKv)
		var delEv *mvccpb.Event
		for _, resp := range r.got {
			for _, ev := range resp.Events {
				if resp.WatchID == 3 && ev.Type == mvccpb.Event_DELETE {
					delEv = ev
				}
			}
		}
		requireKV(t, &mvccpb.KeyValue{Key: []byte("foo"), ModRevision: 6}, delEv.Kv)
		requireKV(t, kv("foo", "x", 3, 3, 1, 0), delEv.PrevKv)
		r.quiet()
	})
}

func TestWatch_StartRevisionReplaysThenGoesLive(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		h := newHub(t, s, WatchConfig{SyncEvents: 4})
		t.Logf("Step 1: history k0..k9 at revisions 2..11, and an unrelated key")
		puts(t, s, 10, "k%d")
		put(t, s, "other", "x") // 12

		t.Logf("Step 2: watch k* from revision 5 while 20 more puts run")
		ws := h.NewStream()
		r := newReader(t, ws)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 10; i < 30; i++ {
				put(t, s, fmt.Sprintf("k%d", i), "v") // 13..32
			}
		}()
		id, err := ws.Watch(WatchRequest{Key: []byte("k"), End: []byte("l"), StartRev: 5})
		require.NoError(t, err)
		wg.Wait()

		t.Logf("Step 3: revisions 5..11 then 13..32, each once, in order")
		want := append(seq("k%d", 2, 10)[3:], make([]string, 0)...)
		for i := 10; i < 30; i++ {
			want = append(want, fmt.Sprintf("PUT k%d@%d", i, i+3))
		}
		r.until("27 events", func(got []WatchResponse) bool { return len(eventsOf(got, id)) >= len(want) })
		require.Equal(t, want, eventsOf(r.got, id))
		require.True(t, r.got[0].Created)
		for _, resp := range r.got[1:] {
			require.GreaterOrEqual(t, resp.Revision, resp.Events[len(resp.Events)-1].Kv.ModRevision)
		}
		waitStats(t, h, "the watcher back on the live path", func(st WatchStats) bool { return st.Synced == 1 && st.Unsynced == 0 })
		r.quiet()
	})
}

func TestWatch_PrevKVSameLiveAndReplayed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		h := newHub(t, s, WatchConfig{})
		live := h.NewStream()
		rl := newReader(t, live)
		_, err := live.Watch(WatchRequest{Key: []byte("a"), PrevKV: true})
		require.NoError(t, err)
		rl.next(1)

		t.Logf("Step 1: put, update, delete, re-create")
		put(t, s, "a", "1")       // 2
		put(t, s, "a", "2")       // 3
		del(t, s, "a", "", false) // 4
		put(t, s, "a", "3")       // 5
		rl.until("4 events", func(got []WatchResponse) bool { return len(eventsOf(got, 0)) == 4 })
		var liveEvs []*mvccpb.Event
		for _, resp := range rl.got[1:] {
			liveEvs = append(liveEvs, resp.Events...)
		}

		t.Logf("Step 2: the same history replayed from revision 2")
		rp := newReader(t, h.NewStream())
		_, err = rp.ws.Watch(WatchRequest{Key: []byte("a"), StartRev: 2, PrevKV: true})
		require.NoError(t, err)
		rp.until("4 events", func(got []WatchResponse) bool { return len(eventsOf(got, 0)) == 4 })
		var replayed []*mvccpb.Event
		for _, resp := range rp.got[1:] {
			require.True(t, resp.PrevKV)
			replayed = append(replayed, resp.Events...)
		}

		wantPrev := []*mvccpb.KeyValue{nil, kv("a", "1", 2, 2, 1, 0), kv("a", "2", 2, 3, 2, 0), nil}
		for i, ev := range liveEvs {
			t.Logf("Step 3.%d: event %s", i, evString(ev))
			requireKV(t, wantPrev[i], ev.PrevKv)
			requireKV(t, wantPrev[i], replayed[i].PrevKv)
			requireKV(t, ev.Kv, replayed[i].Kv)
			require.Equal(t, ev.Type, replayed[i].Type)
		}
	})
}

// A prev_kv watcher that registers while an Apply is open (after the
// Apply decided no watcher needed previous values) still gets them: the
// hub reads them back before the fan-out.
func TestWatch_PrevKVLazyFill(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		h := newHub(t, s, WatchConfig{})
		t.Logf("Step 1: a=1, b=2 with no prev_kv watcher")
		put(t, s, "a", "1") // 2
		put(t, s, "b", "2") // 3

		t.Logf("Step 2: one Apply puts a=10 and deletes b; the watcher registers before it commits")
		a := s.NewApply()
		_, err := a.Put(&pb.PutRequest{Key: []byte("a"), Value: []byte("10")}) // 4
		require.NoError(t, err)
		_, err = a.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("b")}) // 5
		require.NoError(t, err)
		r := newReader(t, h.NewStream())
		_, err = r.ws.Watch(WatchRequest{Key: []byte("a"), End: []byte("c"), PrevKV: true})
		require.NoError(t, err)
		r.next(1)
		_, err = a.Commit(false)
		require.NoError(t, err)

		t.Logf("Step 3: both events carry the full previous version")
		r.until("2 events", func(got []WatchResponse) bool { return len(eventsOf(got, 0)) == 2 })
		var evs []*mvccpb.Event
		for _, resp := range r.got[1:] {
			evs = append(evs, resp.Events...)
		}
		requireKV(t, kv("a", "1", 2, 2, 1, 0), evs[0].PrevKv)
		requireKV(t, kv("b", "2", 3, 3, 1, 0), evs[1].PrevKv)
		require.Equal(t, mvccpb.DELETE, evs[1].Type)
	})
}

func TestWatch_Filters(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{})
	put(t, s, "a", "1")       // 2
	del(t, s, "a", "", false) // 3

	t.Logf("Step 1: NOPUT and NODELETE watches, live and from revision 2")
	ws := h.NewStream()
	r := newReader(t, ws)
	for _, req := range []WatchRequest{
		{Key: []byte("a"), NoPut: true},
		{Key: []byte("a"), NoDelete: true},
		{Key: []byte("a"), NoPut: true, StartRev: 2},
		{Key: []byte("a"), NoDelete: true, StartRev: 2},
	} {
		_, err := ws.Watch(req)
		require.NoError(t, err)
	}
	put(t, s, "a", "2")       // 4
	del(t, s, "a", "", false) // 5

	t.Logf("Step 2: each gets only its type")
	r.until("events", func(got []WatchResponse) bool { return len(eventsOf(got, 2)) == 2 && len(eventsOf(got, 3)) == 2 })
	r.until("events", func(got []WatchResponse) bool { return len(eventsOf(got, 0)) == 1 && len(eventsOf(got, 1)) == 1 })
	require.Equal(t, []string{"DELETE a@5"}, eventsOf(r.got, 0))
	require.Equal(t, []string{"PUT a@4"}, eventsOf(r.got, 1))
	require.Equal(t, []string{"DELETE a@3", "DELETE a@5"}, eventsOf(r.got, 2))
	require.Equal(t, []string{"PUT a@2", "PUT a@4"}, eventsOf(r.got, 3))
	r.quiet()
}

func TestWatch_IDsAndBadRequests(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{})
	ws := h.NewStream()
	r := newReader(t, ws)
	watch := func(id int64, key, end string) (int64, error) {
		return ws.Watch(WatchRequest{ID: id, Key: []byte(key), End: []byte(end)})
	}

	t.Logf("Step 1: auto IDs skip IDs the client chose")
	id, err := watch(AutoWatchID, "a", "")
	require.NoError(t, err)
	require.Equal(t, int64(0), id)
	id, err = watch(1, "a", "")
	require.NoError(t, err)
	require.Equal(t, int64(1), id)
	id, err = watch(AutoWatchID, "a", "")
	require.NoError(t, err)
	require.Equal(t, int64(2), id)

	t.Logf("Step 2: an ID in use, an empty range: refused, nothing queued")
	_, err = watch(1, "b", "")
	require.ErrorIs(t, err, ErrWatcherDuplicateID)
	_, err = watch(AutoWatchID, "b", "a")
	require.ErrorIs(t, err, ErrEmptyWatcherRange)
	_, err = watch(AutoWatchID, "b", "b")
	require.ErrorIs(t, err, ErrEmptyWatcherRange)
	ws.Reject(ErrWatcherDuplicateID.Error())
	got := r.next(4)
	require.Equal(t, []int64{0, 1, 2, -1}, []int64{got[0].WatchID, got[1].WatchID, got[2].WatchID, got[3].WatchID})
	require.Equal(t, WatchResponse{WatchID: -1, Created: true, Canceled: true, Revision: 1,
		CancelReason: "mvcc: duplicate watch ID provided on the WatchStream"}, got[3])

	t.Logf("Step 3: once canceled, an ID can be chosen again")
	require.NoError(t, ws.Cancel(1))
	require.Equal(t, WatchResponse{WatchID: 1, Canceled: true, Revision: 1}, r.next(1)[0])
	id, err = watch(1, "c", "")
	require.NoError(t, err)
	require.Equal(t, int64(1), id)
	require.Equal(t, WatchResponse{WatchID: 1, Created: true, Revision: 1}, r.next(1)[0])
	require.Equal(t, 3, h.Stats().Watchers)

	t.Logf("Step 4: a closed stream refuses watches and frees its watchers")
	ws.Close()
	_, err = watch(AutoWatchID, "a", "")
	require.ErrorIs(t, err, ErrWatchStreamClosed)
	require.Equal(t, WatchStats{}, h.Stats())
	<-ws.Done()
}

func TestWatch_CancelDropsQueuedEvents(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{})
	ws := h.NewStream()
	r := newReader(t, ws)
	a, _ := ws.Watch(WatchRequest{Key: []byte("a")})
	b, _ := ws.Watch(WatchRequest{Key: []byte("a")})

	t.Logf("Step 1: two puts queued, not taken; cancel watch a")
	put(t, s, "a", "1") // 2
	put(t, s, "a", "2") // 3
	waitStats(t, h, "fan-out", func(WatchStats) bool { return h.Rev() == 3 })
	require.NoError(t, ws.Cancel(a))

	t.Logf("Step 2: a gets created then canceled and nothing else; b gets both events")
	r.until("b's events", func(got []WatchResponse) bool { return len(eventsOf(got, b)) == 2 })
	require.Nil(t, eventsOf(r.got, a))
	require.Equal(t, WatchResponse{WatchID: a, Canceled: true, Revision: 3}, r.got[len(r.got)-1])
	require.ErrorIs(t, ws.Cancel(a), ErrWatcherNotExist)

	t.Logf("Step 3: no events for a canceled watch")
	put(t, s, "a", "3") // 4
	r.until("b's third event", func(got []WatchResponse) bool { return len(eventsOf(got, b)) == 3 })
	require.Nil(t, eventsOf(r.got, a))
}

// TestWatch_CancelKeepsTheCreatedResponse: a watch created and canceled
// before the stream's sender took anything (one gateway request body that
// does both) is answered created, then canceled, as etcd answers it; the
// events queued between are dropped.
func TestWatch_CancelKeepsTheCreatedResponse(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{})
	ws := h.NewStream()
	r := newReader(t, ws)

	t.Logf("Step 1: a watch, a put to its key, then a cancel, nothing taken")
	a, err := ws.Watch(WatchRequest{Key: []byte("a")})
	require.NoError(t, err)
	put(t, s, "a", "1") // 2
	waitStats(t, h, "fan-out", func(WatchStats) bool { return h.Rev() == 2 })
	require.NoError(t, ws.Cancel(a))

	t.Logf("Step 2: taking the queue: created, then canceled, no events")
	got := r.next(2)
	require.Equal(t, WatchResponse{WatchID: a, Created: true, Revision: 1}, got[0])
	require.Equal(t, WatchResponse{WatchID: a, Canceled: true, Revision: 2}, got[1])

	t.Logf("Step 3: nothing more comes")
	put(t, s, "a", "2") // 3
	waitStats(t, h, "fan-out", func(WatchStats) bool { return h.Rev() == 3 })
	r.poll()
	require.Len(t, r.got, 2)
}

func TestWatch_CompactedStartRevision(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		h := newHub(t, s, WatchConfig{})
		puts(t, s, 10, "k%d") // 2..11
		compact(t, s, 6)

		t.Logf("Step 1: a watch from 3 is created, then canceled with compact_revision 6")
		ws := h.NewStream()
		r := newReader(t, ws)
		id, err := ws.Watch(WatchRequest{Key: []byte("k"), End: []byte("l"), StartRev: 3})
		require.NoError(t, err)
		got := r.next(2)
		require.Equal(t, WatchResponse{WatchID: id, Created: true, Revision: 11}, got[0])
		require.Equal(t, WatchResponse{WatchID: id, Canceled: true, CompactRevision: 6, Revision: 11}, got[1])
		require.Equal(t, WatchStats{Streams: 1, Watchers: 1}, h.Stats())

		t.Logf("Step 2: it gets nothing more; canceling it is answered as etcd does")
		put(t, s, "k0", "x") // 12
		r.quiet()
		require.NoError(t, ws.Cancel(id))
		require.Equal(t, WatchResponse{WatchID: id, Canceled: true, Revision: 12}, r.next(1)[0])

		t.Logf("Step 3: a watch from the compaction revision replays 6..12")
		id, err = ws.Watch(WatchRequest{Key: []byte("k"), End: []byte("l"), StartRev: 6})
		require.NoError(t, err)
		r.until("7 events", func(got []WatchResponse) bool { return len(eventsOf(got, id)) == 7 })
		require.Equal(t, append(seq("k%d", 2, 10)[4:], "PUT k0@12"), eventsOf(r.got, id))
	})
}

func TestWatch_OverflowThenCatchUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		const buf = 4
		h := newHub(t, s, WatchConfig{WatcherBuffer: buf, SyncEvents: 7})
		ws := h.NewStream()
		r := newReader(t, ws)
		id, err := ws.Watch(WatchRequest{Key: []byte("k"), End: []byte("l")})
		require.NoError(t, err)

		t.Logf("Step 1: 40 puts while nobody reads: the watcher overflows and is set aside")
		puts(t, s, 40, "k%02d") // 2..41
		waitStats(t, h, "an unsynced watcher, the fan-out at 41", func(st WatchStats) bool {
			return st.Unsynced == 1 && st.Synced == 0 && h.Rev() == 41
		})

		t.Logf("Step 2: 40 more puts while the client reads slowly")
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 40; i < 80; i++ {
				put(t, s, fmt.Sprintf("k%02d", i), "v") // 42..81
			}
		}()
		r.until("80 events", func(got []WatchResponse) bool { return len(eventsOf(got, id)) >= 80 })
		wg.Wait()

		t.Logf("Step 3: every revision once, in order, never more than %d events queued per response", buf)
		require.Equal(t, seq("k%02d", 2, 80), eventsOf(r.got, id))
		for _, resp := range r.got[1:] {
			require.LessOrEqual(t, len(resp.Events), buf)
		}
		waitStats(t, h, "the watcher back on the live path", func(st WatchStats) bool { return st.Synced == 1 })

		t.Logf("Step 4: back on the live path, the next put arrives alone")
		put(t, s, "k99", "v") // 82
		r.until("event 82", func(got []WatchResponse) bool { return len(eventsOf(got, id)) == 81 })
		require.Equal(t, WatchResponse{WatchID: id, Revision: 82, Events: r.got[len(r.got)-1].Events}, r.got[len(r.got)-1])
		require.Equal(t, "PUT k99@82", evString(r.got[len(r.got)-1].Events[0]))
	})
}

func TestWatch_UnsyncedWatcherCompacted(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{WatcherBuffer: 4})
	ws := h.NewStream()
	r := newReader(t, ws)
	id, _ := ws.Watch(WatchRequest{Key: []byte("k"), End: []byte("l")})

	t.Logf("Step 1: 20 puts unread: created and revisions 2..4 fill the buffer (in one merged response), it needs 5.. from the log")
	puts(t, s, 20, "k%02d") // 2..21
	waitStats(t, h, "an unsynced watcher", func(st WatchStats) bool { return st.Unsynced == 1 })

	t.Logf("Step 2: compaction at 15 removes what it needs: it is canceled with compact_revision 15")
	compact(t, s, 15)
	got := r.next(3)
	require.True(t, got[0].Created)
	require.Equal(t, seq("k%02d", 2, 3), eventsOf(got, id))
	require.Equal(t, int64(4), got[1].Revision, "a merged response has its last revision")
	require.Equal(t, WatchResponse{WatchID: id, Canceled: true, CompactRevision: 15, Revision: 21}, got[2])
	r.quiet()
	require.Equal(t, WatchStats{Streams: 1, Watchers: 1}, h.Stats())
}

func TestWatch_GapWhenFanOutQueueFull(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{PendingEvents: 1})
	ws := h.NewStream()
	r := newReader(t, ws)
	id, _ := ws.Watch(WatchRequest{Key: []byte("k"), End: []byte("l")})
	r.next(1)

	t.Logf("Step 1: the fan-out is held up while 10 puts commit: its queue overflows")
	h.mu.Lock()
	puts(t, s, 10, "k%d") // 2..11
	h.mu.Unlock()

	t.Logf("Step 2: the watcher gets all 10 revisions once, in order, via the change log")
	r.until("10 events", func(got []WatchResponse) bool { return len(eventsOf(got, id)) >= 10 })
	require.Equal(t, seq("k%d", 2, 10), eventsOf(r.got, id))
	require.GreaterOrEqual(t, h.Stats().Gaps, int64(1))
	waitStats(t, h, "synced again", func(st WatchStats) bool { return st.Synced == 1 })
	put(t, s, "k10", "v") // 12
	r.until("event 12", func(got []WatchResponse) bool { return len(eventsOf(got, id)) == 11 })
	require.Equal(t, "PUT k10@12", eventsOf(r.got, id)[10])
}

func TestWatch_RevisionsWithoutNotificationReplayed(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{SyncInterval: 10 * time.Millisecond})
	ws := h.NewStream()
	r := newReader(t, ws)
	id, _ := ws.Watch(WatchRequest{Key: []byte("k"), End: []byte("l")})
	r.next(1)

	t.Logf("Step 1: three commits the hub is not told about (as after a snapshot restore)")
	s.SetCommitHook(nil)
	puts(t, s, 3, "k%d") // 2..4
	s.SetCommitHook(h.Notify)

	t.Logf("Step 2: the hub notices the lag and replays them; then live again")
	r.until("3 events", func(got []WatchResponse) bool { return len(eventsOf(got, id)) == 3 })
	require.Equal(t, seq("k%d", 2, 3), eventsOf(r.got, id))
	put(t, s, "k3", "v") // 5
	r.until("4 events", func(got []WatchResponse) bool { return len(eventsOf(got, id)) == 4 })
	require.Equal(t, seq("k%d", 2, 4), eventsOf(r.got, id))
}

func TestWatch_RequestProgress(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{WatcherBuffer: 2})
	ws := h.NewStream()
	r := newReader(t, ws)

	t.Logf("Step 1: a stream without watches gets no answer (as etcd)")
	ws.RequestProgress()
	r.quiet()

	t.Logf("Step 2: all synced: watch ID -1 at the current revision, after the events")
	id, _ := ws.Watch(WatchRequest{Key: []byte("a")})
	put(t, s, "a", "1") // 2
	put(t, s, "b", "1") // 3
	ws.RequestProgress()
	got := r.next(3)
	require.Equal(t, []string{"PUT a@2"}, eventsOf(got, id))
	require.Equal(t, WatchResponse{WatchID: -1, Revision: 3}, got[2])

	t.Logf("Step 3: with an unsynced watcher the answer waits until it has caught up")
	_, _ = ws.Watch(WatchRequest{Key: []byte("k"), End: []byte("l")})
	r.next(1)
	puts(t, s, 10, "k%d") // 4..13
	waitStats(t, h, "an unsynced watcher", func(st WatchStats) bool { return st.Unsynced == 1 })
	ws.RequestProgress()
	r.until("the progress response", func(got []WatchResponse) bool {
		return got[len(got)-1].WatchID == -1 && got[len(got)-1].Revision == 13
	})
	require.Equal(t, seq("k%d", 4, 10), eventsOf(r.got, 1))
	r.seen = len(r.got)
	r.quiet()

	t.Logf("Step 4: a watch from a future revision holds the answer until the store gets there")
	_, _ = ws.Watch(WatchRequest{Key: []byte("z"), StartRev: 15})
	r.next(1)
	ws.RequestProgress()
	put(t, s, "b", "2") // 14
	r.quiet()
	put(t, s, "b", "3") // 15
	require.Equal(t, WatchResponse{WatchID: -1, Revision: 15}, r.next(1)[0])
}

func TestWatch_ProgressTick(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{})
	ws := h.NewStream()
	r := newReader(t, ws)
	id, _ := ws.Watch(WatchRequest{Key: []byte("a"), ProgressNotify: true})
	_, _ = ws.Watch(WatchRequest{Key: []byte("a")})
	r.next(2)

	t.Logf("Step 1: every tick notifies a quiet watcher, at the hub revision")
	ws.ProgressTick()
	require.Equal(t, WatchResponse{WatchID: id, Revision: 1}, r.next(1)[0])
	put(t, s, "b", "1") // 2, not watched
	waitStats(t, h, "fan-out", func(WatchStats) bool { return h.Rev() == 2 })
	ws.ProgressTick()
	require.Equal(t, WatchResponse{WatchID: id, Revision: 2}, r.next(1)[0])

	t.Logf("Step 2: an event in the interval suppresses the next notification")
	put(t, s, "a", "1") // 3
	r.next(2)
	ws.ProgressTick()
	r.quiet()
	ws.ProgressTick()
	require.Equal(t, WatchResponse{WatchID: id, Revision: 3}, r.next(1)[0])
}

// TestWatch_ManyWatchersEveryRevision runs 2,000 watchers of mixed ranges
// over 4 streams, one of them read slowly with small buffers, against
// concurrent puts and deletes, and checks each watcher's events against
// the store's history.
func TestWatch_ManyWatchersEveryRevision(t *testing.T) {
	const nStreams, perStream, nWrites = 4, 500, 300
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{WatcherBuffer: 16, SyncWatchers: 128, SyncEvents: 50})
	puts(t, s, 20, "k%03d") // some history: 2..21

	t.Logf("Step 1: %d watchers over %d streams (key, prefix, from-key, all; some from revision 5)", nStreams*perStream, nStreams)
	type spec struct {
		req     WatchRequest
		created int64
	}
	specs := make([][]spec, nStreams)
	readers := make([]*reader, nStreams)
	for i := range nStreams {
		readers[i] = newReader(t, h.NewStream())
		for j := range perStream {
			var req WatchRequest
			switch j % 5 {
			case 0:
				req = WatchRequest{Key: fmt.Appendf(nil, "k%03d", j%40)}
			case 1:
				req = WatchRequest{Key: []byte("k01"), End: []byte("k02")}
			case 2:
				req = WatchRequest{Key: []byte("k03"), End: []byte{0}, NoDelete: true}
			case 3:
				req = WatchRequest{Key: []byte{0}, End: []byte{0}}
			case 4:
				req = WatchRequest{Key: []byte("k0"), End: []byte("k1"), StartRev: 5}
			}
			id, err := readers[i].ws.Watch(req)
			require.NoError(t, err)
			require.Equal(t, int64(j), id)
			specs[i] = append(specs[i], spec{req: req})
		}
	}

	t.Logf("Step 2: streams 1..3 read as events come, stream 0 not at all; %d concurrent writes", nWrites)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, rd := range readers[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-rd.ws.Ready():
					rd.poll()
				}
			}
		}()
	}
	for i := range nWrites {
		key := fmt.Sprintf("k%03d", (i*7)%45)
		if i%6 == 5 {
			del(t, s, key, "", false)
		} else {
			put(t, s, key, fmt.Sprint(i))
		}
	}
	close(stop)
	wg.Wait()
	final := s.Rev()
	hist, _, err := s.Events(1, 0, 0, false)
	require.NoError(t, err)
	for i, rd := range readers {
		rd.until("created responses", func(got []WatchResponse) bool {
			n := 0
			for _, g := range got {
				if g.Created {
					n++
				}
			}
			return n == perStream
		})
		for _, g := range rd.got {
			if g.Created {
				specs[i][g.WatchID].created = g.Revision
			}
		}
	}

	t.Logf("Step 3: every watcher has exactly the history of its range, in order")
	for i, rd := range readers {
		want := map[int64][]string{}
		total := 0
		for j, sp := range specs[i] {
			from := sp.req.StartRev
			if from == 0 {
				from = sp.created + 1
			}
			w := &watcher{key: sp.req.Key, end: normEnd(sp.req.End), noDelete: sp.req.NoDelete}
			for _, ev := range hist {
				if ev.Kv.ModRevision >= from && w.contains(ev.Kv.Key) && !w.filtered(ev) {
					want[int64(j)] = append(want[int64(j)], evString(ev))
				}
			}
			total += len(want[int64(j)])
		}
		rd.until(fmt.Sprintf("stream %d's %d events", i, total), func(got []WatchResponse) bool {
			n := 0
			for _, g := range got {
				n += len(g.Events)
			}
			return n >= total
		})
		for j := range specs[i] {
			require.Equal(t, want[int64(j)], eventsOf(rd.got, int64(j)), "stream %d watcher %d", i, j)
		}
	}
	waitStats(t, h, "all synced", func(st WatchStats) bool { return st.Synced == nStreams*perStream })
	require.Equal(t, final, h.Rev())
	t.Logf("Step 4: %d gaps, stats %+v", h.Stats().Gaps, h.Stats())
}

func normEnd(end []byte) []byte {
	switch {
	case len(end) == 0:
		return nil
	case len(end) == 1 && end[0] == 0:
		return []byte{}
	}
	return end
}

// A sender that falls behind gets one response per watcher for all the
// revisions it missed: merged in order, never across a stream-wide
// response, never past maxMergedEvents, and without touching the event
// slices other watchers share.
func TestWatch_QueuedEventsMerge(t *testing.T) {
	s := openStore(t, engineCases[0], Config{})
	h := newHub(t, s, WatchConfig{WatcherBuffer: 4 * maxMergedEvents})
	ws := h.NewStream()
	r := newReader(t, ws)
	a, _ := ws.Watch(WatchRequest{Key: []byte("k")})
	b, _ := ws.Watch(WatchRequest{Key: []byte("k")}) // same key: shares a's event slices
	c, _ := ws.Watch(WatchRequest{Key: []byte("other")})
	r.next(3)

	t.Logf("Step 1: three puts to k and one to other while nobody takes")
	put(t, s, "k", "1")     // 2
	put(t, s, "k", "2")     // 3
	put(t, s, "k", "3")     // 4
	put(t, s, "other", "x") // 5
	waitQueuedEvents(t, ws, 7)

	t.Logf("Step 2: one response per watcher, its events in order, the header at its last revision")
	got := r.next(3)
	for _, resp := range got {
		switch resp.WatchID {
		case a, b:
			require.Equal(t, []string{"PUT k@2", "PUT k@3", "PUT k@4"}, eventsOf([]WatchResponse{resp}, resp.WatchID))
			require.Equal(t, int64(4), resp.Revision)
		case c:
			require.Equal(t, []string{"PUT other@5"}, eventsOf([]WatchResponse{resp}, c))
			require.Equal(t, int64(5), resp.Revision)
		}
	}
	require.ElementsMatch(t, []int64{a, b, c}, []int64{got[0].WatchID, got[1].WatchID, got[2].WatchID})

	t.Logf("Step 3: a progress notification between two puts keeps them apart")
	put(t, s, "k", "4") // 6
	waitQueuedEvents(t, ws, 2)
	ws.RequestProgress()
	put(t, s, "k", "5") // 7
	waitQueuedEvents(t, ws, 4)
	got = r.next(5)
	require.Equal(t, []string{"PUT k@6"}, eventsOf(got[:2], a))
	require.Equal(t, []string{"PUT k@6"}, eventsOf(got[:2], b))
	require.Equal(t, WatchResponse{WatchID: -1, Revision: 6}, got[2])
	require.Equal(t, []string{"PUT k@7"}, eventsOf(got[3:], a))
	require.Equal(t, []string{"PUT k@7"}, eventsOf(got[3:], b))

	t.Logf("Step 4: %d puts unread: responses of at most %d events", maxMergedEvents+10, maxMergedEvents)
	require.NoError(t, ws.Cancel(b))
	require.NoError(t, ws.Cancel(c))
	r.next(2)
	for i := 0; i < maxMergedEvents+10; i++ {
		put(t, s, "k", fmt.Sprint(i)) // 8..
	}
	waitQueuedEvents(t, ws, maxMergedEvents+10)
	got = r.next(2)
	require.Len(t, got[0].Events, maxMergedEvents)
	require.Len(t, got[1].Events, 10)
	require.Equal(t, int64(8+maxMergedEvents-1), got[0].Revision)
	require.Equal(t, int64(8+maxMergedEvents+9), got[1].Revision)

	t.Logf("Step 5: 4 puts of 256 KiB unread: at most %d bytes merge, so 3 and 1", maxMergedBytes)
	big := strings.Repeat("v", 256<<10)
	for i := 0; i < 4; i++ {
		put(t, s, "k", big)
	}
	waitQueuedEvents(t, ws, 4)
	got = r.next(2)
	require.Len(t, got[0].Events, 3)
	require.Len(t, got[1].Events, 1)
	r.quiet()
}

// waitQueuedEvents polls until ws holds n events not yet taken.
func waitQueuedEvents(t *testing.T, ws *WatchStream, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		have := 0
		for _, q := range ws.mu.queue {
			have += len(q.resp.Events)
		}
		return have >= n
	}, 5*time.Second, 2*time.Millisecond, "%d queued events", n)
}

// An Apply that changes more keys than MaxApplyEvents keeps no events
// (Result.EventsDropped); the hub treats it as a gap and the watchers
// read those revisions back from the change log, previous values and all.
func TestWatch_ApplyPastMaxEventsReplaysFromLog(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) { testApplyPastMaxEvents(t, openStore(t, ec, Config{MaxApplyEvents: 10})) })
	}
}

func testApplyPastMaxEvents(t *testing.T, s *Store) {
	h := newHub(t, s, WatchConfig{})
	ws := h.NewStream()
	r := newReader(t, ws)
	apply(t, s, func(a *Apply) {
		for i := 0; i < 25; i++ {
			_, err := a.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("k%02d", i)), Value: []byte("v")})
			require.NoError(t, err)
		}
	}) // 2..26: 25 events, past the bound
	keys, _ := ws.Watch(WatchRequest{Key: []byte("k"), End: []byte("l"), PrevKV: true})
	other, _ := ws.Watch(WatchRequest{Key: []byte("other")})
	r.next(2)

	t.Logf("Step 1: one Apply deletes 25 keys; it keeps no events")
	res := apply(t, s, func(a *Apply) {
		_, err := a.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("k"), RangeEnd: []byte("l")})
		require.NoError(t, err)
	})
	require.True(t, res.EventsDropped)
	require.Empty(t, res.Events)
	require.Equal(t, int64(27), res.Rev)

	t.Logf("Step 2: the range watcher still gets all 25 deletes, with their previous values")
	r.until("25 events", func(got []WatchResponse) bool { return len(eventsOf(got, keys)) == 25 })
	var deletes []*mvccpb.Event
	for _, resp := range r.got {
		if resp.WatchID == keys {
			deletes = append(deletes, resp.Events...)
		}
	}
	for i, ev := range deletes {
		require.Equal(t, mvccpb.Event_DELETE, ev.Type)
		require.Equal(t, fmt.Sprintf("k%02d", i), string(ev.Kv.Key))
		require.Equal(t, int64(27), ev.Kv.ModRevision)
		requireKV(t, kv(fmt.Sprintf("k%02d", i), "v", int64(2+i), int64(2+i), 1, 0), ev.PrevKv)
	}

	t.Logf("Step 3: the other watcher got nothing from it, and still gets its own key")
	require.Empty(t, eventsOf(r.got, other))
	put(t, s, "other", "x") // 28
	r.until("the put on other", func(got []WatchResponse) bool { return len(eventsOf(got, other)) == 1 })
	require.Equal(t, []string{"PUT other@28"}, eventsOf(r.got, other))
}

// Past MaxApplyEvents a DeleteRange reuses one buffer for each page of
// keys. Over several pages of keys holding the escape byte, every key
// must be deleted, detached from its lease and logged under its own name.
func TestApply_LargeDeletePastMaxEventsReusesPages(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			const n = 3*deletePage + 100
			leases := newFakeLeases(7)
			s := openStore(t, ec, Config{MaxApplyEvents: 10, Leases: leases})
			key := func(i int) string { return fmt.Sprintf("d\x00%05d\x00\x01", i) }

			t.Logf("Step 1: putting %d keys with escape bytes, every third on lease 7", n)
			apply(t, s, func(a *Apply) {
				for i := 0; i < n; i++ {
					req := &pb.PutRequest{Key: []byte(key(i)), Value: []byte("v")}
					if i%3 == 0 {
						req.Lease = 7
					}
					_, err := a.Put(req)
					require.NoError(t, err)
				}
			})
			require.Len(t, leases.attached[7], (n+2)/3)
			h := newHub(t, s, WatchConfig{})
			ws := h.NewStream()
			r := newReader(t, ws)
			id, _ := ws.Watch(WatchRequest{Key: []byte("d"), End: []byte("e")})
			r.next(1)

			t.Logf("Step 2: one Apply deletes them all, past its 10 events")
			var deleted int64
			res := apply(t, s, func(a *Apply) {
				resp, err := a.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("d"), RangeEnd: []byte("e")})
				require.NoError(t, err)
				deleted = resp.Deleted
			})
			require.True(t, res.EventsDropped)

			t.Logf("Step 3: waiting for the watcher to replay %d deletes from the change log", n)
			r.until(fmt.Sprintf("%d events", n), func(got []WatchResponse) bool { return len(eventsOf(got, id)) >= n })

			t.Logf("Step 4: every key is gone, unleased, and logged under its own name")
			require.Equal(t, int64(n), deleted)
			left := get(t, s, &pb.RangeRequest{Key: []byte("d"), RangeEnd: []byte("e"), CountOnly: true})
			require.Zero(t, left.Count)
			require.Empty(t, leases.attached[7])
			evs := eventsOf(r.got, id)
			require.Len(t, evs, n)
			for i, ev := range evs {
				require.Equal(t, fmt.Sprintf("DELETE %s@%d", key(i), res.Rev), ev)
			}
		})
	}
}
